"""Authentication and role come from the headers, before a byte of the body is read (CONTRACT §8).

Over real sockets against ``python -m server``: each writing route that needs
a token is sent a request announcing 900 KiB of body, of which only the first
4 KiB ever come. The server is started with a body timeout of two minutes, and
the answer is awaited for far less: a ``401`` (or, for a non-admin on an admin
route, a ``403``) can only have come from the headers, with the rest of the
body unread (and the connection closed rather than drained). In process, which
routes need a token is read from the routes themselves, and every one that
takes a body is among the targets tried here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import orjson
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Match

from server.security.access import AuthenticateFirstRoute, requires_bearer, route_access
from server.security.auth import Access
from tests.utils.api import Target, write_targets
from tests.utils.raw_http import Answer, connect, read_answer, request_head
from tests.utils.server import running_server

ADMIN = {"email": "first-admin@example.com", "password": "first-admin-password"}
PLAIN = {"email": "first-plain@example.com", "full_name": "Plain", "password": "first-plain-password"}
BODY_TIMEOUT_SECONDS = 120
PROMPTLY = 20.0
"""How long an answer may take: far below the body timeout, so a 408 cannot pass for a refusal."""
ANNOUNCED = 900 * 1024
SENT = 4 * 1024
TOKEN_TARGETS = ["create-order", "patch-user", "patch-order", "take-snapshot", "logout"]
"""The writing routes that need a token (the last has no body model, so FastAPI itself reads none of it)."""
ADMIN_WRITES: dict[str, Target] = {"take-snapshot": ("POST", "/snapshots", {"name": "auth-first"})}
"""Admin-only routes with a body model (the admin routes that stream their own body, ``/jobs``, are tried apart)."""
ALL_TARGETS = ["create-user", *TOKEN_TARGETS]


@dataclass(frozen=True)
class Live:
    base: str
    targets: dict[str, Target]
    tokens: dict[str, str]
    """An admin's, a plain user's, a revoked one and a forged one."""


def _sign_in(http: httpx.Client, credentials: dict[str, str]) -> str:
    response = http.post("/auth/token", json={"email": credentials["email"], "password": credentials["password"]})
    assert response.status_code == 200, response.text
    token: str = response.json()["data"]["access_token"]
    return token


async def _targets(base: str, admin: str) -> dict[str, Target]:
    headers = {"Authorization": f"Bearer {admin}"}
    async with httpx.AsyncClient(base_url=f"{base}/api/v1", headers=headers, timeout=10) as http:
        return {**await write_targets(http), **ADMIN_WRITES, "logout": ("POST", "/auth/logout", {})}


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    environment = {
        "MEMDB_ADMIN_EMAIL": ADMIN["email"],
        "MEMDB_ADMIN_PASSWORD": ADMIN["password"],
        "MEMDB_RATE_LIMIT_PER_MINUTE": "0",
        "MEMDB_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_SECONDS),
    }
    with running_server(environment) as base, httpx.Client(base_url=f"{base}/api/v1", timeout=10) as http:
        assert http.post("/users", json=PLAIN).status_code == 201
        admin = _sign_in(http, ADMIN)
        revoked = _sign_in(http, PLAIN)
        assert http.post("/auth/logout", headers={"Authorization": f"Bearer {revoked}"}).status_code == 204
        genuine = _sign_in(http, PLAIN)
        forged = genuine[:-8] + ("AAAAAAAA" if not genuine.endswith("AAAAAAAA") else "BBBBBBBB")
        tokens = {"admin": admin, "plain": genuine, "revoked": revoked, "forged": forged}
        yield Live(base, asyncio.run(_targets(base, admin)), tokens)


def unfinished(live: Live, method: str, path: str, token: str | None) -> tuple[Answer, float]:
    """Send ``method path`` announcing :data:`ANNOUNCED` bytes, only :data:`SENT` of them; the answer and its time."""
    headers = {"Content-Type": "application/json", "Content-Length": str(ANNOUNCED)}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    with connect(live.base) as sock:
        started = time.monotonic()
        sock.sendall(request_head(live.base, method, f"/api/v1{path}", headers) + b"{" + b" " * (SENT - 1))
        answer = read_answer(sock, timeout=PROMPTLY)
        return answer, time.monotonic() - started


def assert_refused_unread(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert answer.error()["code"] == code
    assert answer.headers["connection"] == "close"  # the rest of the body is not drained either
    assert answer.headers["content-type"] == "application/json"


@pytest.mark.parametrize("credential", [None, "forged", "revoked"])
@pytest.mark.parametrize("target", TOKEN_TARGETS)
def test_a_route_needing_a_token_refuses_a_bad_one_before_reading_the_body(
    live: Live, target: str, credential: str | None
) -> None:
    method, path, _ = live.targets[target]

    answer, elapsed = unfinished(live, method, path, None if credential is None else live.tokens[credential])

    assert_refused_unread(answer, 401, "UNAUTHORIZED")
    assert answer.headers["www-authenticate"] == "Bearer"
    assert elapsed < PROMPTLY


@pytest.mark.parametrize("credential", ["forged", "revoked"])
def test_sign_up_is_open_but_a_bad_token_on_it_is_refused_before_the_body(live: Live, credential: str) -> None:
    method, path, _ = live.targets["create-user"]

    answer, _ = unfinished(live, method, path, live.tokens[credential])

    assert_refused_unread(answer, 401, "UNAUTHORIZED")
    assert answer.headers["www-authenticate"] == "Bearer"


def test_a_non_admin_on_an_admin_route_is_refused_before_the_body(live: Live) -> None:
    answer, _ = unfinished(live, "POST", "/jobs", live.tokens["plain"])

    assert_refused_unread(answer, 403, "FORBIDDEN")


def test_with_a_good_token_each_route_reads_its_whole_body_and_works(live: Live) -> None:
    statuses = {}
    with httpx.Client(base_url=f"{live.base}/api/v1", timeout=10) as http:
        for name in ALL_TARGETS:  # logout last: it ends the admin's session
            method, path, body = live.targets[name]
            raw = orjson.dumps(body)
            headers = {"Authorization": f"Bearer {live.tokens['admin']}", "Content-Type": "application/json"}
            statuses[name] = http.request(method, path, content=raw, headers=headers).status_code

    assert statuses == {
        "create-user": 201,
        "create-order": 201,
        "patch-user": 200,
        "patch-order": 200,
        "take-snapshot": 201,
        "logout": 204,
    }


# -- in process: which routes need a token, read from the routes -------------------------------------------------


def _route(app: FastAPI, method: str, path: str) -> APIRoute:
    scope = {"type": "http", "method": method, "path": f"/api/v1{path}"}
    for route in app.routes:
        if isinstance(route, APIRoute) and route.matches(scope)[0] is Match.FULL:
            return route
    raise LookupError(f"no route for {method} {path}")


def test_what_each_route_asks_of_its_caller_comes_from_its_dependencies(app: FastAPI) -> None:
    asked = {
        (method, path): route_access(_route(app, method, path))
        for method, path in [
            ("POST", "/users"),
            ("POST", "/auth/token"),
            ("POST", "/auth/refresh"),
            ("GET", "/health"),
            ("GET", "/ready"),
            ("POST", "/auth/logout"),
            ("PATCH", "/users/00000000-0000-0000-0000-000000000001"),
            ("GET", "/orders"),
            ("GET", "/users"),
            ("POST", "/jobs"),
        ]
    }

    assert asked == {
        ("POST", "/users"): Access.OPTIONAL,
        ("POST", "/auth/token"): Access.PUBLIC,
        ("POST", "/auth/refresh"): Access.PUBLIC,
        ("GET", "/health"): Access.PUBLIC,
        ("GET", "/ready"): Access.PUBLIC,
        ("POST", "/auth/logout"): Access.TOKEN,
        ("PATCH", "/users/00000000-0000-0000-0000-000000000001"): Access.TOKEN,
        ("GET", "/orders"): Access.TOKEN,
        ("GET", "/users"): Access.ADMIN,
        ("POST", "/jobs"): Access.ADMIN,
    }
    public = {route.path for route in app.routes if not requires_bearer(route)}
    assert {"/metrics", "/docs", "/openapi.json", "/docs-assets", "/api/v1/users", "/api/v1/auth/token"} <= public


def test_every_route_that_asks_for_a_caller_checks_before_its_body(app: FastAPI) -> None:
    guarded = [route for route in app.routes if route_access(route) > Access.PUBLIC]

    assert guarded
    assert [route.path for route in guarded if not isinstance(route, AuthenticateFirstRoute)] == []


async def test_the_socket_tests_try_every_route_that_needs_a_token_and_takes_a_body(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    targets = {**await write_targets(client), **ADMIN_WRITES, "logout": ("POST", "/auth/logout", {})}
    tried = {_named(_route(app, targets[name][0], targets[name][1])) for name in TOKEN_TARGETS}
    with_bodies = {
        _named(route)
        for route in app.routes
        if isinstance(route, APIRoute) and route.body_field is not None and requires_bearer(route)
    }

    assert with_bodies
    assert with_bodies <= tried


def _named(route: APIRoute) -> tuple[str, str]:
    return ",".join(sorted(route.methods)), route.path
