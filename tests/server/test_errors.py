"""The error envelope for every failure, the framework's own included, and request ids."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from server.middleware.edge import Edge
from store import (
    BatchRejected,
    Conflict,
    InsufficientStorage,
    InvalidQuery,
    InvalidValue,
    MissingReference,
    NotFound,
    PreconditionFailed,
    StoreClosed,
    StoreError,
    StoreOverloaded,
)
from tests.utils.api import assert_error, create_order, create_user, error_fields
from tests.utils.data import user_body

ORIGIN = "https://app.example.com"

GENERATED_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


async def test_unknown_route_is_404_not_found(client: httpx.AsyncClient) -> None:
    urls = [
        "/nope",
        "/users/extra/path/segments",
        "/orders/123e4567-e89b-12d3-a456-426614174000/items",
        "http://testserver/nope",
        "http://testserver/api/v2/users",
    ]
    for url in urls:
        error = assert_error(await client.get(url), 404, "NOT_FOUND")
        assert "details" not in error


async def test_wrong_method_is_405_method_not_allowed_listing_the_allowed_ones(client: httpx.AsyncClient) -> None:
    cases = [
        ("PUT", "/users", "GET, POST"),
        ("DELETE", "/orders", "GET, POST"),
        ("POST", "/users/{id}", "GET, PATCH, DELETE"),
        ("PUT", "/orders/{id}", "GET, PATCH, DELETE"),
        ("DELETE", "/users/{id}/orders", "GET"),
        ("POST", "/health", "GET"),
    ]
    for method, path, allowed in cases:
        response = await client.request(method, path.format(id=uuid.uuid4()))

        error = assert_error(response, 405, "METHOD_NOT_ALLOWED")
        assert method in error["message"]
        assert response.headers["allow"] == allowed, (method, path)


@pytest.mark.parametrize(("method", "path"), [("POST", "/users"), ("POST", "/orders"), ("PATCH", "/users/{id}")])
async def test_a_body_that_is_not_json_is_400_bad_request(client: httpx.AsyncClient, method: str, path: str) -> None:
    user = await create_user(client)

    for body in [b"{bad", b'{"email": "a@example.com",}', b"\xff\xfe", b"{'single': 'quotes'}"]:
        response = await client.request(
            method, path.format(id=user["id"]), content=body, headers={"Content-Type": "application/json"}
        )

        error = assert_error(response, 400, "BAD_REQUEST")
        assert "JSON" in error["message"]
    empty = await client.request(method, path.format(id=user["id"]), headers={"Content-Type": "application/json"})
    # No body at all is not JSON either (api.md: 400 for a body that is not JSON), not a "missing field".
    assert "empty" in assert_error(empty, 400, "BAD_REQUEST")["message"]


async def test_validation_errors_are_422_with_field_details(client: httpx.AsyncClient) -> None:
    cases: list[tuple[Any, list[str]]] = [
        ({"full_name": "Ada", "password": "correct-horse"}, ["body.email"]),
        ({}, ["body.email", "body.full_name", "body.password"]),
        (user_body(email="ada"), ["body.email"]),
        (user_body(shoe_size=42), ["body.shoe_size"]),
        ([user_body()], ["body"]),
        ("user", ["body"]),
    ]
    for body, fields in cases:
        response = await client.post("/users", json=body)

        error = assert_error(response, 422, "VALIDATION_ERROR")
        assert error_fields(response) == fields, body
        assert all(detail["message"] for detail in error["details"])
    # JSON's null is a body, just not an object: a validation error, unlike no body at all.
    null = await client.post("/users", content=b"null", headers={"Content-Type": "application/json"})
    assert_error(null, 422, "VALIDATION_ERROR")
    assert error_fields(null) == ["body"]


async def test_a_path_id_that_is_not_a_uuid_is_422(client: httpx.AsyncClient) -> None:
    cases = [
        ("GET", "/users/42", "path.user_id"),
        ("PATCH", "/users/not-a-uuid", "path.user_id"),
        ("DELETE", "/users/not-a-uuid", "path.user_id"),
        ("GET", "/users/not-a-uuid/orders", "path.user_id"),
        ("GET", "/orders/not-a-uuid", "path.order_id"),
        ("PATCH", "/orders/not-a-uuid", "path.order_id"),
        ("DELETE", "/orders/not-a-uuid", "path.order_id"),
        ("GET", "/orders/not-a-uuid/user", "path.order_id"),
    ]
    for method, path, field in cases:
        response = await client.request(method, path, json={"age": 3} if method == "PATCH" else None)

        assert_error(response, 422, "VALIDATION_ERROR")
        assert field in error_fields(response), (method, path)


async def test_a_bad_cascade_flag_is_422(client: httpx.AsyncClient) -> None:
    user = await create_user(client)

    response = await client.delete(f"/users/{user['id']}", params={"cascade": "maybe"})

    assert_error(response, 422, "VALIDATION_ERROR")
    assert error_fields(response) == ["query.cascade"]
    assert (await client.get(f"/users/{user['id']}")).status_code == 200


@pytest.mark.parametrize("path", ["/health", "/users", "/nope"])
async def test_a_valid_request_id_is_echoed(client: httpx.AsyncClient, path: str) -> None:
    for request_id in ["abc", "A-Z_a.z-0.9", "x" * 128, "0"]:
        response = await client.get(path, headers={"X-Request-ID": request_id})

        assert response.headers.get_list("x-request-id") == [request_id]
        if response.status_code >= 400:
            assert response.json()["error"]["request_id"] == request_id


async def test_an_invalid_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    for request_id in [b"x" * 129, b"", b"has space", b"semi;colon", b"slash/", b"caf\xc3\xa9", b"<script>"]:
        response = await client.get("/nope", headers={b"X-Request-ID": request_id})

        error = assert_error(response, 404, "NOT_FOUND")
        generated = response.headers["x-request-id"]
        assert response.headers.get_list("x-request-id") == [generated]
        assert GENERATED_ID.fullmatch(generated)
        assert generated.encode() != request_id
        assert error["request_id"] == generated


async def test_each_request_gets_its_own_id(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/health")).headers["x-request-id"] for _ in range(5)}

    assert len(ids) == 5


@pytest.fixture
def broken_route(app: FastAPI) -> str:
    """A route that fails the way a bug would, with something secret in the exception."""

    async def explode() -> None:
        raise RuntimeError("secret at /srv/memdb/internal.py")

    app.add_api_route("/api/v1/explode", explode)
    return "/explode"


@pytest.mark.parametrize(
    ("env", "message"), [("development", "internal error: RuntimeError"), ("production", "internal error")]
)
async def test_an_unexpected_error_is_500_with_no_internals(
    client: httpx.AsyncClient,
    app: FastAPI,
    broken_route: str,
    monkeypatch: pytest.MonkeyPatch,
    env: str,
    message: str,
) -> None:
    monkeypatch.setattr(app.state.settings, "env", env)
    monkeypatch.setattr(app.state.settings, "cors_origins", (ORIGIN,))

    response = await client.get(broken_route, headers={"X-Request-ID": "trace-me", "Origin": ORIGIN})

    error = assert_error(response, 500, "INTERNAL_ERROR")
    assert response.headers["access-control-allow-origin"] == ORIGIN  # so a browser app can read the error
    assert error["message"] == message
    assert "secret" not in response.text
    assert "/srv" not in response.text
    assert "Traceback" not in response.text
    assert error["request_id"] == "trace-me"
    assert response.headers.get_list("x-request-id") == ["trace-me"]


STORE_ERRORS: list[tuple[StoreError, int, str, bool]] = [
    (NotFound("order", "x"), 404, "NOT_FOUND", False),
    (MissingReference("order", "user_id", "user", "x"), 422, "VALIDATION_ERROR", False),
    (Conflict("user", "email", "taken"), 409, "CONFLICT", False),
    (Conflict("user", None, "referenced"), 409, "CONFLICT", False),
    (PreconditionFailed("user", "x"), 412, "PRECONDITION_FAILED", False),
    (InvalidQuery("colour", "unknown field"), 400, "INVALID_QUERY", False),
    (InvalidValue("user", "age", "too old"), 422, "VALIDATION_ERROR", False),
    (InsufficientStorage(), 507, "INSUFFICIENT_STORAGE", False),
    (StoreOverloaded(0.5), 503, "SERVICE_UNAVAILABLE", True),
    (StoreClosed(), 503, "SERVICE_UNAVAILABLE", True),
    (BatchRejected("user", 2, Conflict("user", "id", "dup")), 409, "CONFLICT", False),
    (StoreError("something new"), 500, "INTERNAL_ERROR", False),
]


async def test_store_errors_map_to_status_and_code(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    for error, status, code, retry_after in STORE_ERRORS:

        async def fail(*args: object, raised: StoreError = error, **kwargs: object) -> None:
            raise raised

        monkeypatch.setattr(app.state.store, "parent", fail)

        response = await client.get(f"/orders/{uuid.uuid4()}/user")

        assert_error(response, status, code)
        assert ("retry-after" in response.headers) is retry_after, error
        assert response.headers.get_list("x-request-id") == [response.json()["error"]["request_id"]]


async def test_store_details_name_the_body_field(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    order = await create_order(client, user["id"])

    too_big = await client.patch(f"/orders/{order['id']}", json={"metadata": {"n": 2**70}})

    assert_error(too_big, 422, "VALIDATION_ERROR")
    assert error_fields(too_big) == ["body.metadata"]


async def test_request_ids_leave_other_scopes_alone() -> None:
    seen: list[dict[str, Any]] = []

    async def inner(scope: dict[str, Any], receive: object, send: object) -> None:
        seen.append(scope)

    async def nothing() -> dict[str, Any]:
        return {}

    async def ignore(message: dict[str, Any]) -> None:
        return None

    await Edge(inner)({"type": "lifespan"}, nothing, ignore)  # type: ignore[arg-type]

    assert seen == [{"type": "lifespan"}]


async def test_validation_messages_speak_in_one_voice(client: httpx.AsyncClient) -> None:
    """memdb's own phrasing everywhere: lower-case, no full stop, no pydantic "Input should be" or "Value error,"."""
    user = await create_user(client)
    answers = [
        await client.post("/users", json={"email": "ada", "full_name": "", "age": 150, "password": "x", "extra": 1}),
        await client.post("/users", json={}),
        await client.post(
            "/orders", json={"user_id": user["id"], "product_name": "x", "quantity": 0, "total_price": 9}
        ),
        await client.patch(f"/users/{user['id']}", json={"full_name": None}),
        await client.get("/users?per_page=500"),
        await client.post("/auth/token", json={"email": "a@example.com"}),
        await client.post("/jobs", json={"type": "export", "tables": ["nope"]}),
    ]
    details = {
        (detail["field"], detail["message"]) for answer in answers for detail in answer.json()["error"]["details"]
    }

    assert {
        ("body.email", "must be a valid email address: an email address must have an @-sign"),
        ("body.full_name", "must have at least 1 character"),
        ("body.age", "must be less than or equal to 149"),
        ("body.password", "must be 8 to 72 bytes in UTF-8"),
        ("body.extra", "is not a known field"),
        ("body.password", "is required"),
        ("body.quantity", "must be greater than or equal to 1"),
        ("body.full_name", "may not be null"),
        ("query.per_page", "must be less than or equal to 100"),
        ("body.export.tables.0", "must be 'users' or 'orders'"),
    } <= details
    for _, message in details:
        assert message[0].islower(), message
        assert not message.endswith("."), message
        assert not message.startswith(("Input should", "Value error", "String should", "Field required")), message
