"""The OpenAPI document (``/openapi.json``), completed from what each route really is.

FastAPI describes a route's parameters, body and success answer. Everything
else a client meets is derived here, in one place, from the route itself, so
adding a route documents it without listing anything by hand:

* **errors**: every status the route can answer, each with the one error
  envelope component (:data:`ERROR_ENVELOPE`, whose ``code`` lists every code
  the service uses) and the codes that status carries: a bearer token (required
  or optional) → 401/403; a path id → 404/422; a body → 400/408/413/415/422;
  a write → 409 (and 507 unless it only deletes); ``If-Match`` → 412; list
  queries and validated query parameters → 400/422; everything that is rate
  limited or may be turned away when busy → 429/503. A route adds a status its
  code raises itself with the ``responses`` argument of its decorator.
  FastAPI's ``HTTPValidationError`` is gone: no route answers in that shape.
* **headers**: ``X-Request-ID`` everywhere, ``X-Rate-Limit-*`` on rate-limited
  routes, ``Retry-After`` with 429 and 503, ``WWW-Authenticate`` with 401,
  ``Location`` on 201/202, ``ETag`` on stored resources (and ``304``), ``Link``
  on collections.
* **filters**: list routes get one query parameter per filter their
  :class:`~store.QueryParser` accepts (``status__in``, ``total_price__gte``,
  ``shipping_address.city``…), typed as the parser parses them, and a ``sort``
  pattern naming the sortable fields.
* **security**: ``[]`` on public routes, bearer on the rest, both
  (``[{}, bearer]``) where a token is optional.
* **operation ids** are the route names (``create_user``, ``login``), and a
  create links to the operations on what it created (OpenAPI ``links``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from server.deps import ListQuery, if_match
from server.errors import ERROR_CODES
from server.models.common import INT64_MIN, MAX_METADATA_DEPTH, UINT64_MAX, ErrorEnvelope
from server.paths import PROBE_PATHS
from server.security.access import route_access
from server.security.auth import Access
from store import Kind
from store.querylang import FilterParameter

ERROR_ENVELOPE: Final = "ErrorEnvelope"
BEARER: Final = "OAuth2PasswordBearer"
VERSIONED_TAGS: Final = frozenset({"users", "orders"})
"""Routers whose resources live in the store and answer with their version as ``ETag``."""
_DROPPED_SCHEMAS = ("HTTPValidationError", "ValidationError")
JSON_VALUE_SCHEMA: Final = "JsonValue"
_SCALARS: Final[list[dict[str, Any]]] = [
    {"type": "null"},
    {"type": "boolean"},
    {"type": "string"},
    {"type": "integer", "minimum": INT64_MIN, "maximum": UINT64_MAX},
    {"type": "number", "not": {"type": "integer"}},
]


def json_value_schemas() -> dict[str, Any]:
    """``metadata``'s values, one component per nesting level (``JsonValue2`` … ``JsonValue9``).

    Level 1 is the object itself; a level may hold objects and arrays of the next one, the last
    only scalars, so the document says exactly what the depth rule allows. (One recursive schema
    would be shorter, but openapi-python-client cannot follow a recursive union.)
    """
    schemas: dict[str, Any] = {}
    deepest = MAX_METADATA_DEPTH + 1
    for level in range(2, deepest + 1):
        branches: list[dict[str, Any]] = list(_SCALARS)
        if level < deepest:
            deeper = {"$ref": f"#/components/schemas/{JSON_VALUE_SCHEMA}{level + 1}"}
            branches += [{"type": "array", "items": deeper}, {"type": "object", "additionalProperties": deeper}]
        schemas[f"{JSON_VALUE_SCHEMA}{level}"] = {
            "description": f"A JSON value at nesting level {level} of `metadata`; whole numbers fit 64 bits.",
            "anyOf": branches,
        }
    return schemas


_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ADDING_WRITES = frozenset({"POST", "PUT", "PATCH"})

_STATUS_MEANINGS: Final = {
    304: "Not modified: the `If-None-Match` tag is still current. No body.",
    400: "The body is not valid JSON (`BAD_REQUEST`), or a list query is not understood (`INVALID_QUERY`).",
    401: "No valid bearer token (or, on login, wrong email or password).",
    403: "Your role may not do this.",
    404: "No such resource, or not yours.",
    408: "The body stalled for longer than the server waits between two pieces; the connection is closed.",
    409: "Conflicts with the current state (a duplicate email; a user who still has orders; a finished job).",
    412: "`If-Match` names a version that is no longer current; nothing changed.",
    413: "The body is larger than the server accepts.",
    415: "The body is not sent as `application/json`.",
    422: "The request is well formed but breaks a rule; `details` names each field.",
    429: "Too many requests from this client; retry after `Retry-After` seconds.",
    503: "Busy or not ready; retry after `Retry-After` seconds.",
    507: "The memory limit is reached: nothing new is stored (reads and deletes go on).",
}


def _header(description: str, schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


_INTEGER: Final = {"type": "integer"}
_STRING: Final = {"type": "string"}
HEADERS: Final = {
    "X-Request-ID": _header("This request's id, also in every error body and log line.", _STRING),
    "X-Rate-Limit-Limit": _header("Requests allowed per minute (sent while rate limiting is on).", _INTEGER, False),
    "X-Rate-Limit-Remaining": _header("Requests left in the current allowance.", _INTEGER, False),
    "X-Rate-Limit-Reset": _header("Seconds until the allowance is full again.", _INTEGER, False),
    "Retry-After": _header("Seconds to wait before retrying.", _INTEGER),
    "WWW-Authenticate": _header("`Bearer`: how to authenticate.", _STRING),
    "Location": _header("Where the new resource lives.", _STRING),
    "ETag": _header("The representation's version; send it back in `If-Match` or `If-None-Match`.", _STRING),
    "Link": _header("RFC 8288 links to the `first`, `prev`, `next` and `last` pages.", _STRING),
}


REQUEST_ID_PARAMETER: Final = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Your id for this request, echoed back and logged: 1-128 characters of `A-Z a-z 0-9 . _ -`; "
    "anything else is replaced by a generated id.",
}


@dataclass(frozen=True, slots=True)
class Traits:
    """What a route is, as far as its documented answers go."""

    method: str
    auth: Literal["required", "optional", "none"]
    path_ids: bool
    body: bool
    validated_query: bool
    list_query: ListQuery | None
    if_match: bool
    limited: bool
    busy: bool
    versioned: bool

    @classmethod
    def of(cls, route: APIRoute, method: str) -> Traits:
        dependants = list(_walk(route.dependant))
        calls = [dependant.call for dependant in dependants]
        access = route_access(route)
        queries = [call for call in calls if isinstance(call, ListQuery)]
        return cls(
            method=method,
            auth="required" if access >= Access.TOKEN else "optional" if access is Access.OPTIONAL else "none",
            path_ids=any(dependant.path_params for dependant in dependants),
            body=route.body_field is not None or "requestBody" in (route.openapi_extra or {}),
            validated_query=any(dependant.query_params for dependant in dependants),
            list_query=queries[0] if queries else None,
            if_match=if_match in calls,
            limited=route.path not in PROBE_PATHS,
            busy=route.path not in PROBE_PATHS,
            versioned=bool(VERSIONED_TAGS.intersection(map(str, route.tags))),
        )

    def error_statuses(self) -> set[int]:
        statuses: set[int] = set()
        if self.auth != "none":
            statuses |= {401, 403}
        if self.path_ids:
            statuses |= {404, 422}
        if self.body:
            statuses |= {400, 408, 413, 415, 422}
        if self.validated_query:
            statuses.add(422)
        if self.list_query is not None:
            statuses |= {400, 422}
        if self.method in _WRITES:
            statuses.add(409)
        if self.method in _ADDING_WRITES:
            statuses.add(507)
        if self.if_match:
            statuses.add(412)
        if self.limited:
            statuses.add(429)
        if self.busy:
            statuses.add(503)
        return statuses

    def security(self) -> list[dict[str, list[str]]]:
        if self.auth == "required":
            return [{BEARER: []}]
        if self.auth == "optional":
            return [{}, {BEARER: []}]
        return []


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    """A route's dependant and everything it depends on, depth first."""
    yield dependant
    for dependency in dependant.dependencies:
        yield from _walk(dependency)


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the completed document (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of ``app``'s routes."""
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
    )
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _DROPPED_SCHEMAS:
        schemas.pop(name, None)
    schemas.update(_error_schemas())
    schemas.update(json_value_schemas())
    _type_nested_values(schemas)
    operations = list(_operations(app, document))
    for route, _, operation in operations:
        operation["operationId"] = route.name
    for route, method, operation in operations:
        _complete(document, route, method, operation)
    return document


def _type_nested_values(node: Any) -> None:
    """Free JSON objects that declare a ``maxDepth`` (``metadata``) get their values typed level by level."""
    if isinstance(node, dict):
        if node.get("type") == "object" and node.pop("maxDepth", None) is not None:
            node["additionalProperties"] = {"$ref": f"#/components/schemas/{JSON_VALUE_SCHEMA}2"}
        for value in node.values():
            _type_nested_values(value)
    elif isinstance(node, list):
        for value in node:
            _type_nested_values(value)


def _operations(app: FastAPI, document: dict[str, Any]) -> Iterator[tuple[APIRoute, str, dict[str, Any]]]:
    for route in app.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in sorted((route.methods or set()) - {"HEAD"}):
                yield route, method, document["paths"][route.path_format][method.lower()]


def _error_schemas() -> dict[str, Any]:
    schema = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions: dict[str, Any] = schema.pop("$defs")
    codes = sorted({code for codes in ERROR_CODES.values() for code in codes})
    definitions["ErrorBody"]["properties"]["code"]["enum"] = codes
    # Sent only when there is something to point at, never as null.
    definitions["ErrorBody"]["properties"]["details"] = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/ErrorDetail"},
        "title": "Details",
    }
    return {**definitions, ERROR_ENVELOPE: schema}


def _complete(document: dict[str, Any], route: APIRoute, method: str, operation: dict[str, Any]) -> None:
    traits = Traits.of(route, method)
    operation["parameters"] = [*operation.get("parameters", []), REQUEST_ID_PARAMETER]
    operation["security"] = traits.security()
    if traits.list_query is not None:
        operation["parameters"] = [*_paging(operation.get("parameters", []), traits.list_query), *_filters(traits)]
        operation["description"] = f"{operation.get('description', '')}\n\n{_FILTER_HELP}".strip()
    responses: dict[str, Any] = operation["responses"]
    declared = {int(status) for status in responses if status.isdigit() and int(status) >= 400}
    for error in sorted(traits.error_statuses() | declared):
        responses[str(error)] = _error_response(error, traits)
    for status, response in list(responses.items()):
        if status.startswith("2"):
            response["headers"] = _success_headers(int(status), route, traits)
            if method == "GET" and (traits.versioned or _is_collection(route)):  # tagged: If-None-Match works
                responses["304"] = {"description": _STATUS_MEANINGS[304], "headers": _not_modified_headers(route)}
    _link(document, route, method, operation)
    operation["responses"] = dict(sorted(responses.items()))


def _error_response(status: int, traits: Traits) -> dict[str, Any]:
    codes = ", ".join(f"`{code}`" for code in ERROR_CODES[status])
    headers = {"X-Request-ID": HEADERS["X-Request-ID"], **_rate_headers(traits)}
    if status in (429, 503):
        headers["Retry-After"] = HEADERS["Retry-After"]
    if status == 401:
        headers["WWW-Authenticate"] = HEADERS["WWW-Authenticate"]
    return {
        "description": f"{_STATUS_MEANINGS[status]} Codes: {codes}.",
        "headers": headers,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_ENVELOPE}"}}},
    }


def _rate_headers(traits: Traits) -> dict[str, Any]:
    if not traits.limited:
        return {}
    return {name: HEADERS[name] for name in ("X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset")}


def _is_collection(route: APIRoute) -> bool:
    return route.response_model is not None and "meta" in getattr(route.response_model, "model_fields", {})


def _success_headers(status: int, route: APIRoute, traits: Traits) -> dict[str, Any]:
    headers = {"X-Request-ID": HEADERS["X-Request-ID"], **_rate_headers(traits)}
    if status in (201, 202):
        headers["Location"] = HEADERS["Location"]
    if _is_collection(route):
        headers["ETag"] = HEADERS["ETag"]
        headers["Link"] = HEADERS["Link"]
    elif traits.versioned and status != 204:
        headers["ETag"] = HEADERS["ETag"]
    return headers


def _not_modified_headers(route: APIRoute) -> dict[str, Any]:
    headers = {"X-Request-ID": HEADERS["X-Request-ID"], "ETag": HEADERS["ETag"]}
    if _is_collection(route):
        headers["Link"] = HEADERS["Link"]
    return headers


def _link(document: dict[str, Any], route: APIRoute, method: str, operation: dict[str, Any]) -> None:
    """A create links to every operation on the member it made: ``/things`` → ``/things/{id}``…"""
    created = next((status for status in ("201", "202") if status in operation["responses"]), None)
    if method != "POST" or created is None:
        return
    member = re.compile(re.escape(route.path_format) + r"/\{(\w+)\}(/.*)?$")
    links: dict[str, Any] = {}
    for path, operations in document["paths"].items():
        match = member.match(path)
        if match is None:
            continue
        for other in operations.values():
            links[other["operationId"]] = {
                "operationId": other["operationId"],
                "parameters": {match.group(1): "$response.body#/data/id"},
            }
    if links:
        operation["responses"][created]["links"] = links


# --- list queries -------------------------------------------------------------------------------------------------

_FILTER_HELP: Final = (
    "**Filters**: `field=value` for equality and `field__op=value` with `op` one of `ne gt gte lt lte in contains` "
    "(`in` takes a comma-separated list; `contains` is a case-insensitive substring, on text only). "
    "`<stamp>_after` / `<stamp>_before` (`created_after`…) take a date or a datetime and are strict. "
    "Nested fields by dot path (`shipping_address.city`); `metadata.<key>` matches the JSON scalar the value "
    "parses as (`true`, `3`, `null`), else the string. `null` matches a missing value with `eq`/`ne`. "
    "An unknown field or operator, or a value that does not parse, is `400 INVALID_QUERY` naming the parameter. "
    "Every filter parameter is listed below."
)

_NULL: Final = {"type": "string", "enum": ["null"]}


def _value_schema(kind: Kind, choices: tuple[str, ...]) -> dict[str, Any]:
    if kind is Kind.UUID:
        return {"type": "string", "format": "uuid"}
    if kind is Kind.ENUM:
        return {"type": "string", "enum": list(choices)}
    if kind is Kind.INT:
        return {"type": "integer"}
    if kind is Kind.BOOL:
        return {"type": "boolean"}
    if kind is Kind.DECIMAL:
        return {"type": "number"}
    if kind is Kind.DATETIME:
        return {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]}
    if kind is Kind.JSON:
        return dict(_NULL)
    return {"type": "string"}


def _filter_parameter(parameter: FilterParameter) -> dict[str, Any]:
    value = _value_schema(parameter.kind, parameter.choices)
    style: dict[str, Any] = {}
    if parameter.op == "in":
        if parameter.kind is Kind.STR:
            value = {"type": "string", "pattern": "^[^,]*$"}  # commas separate the items
        schema: dict[str, Any] = {"type": "array", "items": value, "minItems": 1}
        style = {"style": "form", "explode": False}
        description = f"`{parameter.field}` is one of these (comma-separated)."
    elif parameter.op == "contains":
        schema = {"type": "string"}
        description = f"`{parameter.field}` contains this text, ignoring case."
    else:
        schema = value
        if parameter.nullable and parameter.op in ("eq", "ne") and parameter.kind not in (Kind.STR, Kind.JSON):
            schema = {"anyOf": [value, _NULL]}
        description = _DESCRIPTIONS[parameter.op].format(field=f"`{parameter.field}`")
        if parameter.name != parameter.field and parameter.name.endswith(("_after", "_before")):
            description = f"{description} (a date means its midnight, UTC)"
    return {
        "name": parameter.name,
        "in": "query",
        "required": False,
        "schema": schema,
        **style,
        "description": description,
    }


_DESCRIPTIONS: Final = {
    "eq": "{field} equals this (`null`: has no value).",
    "ne": "{field} differs from this (`null`: has a value).",
    "gt": "{field} is greater than this.",
    "gte": "{field} is at least this.",
    "lt": "{field} is less than this.",
    "lte": "{field} is at most this.",
}


def _filters(traits: Traits) -> list[dict[str, Any]]:
    assert traits.list_query is not None
    return [_filter_parameter(parameter) for parameter in traits.list_query.parser.filters()]


def _paging(parameters: list[dict[str, Any]], query: ListQuery) -> list[dict[str, Any]]:
    """FastAPI's ``page``/``per_page``/``sort``, with ``sort`` spelled out for this table."""
    fields = "|".join(re.escape(name) for name in query.parser.sortable())
    key = rf"\s*({fields})(:(asc|desc)?)?\s*"
    completed = copy.deepcopy(parameters)
    for parameter in completed:
        if parameter["name"] == "sort":
            # Empty means the default order; spaces around each key are ignored.
            parameter["schema"] = {"type": "string", "pattern": f"^({key}(,{key})*)?$"}
            listed = ", ".join(f"`{name}`" for name in query.parser.sortable())
            parameter["description"] = (
                f"`field[:asc|desc]`, comma-separated; default `created_at:asc`; nulls last. Fields: {listed}."
            )
    return completed
