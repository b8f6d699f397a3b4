"""Error messages are plain words naming the field: no exception text reaches a client (CONTRACT §3, §8).

Each request below once answered with a library's own words (``invalid literal
for int() with base 10``, ``[<class 'decimal.Overflow'>]``, ``'utf-8' codec
can't encode character…``). They run against a real server in production mode.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.utils.server import running_server

SECRET = "a-production-secret-of-some-variety-2026"
ADMIN = {"email": "ops@example.com", "password": "ops-password-2026"}
PYTHONISMS = (
    "<class",
    "Error",
    "Exception",
    "Traceback",
    "invalid literal",
    "codec",
    "base 10",
    "decimal.",
    "badly formed",
    "surrogates not allowed",
    "\\u",
    "[<",
    "'utf-8'",
)

QUERIES = [
    ("/orders?total_price__gte=1e999999999", "query.total_price__gte", "the number is out of range"),
    ("/orders?quantity=abc", "query.quantity", "expected a whole number"),
    ("/orders?quantity__in=1,x", "query.quantity__in", "expected a whole number"),
    ("/orders?total_price=NaN", "query.total_price", "expected a finite decimal number"),
    ("/orders?total_price__lt=cheap", "query.total_price__lt", "expected a decimal number"),
    ("/orders?user_id=42", "query.user_id", "expected a UUID"),
    ("/users?age=old", "query.age", "expected a whole number"),
    ("/users?created_after=yesterday", "query.created_after", "expected a date"),
    ("/orders?order_date__gt=2024-13-01", "query.order_date__gt", "expected a date"),
    ("/orders?status=lost", "query.status", "must be one of"),
]

BODIES = [
    ("POST", "/users", '{"email":"s@example.com","full_name":"S","password":"\\ud800abcdefgh"}', "body.password"),
    (
        "POST",
        "/users",
        '{"email":"m@example.com","full_name":"M","password":"abcdefgh1","metadata":{"k":"\\udfff"}}',
        "body.metadata",
    ),
    (
        "POST",
        "/users",
        '{"email":"n@example.com","full_name":"N","password":"abcdefgh1","metadata":{"n":' + str(2**70) + "}}",
        "body.metadata",
    ),
]


@pytest.fixture(scope="module")
def server() -> Iterator[httpx.Client]:
    environment = {
        "MEMDB_ENV": "production",
        "MEMDB_JWT_SECRET": SECRET,
        "MEMDB_BCRYPT_ROUNDS": "10",
        "MEMDB_ADMIN_EMAIL": ADMIN["email"],
        "MEMDB_ADMIN_PASSWORD": ADMIN["password"],
        "MEMDB_RATE_LIMIT_PER_MINUTE": "0",
    }
    with running_server(environment) as base, httpx.Client(base_url=f"{base}/api/v1", timeout=30) as http:
        token = http.post("/auth/token", json=ADMIN).json()["data"]["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield http


def _messages(response: httpx.Response) -> list[str]:
    error = response.json()["error"]
    return [error["message"], *(detail["message"] for detail in error.get("details", []))]


def _assert_plain(response: httpx.Response) -> None:
    for message in _messages(response):
        leaks = [marker for marker in PYTHONISMS if marker in message]
        assert not leaks, f"{message!r} leaks {leaks}"


@pytest.mark.parametrize(("path", "field", "reason"), QUERIES, ids=[path for path, _, _ in QUERIES])
def test_an_unparseable_filter_value_is_named_in_plain_words(
    server: httpx.Client, path: str, field: str, reason: str
) -> None:
    response = server.get(path)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_QUERY"
    assert [detail["field"] for detail in error["details"]] == [field]
    assert reason in error["details"][0]["message"]
    _assert_plain(response)


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    BODIES,
    ids=["surrogate-password", "surrogate-in-metadata", "integer-past-64-bits"],
)
def test_a_body_value_nothing_can_store_is_named_in_plain_words(
    server: httpx.Client, method: str, path: str, body: str, field: str
) -> None:
    response = server.request(method, path, content=body.encode(), headers={"Content-Type": "application/json"})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert [detail["field"] for detail in error["details"]] == [field]
    _assert_plain(response)


def test_a_password_change_to_a_lone_surrogate_is_named_in_plain_words(server: httpx.Client) -> None:
    body = {"email": f"{uuid.uuid4().hex}@example.com", "full_name": "P", "password": "abcdefgh1"}
    user = server.post("/users", json=body).json()["data"]

    response = server.patch(
        f"/users/{user['id']}",
        content=json.dumps({"password": "x"}).replace('"x"', '"\\udfffabcdefgh"').encode(),
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 422
    [detail] = response.json()["error"]["details"]
    assert detail["field"] == "body.password"
    assert "valid Unicode text" in detail["message"]
    _assert_plain(response)
