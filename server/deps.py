"""Dependencies routes declare: the store client, settings, list queries, tags."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query, Request

from server.errors import APIError
from server.settings import Settings
from store import Query as StoreQuery
from store import QueryParser, StoreClient, TableSpec

RESERVED_PARAMETERS = frozenset({"page", "per_page", "sort"})
MAX_PAGE = 1_000_000_000
"""Far past the end of any in-memory table, and small enough that offsets and ``meta`` stay 64-bit."""
MAX_PER_PAGE = 100


async def get_store(request: Request) -> StoreClient:
    store: StoreClient = request.app.state.store
    return store


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


StoreDep = Annotated[StoreClient, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


class ListQuery:
    """A dependency parsing ``page``, ``per_page``, ``sort`` and filters for one table.

    ``parser`` is kept so the OpenAPI document (``server.openapi``) can list the filters it accepts.
    """

    def __init__(self, spec: TableSpec) -> None:
        self.parser = QueryParser(spec)

    async def __call__(
        self,
        request: Request,
        page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1.")] = 1,
        per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="Items per page, 1-100.")] = 20,
        sort: Annotated[
            str | None, Query(description="`field[:asc|desc]`, comma-separated; default `created_at:asc`.")
        ] = None,
    ) -> StoreQuery:
        filters = [
            (name, value) for name, value in request.query_params.multi_items() if name not in RESERVED_PARAMETERS
        ]
        return self.parser.parse(filters, sort, page, per_page)


def list_query(spec: TableSpec) -> ListQuery:
    """The list-query dependency for ``spec``'s table."""
    return ListQuery(spec)


def _parse_tags(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    tags = tuple(part.strip().removeprefix("W/").strip('"') for part in value.split(",") if part.strip())
    return tags or None


async def if_match(value: Annotated[str | None, Header(alias="If-Match")] = None) -> tuple[str, ...] | None:
    return _parse_tags(value)


IfMatch = Annotated[tuple[str, ...] | None, Depends(if_match)]


async def require_json(request: Request) -> None:
    """A request body on a JSON route must say it is JSON (``415`` otherwise)."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    if has_body and media_type != "application/json" and not media_type.endswith("+json"):
        raise APIError(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json")


JsonBody = Depends(require_json)
