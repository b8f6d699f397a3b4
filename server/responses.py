"""Rendering answers: the success envelope, straight to JSON bytes.

Handlers return :class:`EnvelopeResponse` objects built here; the body is
serialised once with orjson (nested objects stored as JSON are spliced in
without re-parsing). Collections get ``meta`` and an RFC 8288 ``Link`` header;
single resources get a strong ``ETag``.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from store import Page, Snapshot

DATA_CACHE_CONTROL = "private, no-cache"
NOT_MODIFIED_HEADERS = ("ETag", "Cache-Control", "Link")
"""What a ``304`` repeats of the answer it stands for."""
LINK_QUERIES_KEPT = 128
LINK_QUERY_KEPT_CHARS = 256
"""The ``Link`` form of up to 128 query strings of up to 256 characters is remembered (~4 KiB each at worst)."""
PAGE_TAGS_KEPT = 1024
"""Collection tags remembered by what their page was made from (~200 bytes each)."""


class EnvelopeResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def quote_tag(tag: str) -> str:
    return f'"{tag}"'


def body_tag(body: bytes) -> str:
    return quote_tag(hashlib.blake2b(body, digest_size=12).hexdigest())


def _held(request: Request, tag: str) -> bool:
    """Whether a ``GET``/``HEAD`` says (``If-None-Match``) that the client already holds ``tag``."""
    wanted = request.headers.get("if-none-match")
    if wanted is None or request.method not in ("GET", "HEAD"):
        return False
    tags = {part.strip().removeprefix("W/") for part in wanted.split(",")}
    return "*" in tags or tag in tags


def _not_modified(headers: Mapping[str, str]) -> Response:
    return Response(status_code=304, headers={name: headers[name] for name in NOT_MODIFIED_HEADERS if name in headers})


def single(
    request: Request, snapshot: Snapshot, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """One resource, tagged with its version (``304 Not Modified`` when the client holds that version)."""
    tag = quote_tag(snapshot.tag)
    fields = {"ETag": tag, "Cache-Control": DATA_CACHE_CONTROL, **(headers or {})}
    if _held(request, tag):
        return _not_modified(fields)
    return EnvelopeResponse({"status": "success", "data": snapshot.data}, status_code, headers=fields)


def member_path(request: Request, key: str) -> str:
    """Where a resource just created by a ``POST`` to its collection lives: the collection's path plus its key.

    (``request.url_for`` would find the same by walking every route, on every create.)
    """
    return f"{request.url.path.rstrip('/')}/{key}"


def plain(data: Any, status_code: int = 200, cache_control: str = "no-store") -> EnvelopeResponse:
    response = EnvelopeResponse({"status": "success", "data": data}, status_code)
    response.headers["Cache-Control"] = cache_control
    return response


def collection(request: Request, page: Page) -> Response:
    """One page of a collection, with ``meta``, ``Link`` and an ``ETag`` of the body."""
    total_pages = math.ceil(page.total / page.per_page) if page.total else 0
    meta = {"page": page.page, "per_page": page.per_page, "total": page.total, "total_pages": total_pages}
    body = orjson.dumps({"status": "success", "data": page.items, "meta": meta})
    tag = _page_tag(page, body)
    fields = {"ETag": tag, "Cache-Control": DATA_CACHE_CONTROL, "Link": link_header(request, page.page, total_pages)}
    if _held(request, tag):
        return _not_modified(fields)
    return Response(body, headers=fields, media_type=EnvelopeResponse.media_type)


_page_tags: dict[tuple[bytes, int, int, int], str] = {}
"""Tags of collection bodies by ``(made_of, total, page, per_page)``, oldest first."""


def _page_tag(page: Page, body: bytes) -> str:
    """``body_tag(body)``, remembered by what the page was made from (which with its meta decides the body).

    Hashing a page of twenty orders (15 kB) took 17 µs of every collection read; a repeated page now looks
    its tag up. A page without ``made_of`` (dicts, or jobs and snapshots) is hashed each time, as before.
    """
    if page.made_of is None:
        return body_tag(body)
    key = (page.made_of, page.total, page.page, page.per_page)
    tag = _page_tags.get(key)
    if tag is None:
        tag = _page_tags[key] = body_tag(body)
        if len(_page_tags) > PAGE_TAGS_KEPT:
            del _page_tags[next(iter(_page_tags))]
    return tag


def link_header(request: Request, page: int, total_pages: int) -> str:
    """First, previous, next and last pages: this request's URL with only ``page`` changed (moved last).

    The URLs are relative references (RFC 8288 resolves them against the request's URL), or under
    ``MEMDB_PUBLIC_URL`` when it is set: never built from the ``Host`` the client sent.
    """
    last = max(total_pages, 1)
    links = [("first", 1)]
    if page > 1:
        links.append(("prev", min(page - 1, last)))
    if page < total_pages:
        links.append(("next", page + 1))
    links.append(("last", last))
    path, query = _path_and_query(request)
    kept = _kept_without_page(query) if len(query) <= LINK_QUERY_KEPT_CHARS else _without_page(query)
    base = f"{request.app.state.settings.public_url or ''}{path}?{kept}{'&' if kept else ''}page="
    return ", ".join(f'<{base}{number}>; rel="{rel}"' for rel, number in links)


_URL_SPECIAL = frozenset("?#\\\t\r\n")
"""Characters Starlette's ``request.url`` escapes in a path or that splitting the URL drops or cuts at."""


def _path_and_query(request: Request) -> tuple[str, str]:
    """``request.url``'s path and query, read from the scope when they pass through it unchanged.

    Building ``request.url`` (the whole URL put together, then split again) cost a collection ~4 µs;
    a path and query without a character it treats specially come out as they went in.
    """
    scope = request.scope
    path: str = scope["path"]
    query = scope["query_string"].decode()
    if path.startswith("/") and not path.startswith("//") and _URL_SPECIAL.isdisjoint(path + query):
        return path, query
    url = request.url
    return url.path, url.query


def _without_page(query: str) -> str:
    """``query`` re-encoded without its ``page`` parameters."""
    return urlencode([(name, value) for name, value in parse_qsl(query, keep_blank_values=True) if name != "page"])


_kept_without_page = functools.lru_cache(maxsize=LINK_QUERIES_KEPT)(_without_page)
""":func:`_without_page`, remembered: clients page through the same few queries."""
