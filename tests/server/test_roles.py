"""Who may do what: every row of the role table, for every kind of caller.

The world: the start-up admin, and two users (``owner`` and ``other``), each
with one order. Every action below targets the owner's data (or, for sign-up
and the open routes, nobody's); it is tried by an anonymous caller, by the
owner, by the other user and by the admin, and each gets the status the
contract's role table says.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Login
from tests.utils.api import assert_error, create_order, create_user
from tests.utils.auth import assert_unauthorized, bearer, token_pair
from tests.utils.data import order_body, user_body

PASSWORD = "correct-horse"
ACTORS = ("anonymous", "owner", "other", "admin")


@dataclass(frozen=True)
class Member:
    user: dict[str, Any]
    order: dict[str, Any]
    http: httpx.AsyncClient
    refresh_token: str


@dataclass(frozen=True)
class World:
    anonymous: httpx.AsyncClient
    owner: Member
    other: Member
    admin: httpx.AsyncClient
    admin_id: str

    def client(self, actor: str) -> httpx.AsyncClient:
        return {
            "anonymous": self.anonymous,
            "owner": self.owner.http,
            "other": self.other.http,
            "admin": self.admin,
        }[actor]


async def _member(anon: httpx.AsyncClient, login: Login, name: str) -> Member:
    user = await create_user(anon, email=f"{name}@example.com", full_name=name.title(), password=PASSWORD)
    http = await login(user["email"], PASSWORD)
    order = await create_order(http, user["id"], product_name=f"{name}'s widget")
    refresh_token = (await token_pair(anon, user["email"], PASSWORD))["refresh_token"]
    return Member(user, order, http, refresh_token)


@pytest.fixture
async def world(anon: httpx.AsyncClient, login: Login, client: httpx.AsyncClient) -> World:
    owner = await _member(anon, login, "olivia")
    other = await _member(anon, login, "oscar")
    admin_id = (await client.get("/auth/me")).json()["data"]["id"]
    return World(anon, owner, other, client, admin_id)


Action = Callable[[httpx.AsyncClient, World], Awaitable[httpx.Response]]


def _root(path: str) -> str:
    """An absolute URL outside ``/api/v1``."""
    return f"http://testserver{path}"


ACTIONS: dict[str, Action] = {
    # Sign-up: open to all; only an admin may make an admin.
    "POST /users (sign-up)": lambda http, w: http.post("/users", json=user_body()),
    "POST /users role=user": lambda http, w: http.post("/users", json=user_body(role="user")),
    "POST /users role=admin": lambda http, w: http.post("/users", json=user_body(role="admin")),
    # The user collection: admins only.
    "GET /users": lambda http, w: http.get("/users"),
    # One user, and their orders: own record only, others look missing.
    "GET /users/{id}": lambda http, w: http.get(f"/users/{w.owner.user['id']}"),
    "PATCH /users/{id}": lambda http, w: http.patch(f"/users/{w.owner.user['id']}", json={"full_name": "Renamed"}),
    "PATCH /users/{id} password": lambda http, w: http.patch(
        f"/users/{w.owner.user['id']}", json={"password": "a-new-password"}
    ),
    "DELETE /users/{id}": lambda http, w: http.delete(f"/users/{w.owner.user['id']}", params={"cascade": "true"}),
    "GET /users/{id}/orders": lambda http, w: http.get(f"/users/{w.owner.user['id']}/orders"),
    # Roles: only an admin changes one; repeating your current role is no change.
    "PATCH /users/{id} role=admin": lambda http, w: http.patch(f"/users/{w.owner.user['id']}", json={"role": "admin"}),
    "PATCH /users/{id} role unchanged": lambda http, w: http.patch(
        f"/users/{w.owner.user['id']}", json={"role": "user", "age": 30}
    ),
    "PATCH admin role=user": lambda http, w: http.patch(f"/users/{w.admin_id}", json={"role": "user"}),
    # Creating orders: for yourself; for anyone as an admin.
    "POST /orders": lambda http, w: http.post("/orders", json=order_body(w.owner.user["id"])),
    "POST /orders for a missing user": lambda http, w: http.post(
        "/orders", json=order_body("00000000-0000-4000-8000-000000000000")
    ),
    "GET /orders": lambda http, w: http.get("/orders"),
    # One order: own only, others look missing.
    "GET /orders/{id}": lambda http, w: http.get(f"/orders/{w.owner.order['id']}"),
    "PATCH /orders/{id}": lambda http, w: http.patch(f"/orders/{w.owner.order['id']}", json={"quantity": 5}),
    "DELETE /orders/{id}": lambda http, w: http.delete(f"/orders/{w.owner.order['id']}"),
    "GET /orders/{id}/user": lambda http, w: http.get(f"/orders/{w.owner.order['id']}/user"),
    # Moving an order to another user: admins only.
    "PATCH /orders/{id} user_id=other": lambda http, w: http.patch(
        f"/orders/{w.owner.order['id']}", json={"user_id": w.other.user["id"]}
    ),
    "PATCH /orders/{id} user_id=admin": lambda http, w: http.patch(
        f"/orders/{w.owner.order['id']}", json={"user_id": w.admin_id}
    ),
    "PATCH /orders/{id} user_id unchanged": lambda http, w: http.patch(
        f"/orders/{w.owner.order['id']}", json={"user_id": w.owner.user["id"], "status": "paid"}
    ),
    # Open to everyone.
    "GET / (the index)": lambda http, w: http.get(_root("/")),
    "GET /health": lambda http, w: http.get("/health"),
    "GET /ready": lambda http, w: http.get("/ready"),
    "GET /metrics": lambda http, w: http.get(_root("/metrics")),
    "GET /docs": lambda http, w: http.get(_root("/docs")),
    "GET /redoc": lambda http, w: http.get(_root("/redoc")),
    "GET /openapi.json": lambda http, w: http.get(_root("/openapi.json")),
    "POST /auth/token": lambda http, w: http.post(
        "/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    ),
    "POST /auth/refresh": lambda http, w: http.post("/auth/refresh", json={"refresh_token": w.owner.refresh_token}),
}

ROLE_TABLE: dict[str, tuple[int, int, int, int]] = {
    # action: (anonymous, owner, other, admin)
    "POST /users (sign-up)": (201, 201, 201, 201),
    "POST /users role=user": (201, 201, 201, 201),
    "POST /users role=admin": (403, 403, 403, 201),
    "GET /users": (401, 403, 403, 200),
    "GET /users/{id}": (401, 200, 404, 200),
    "PATCH /users/{id}": (401, 200, 404, 200),
    "PATCH /users/{id} password": (401, 200, 404, 200),
    "DELETE /users/{id}": (401, 204, 404, 204),
    "GET /users/{id}/orders": (401, 200, 404, 200),
    "PATCH /users/{id} role=admin": (401, 403, 404, 200),
    "PATCH /users/{id} role unchanged": (401, 200, 404, 200),
    "PATCH admin role=user": (401, 404, 404, 200),
    "POST /orders": (401, 201, 403, 201),
    "POST /orders for a missing user": (401, 403, 403, 422),
    "GET /orders": (401, 200, 200, 200),
    "GET /orders/{id}": (401, 200, 404, 200),
    "PATCH /orders/{id}": (401, 200, 404, 200),
    "DELETE /orders/{id}": (401, 204, 404, 204),
    "GET /orders/{id}/user": (401, 200, 404, 200),
    "PATCH /orders/{id} user_id=other": (401, 403, 404, 200),
    "PATCH /orders/{id} user_id=admin": (401, 403, 404, 200),
    "PATCH /orders/{id} user_id unchanged": (401, 200, 404, 200),
    "GET / (the index)": (200, 200, 200, 200),
    "GET /health": (200, 200, 200, 200),
    "GET /ready": (200, 200, 200, 200),
    "GET /metrics": (200, 200, 200, 200),
    "GET /docs": (200, 200, 200, 200),
    "GET /redoc": (200, 200, 200, 200),
    "GET /openapi.json": (200, 200, 200, 200),
    "POST /auth/token": (200, 200, 200, 200),
    "POST /auth/refresh": (200, 200, 200, 200),
}

CASES = [
    pytest.param(actor, action, status, id=f"{actor}: {action} -> {status}")
    for action, statuses in ROLE_TABLE.items()
    for actor, status in zip(ACTORS, statuses, strict=True)
]
_CODES = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 422: "VALIDATION_ERROR"}


def test_the_role_table_covers_every_action() -> None:
    assert set(ROLE_TABLE) == set(ACTIONS)


@pytest.mark.parametrize(("actor", "action", "status"), CASES)
async def test_the_role_table(world: World, actor: str, action: str, status: int) -> None:
    response = await ACTIONS[action](world.client(actor), world)

    if status >= 400:
        error = assert_error(response, status, _CODES[status])
        if status == 401:
            assert_unauthorized(response)
        if status == 404:
            # Someone else's record is indistinguishable from a missing one.
            assert error["message"] in {"user not found", "order not found"}
    else:
        assert response.status_code == status, response.text


async def _unchanged(world: World) -> None:
    """The owner's user and order are exactly as the fixture left them."""
    user = await world.admin.get(f"/users/{world.owner.user['id']}")
    order = await world.admin.get(f"/orders/{world.owner.order['id']}")
    assert user.json()["data"] == world.owner.user
    assert {k: v for k, v in order.json()["data"].items() if k != "user"} == {
        k: v for k, v in world.owner.order.items() if k != "user"
    }


REFUSED_WRITES = [
    (actor, action)
    for action, statuses in ROLE_TABLE.items()
    if action.startswith(("PATCH /users/{id}", "DELETE /users/{id}", "PATCH /orders", "DELETE /orders"))
    for actor, status in zip(ACTORS, statuses, strict=True)
    if status >= 400
]


@pytest.mark.parametrize(("actor", "action"), REFUSED_WRITES, ids=[f"{a}: {b}" for a, b in REFUSED_WRITES])
async def test_a_refused_write_changes_nothing(world: World, actor: str, action: str) -> None:
    response = await ACTIONS[action](world.client(actor), world)

    assert response.status_code >= 400
    await _unchanged(world)


# -- what each caller sees, beyond the status ---------------------------------------------


@pytest.mark.parametrize("actor", ["anonymous", "owner", "other"])
async def test_sign_up_without_a_role_makes_a_user(world: World, actor: str) -> None:
    response = await ACTIONS["POST /users (sign-up)"](world.client(actor), world)

    assert response.json()["data"]["role"] == "user"


async def test_an_admin_may_create_an_admin_who_is_one(world: World, anon: httpx.AsyncClient) -> None:
    body = user_body(role="admin")
    created = await world.admin.post("/users", json=body)
    assert created.json()["data"]["role"] == "admin"

    pair = await token_pair(anon, body["email"], body["password"])

    assert (await anon.get("/users", headers=bearer(pair["access_token"]))).status_code == 200


@pytest.mark.parametrize(
    ("actor", "expected"),
    [("owner", ["olivia"]), ("other", ["oscar"]), ("admin", ["olivia", "oscar"])],
)
async def test_get_orders_shows_only_your_own_unless_admin(world: World, actor: str, expected: list[str]) -> None:
    response = await world.client(actor).get("/orders")

    owners = [order["user"]["full_name"].lower() for order in response.json()["data"]]
    assert owners == expected
    assert response.json()["meta"]["total"] == len(expected)


@pytest.mark.parametrize("actor", ["owner", "other"])
async def test_a_user_cannot_filter_their_way_to_other_orders(world: World, actor: str) -> None:
    theirs = world.other if actor == "owner" else world.owner
    http = world.client(actor)

    by_user = await http.get("/orders", params={"user_id": theirs.user["id"]})
    by_id = await http.get("/orders", params={"id": theirs.order["id"]})

    assert by_user.json()["data"] == []
    assert by_id.json()["data"] == []
    assert by_user.json()["meta"]["total"] == by_id.json()["meta"]["total"] == 0


async def test_the_owner_sees_their_own_records(world: World) -> None:
    http = world.owner.http
    user = await http.get(f"/users/{world.owner.user['id']}")
    orders = await http.get(f"/users/{world.owner.user['id']}/orders")
    order_user = await http.get(f"/orders/{world.owner.order['id']}/user")

    assert user.json()["data"] == world.owner.user
    assert [order["id"] for order in orders.json()["data"]] == [world.owner.order["id"]]
    assert order_user.json()["data"] == world.owner.user


async def test_another_users_record_looks_exactly_like_a_missing_one(world: World) -> None:
    http = world.other.http
    missing = "00000000-0000-4000-8000-000000000000"
    for path in ("/users/{}", "/users/{}/orders", "/orders/{}", "/orders/{}/user"):
        record = world.owner.order["id"] if path.startswith("/orders") else world.owner.user["id"]
        theirs = await http.get(path.format(record))
        absent = await http.get(path.format(missing))
        assert theirs.status_code == absent.status_code == 404
        assert theirs.json()["error"]["message"] == absent.json()["error"]["message"]


async def test_a_user_cannot_make_themselves_an_admin(world: World) -> None:
    refused = await world.owner.http.patch(f"/users/{world.owner.user['id']}", json={"role": "admin"})
    assert_error(refused, 403, "FORBIDDEN")

    assert (await world.owner.http.get("/auth/me")).json()["data"]["role"] == "user"
    assert_error(await world.owner.http.get("/users"), 403, "FORBIDDEN")


async def test_an_admin_moves_an_order_to_another_user(world: World) -> None:
    moved = await world.admin.patch(f"/orders/{world.owner.order['id']}", json={"user_id": world.other.user["id"]})

    assert moved.json()["data"]["user"]["id"] == world.other.user["id"]
    assert (await world.other.http.get(f"/orders/{world.owner.order['id']}")).status_code == 200
    assert (await world.owner.http.get(f"/orders/{world.owner.order['id']}")).status_code == 404
