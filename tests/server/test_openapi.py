"""The served OpenAPI document describes the service that answers.

Every operation lists the statuses it can answer, each error with the one
envelope schema and the headers that come with it; list operations carry their
filters exactly as the query parser accepts them; public routes need no token;
operation ids are readable; creates link to what they made; every example passes
the models' own validation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, TypeAdapter

import server.models.common
import server.models.job
import server.models.order
import server.models.session
import server.models.user
from server.errors import ERROR_CODES
from server.tables import ORDER_QUERIES, USER_QUERIES
from store import QueryParser

Document = dict[str, Any]
METHODS = ("get", "post", "put", "patch", "delete")
PUBLIC = {"login", "refresh", "health", "ready", "index"}


@pytest.fixture
async def document(anon: httpx.AsyncClient) -> Document:
    response = await anon.get("http://testserver/openapi.json")
    assert response.status_code == 200
    spec: Document = response.json()
    return spec


def _operations(document: Document) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _operation(document: Document, operation_id: str) -> dict[str, Any]:
    return next(op for _, _, op in _operations(document) if op["operationId"] == operation_id)


def _errors(operation: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(status): answer for status, answer in operation["responses"].items() if int(status) >= 400}


def test_operation_ids_are_the_route_names(app: FastAPI, document: Document) -> None:
    ids = [operation["operationId"] for _, _, operation in _operations(document)]

    assert len(ids) == len(set(ids))
    assert {"create_user", "list_users", "get_user", "list_orders", "create_order", "login", "me"} <= set(ids)
    assert all(re.fullmatch(r"[a-z_]+", operation_id) for operation_id in ids), ids


async def test_every_error_is_the_one_envelope_listing_every_code(document: Document) -> None:
    schemas = document["components"]["schemas"]
    codes = schemas["ErrorBody"]["properties"]["code"]["enum"]

    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    assert set(codes) == {code for status_codes in ERROR_CODES.values() for code in status_codes}
    for path, method, operation in _operations(document):
        for status, answer in _errors(operation).items():
            assert answer["content"] == {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}
            }, (path, method, status)
            assert all(f"`{code}`" in answer["description"] for code in ERROR_CODES[status])
            assert answer["headers"]["X-Request-ID"]["required"] is True


@pytest.mark.parametrize(
    ("operation_id", "statuses"),
    [
        ("create_user", {400, 401, 403, 408, 409, 413, 415, 422, 429, 503, 507}),
        ("list_orders", {400, 401, 403, 422, 429, 503}),
        ("get_order", {401, 403, 404, 422, 429, 503}),
        ("update_order", {400, 401, 403, 404, 408, 409, 412, 413, 415, 422, 429, 503, 507}),
        ("delete_user", {401, 403, 404, 409, 412, 422, 429, 503}),
        ("login", {400, 401, 408, 409, 413, 415, 422, 429, 503, 507}),
        ("get_job_result", {401, 403, 404, 409, 422, 429, 503}),
        ("health", set()),
        ("ready", {503}),
    ],
)
def test_each_operation_documents_the_statuses_its_route_can_answer(
    document: Document, operation_id: str, statuses: set[int]
) -> None:
    assert set(_errors(_operation(document, operation_id))) == statuses


def test_errors_carry_their_headers(document: Document) -> None:
    create = _operation(document, "create_order")["responses"]

    assert create["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert create["429"]["headers"]["Retry-After"]["required"] is True
    assert create["503"]["headers"]["Retry-After"]["required"] is True
    assert {"X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset"} <= set(create["422"]["headers"])
    assert "X-Rate-Limit-Limit" not in _operation(document, "ready")["responses"]["200"]["headers"]


def test_successes_carry_location_etag_and_link(document: Document) -> None:
    created = _operation(document, "create_user")["responses"]["201"]["headers"]
    fetched = _operation(document, "get_order")["responses"]
    listed = _operation(document, "list_orders")["responses"]

    assert created["Location"]["required"]
    assert created["ETag"]["required"]
    assert "ETag" in fetched["200"]["headers"]
    assert set(fetched["304"]["headers"]) >= {"ETag"}
    assert {"ETag", "Link"} <= set(listed["200"]["headers"])
    assert "ETag" not in _operation(document, "me")["responses"]["200"]["headers"]
    assert "304" in _operation(document, "list_jobs")["responses"]  # every collection is tagged
    assert "304" not in _operation(document, "get_job")["responses"]


def test_public_routes_need_no_token_and_sign_up_takes_one_optionally(document: Document) -> None:
    for _, _, operation in _operations(document):
        if operation["operationId"] in PUBLIC:
            assert operation["security"] == [], operation["operationId"]
        elif operation["operationId"] == "create_user":
            assert operation["security"] == [{}, {"OAuth2PasswordBearer": []}]
        else:
            assert operation["security"] == [{"OAuth2PasswordBearer": []}], operation["operationId"]


@pytest.mark.parametrize(
    ("operation_id", "parser"),
    [("list_users", USER_QUERIES), ("list_orders", ORDER_QUERIES), ("list_user_orders", ORDER_QUERIES)],
)
def test_list_operations_document_every_filter_the_parser_accepts(
    document: Document, operation_id: str, parser: QueryParser
) -> None:
    parameters = {p["name"]: p for p in _operation(document, operation_id)["parameters"] if p["in"] == "query"}
    filters = {name: p for name, p in parameters.items() if name not in ("page", "per_page", "sort")}

    assert set(filters) == {f.name for f in parser.filters()}
    for name, parameter in filters.items():
        # Whatever the document says a value looks like, the parser takes it: the two cannot drift.
        parser.predicate(name, _sample(parameter["schema"], parameter.get("explode", True)))
    assert parameters["per_page"]["schema"]["maximum"] == 100
    assert parameters["page"]["schema"]["minimum"] == 1
    sort = re.compile(parameters["sort"]["schema"]["pattern"])
    for field in parser.sortable():
        assert sort.fullmatch(f"{field}:desc,created_at")
        parser.sort(f"{field}:desc,created_at")
    assert not sort.fullmatch("metadata")


def test_filters_named_like_operators_and_dot_paths_are_real_parameters(document: Document) -> None:
    parameters = {p["name"]: p for p in _operation(document, "list_orders")["parameters"]}

    assert parameters["total_price__gte"]["schema"] == {"type": "number"}
    assert parameters["status__in"]["schema"]["items"]["enum"] == [
        "pending",
        "paid",
        "shipped",
        "delivered",
        "cancelled",
    ]
    assert parameters["status__in"]["explode"] is False
    assert parameters["shipping_address.city__contains"]["in"] == "query"
    assert "created_after" in parameters
    assert "product_name__contains" in parameters
    assert "quantity__contains" not in parameters


def test_delete_user_documents_cascade(document: Document) -> None:
    parameters = {p["name"]: p for p in _operation(document, "delete_user")["parameters"]}

    assert parameters["cascade"]["schema"]["type"] == "boolean"


def test_creates_link_to_the_operations_on_what_they_made(document: Document) -> None:
    links = _operation(document, "create_order")["responses"]["201"]["links"]

    assert set(links) == {"get_order", "update_order", "delete_order", "get_order_user"}
    assert links["get_order"] == {"operationId": "get_order", "parameters": {"order_id": "$response.body#/data/id"}}
    assert "get_user" in _operation(document, "create_user")["responses"]["201"]["links"]


_MODELS: dict[str, type[BaseModel]] = {
    model.__name__: model
    for module in (
        server.models.common,
        server.models.user,
        server.models.order,
        server.models.session,
        server.models.job,
    )
    for model in vars(module).values()
    if isinstance(model, type) and issubclass(model, BaseModel)
}


def _examples(node: Any, where: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "example":
                yield where, value
            elif key == "examples" and isinstance(value, list):
                for example in value:
                    yield where, example
            elif key == "examples" and isinstance(value, dict) and "in" not in node:
                for example in value.values():
                    yield where, example["value"]
            else:
                yield from _examples(value, (*where, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _examples(value, (*where, str(index)))


def _model_of(document: Document, where: tuple[str, ...]) -> tuple[type[BaseModel], str | None]:
    """The model whose schema holds an example, and the property it sits on (``None``: the whole model)."""
    if where[:2] == ("components", "schemas"):
        name = where[2]
        return _MODELS[name], where[4] if len(where) > 4 and where[3] == "properties" else None
    node: Any = document
    for key in where:
        node = node[key]
    title = node["schema"].get("title") or node["schema"]["$ref"].rsplit("/", 1)[-1]
    return _MODELS[title], None


def test_every_example_passes_the_models_own_validation(document: Document) -> None:
    examples = list(_examples(document))

    assert len(examples) >= 6
    for where, example in examples:
        model, field = _model_of(document, where)
        if field is None:
            model.model_validate(example)
        else:
            TypeAdapter(model.model_fields[field].annotation).validate_python(example)


def test_documented_age_bounds_are_the_models(document: Document) -> None:
    age = document["components"]["schemas"]["UserCreate"]["properties"]["age"]["anyOf"][0]

    assert (age["minimum"], age["maximum"]) == (1, 149)


def _sample(schema: dict[str, Any], explode: bool) -> str:
    """A value the schema allows, as a query string carries it."""
    if "anyOf" in schema:
        return _sample(schema["anyOf"][0], explode)
    if schema.get("type") == "array":
        return ",".join([_sample(schema["items"], explode)] * 2)
    if "enum" in schema:
        return str(schema["enum"][-1])
    return {
        ("string", "uuid"): "0b7e4c8e-3f6a-4d4b-9a57-2f0c1e9d8a11",
        ("string", "date-time"): "2026-01-05T09:30:00Z",
        ("string", "date"): "2026-01-05",
        ("integer", None): "3",
        ("number", None): "19.9",
        ("boolean", None): "true",
    }.get((schema.get("type"), schema.get("format")), "text")
