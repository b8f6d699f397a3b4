"""Snapshots over a real socket: a restore puts the data back exactly and at once, for admins only, within memory.

One server (the sample seed, ``MEMDB_SNAPSHOT_ON_START=seed``) serves the module;
each test starts by restoring ``seed`` — the fixture pattern docs/fixtures.md
recommends — so the tests are also its proof.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bench.make_dataset import Options, generate
from tests.utils.api import TIMESTAMP, assert_error
from tests.utils.data import order_body, user_body
from tests.utils.server import ROOT, running_server

SEED = ROOT / "data" / "sample.json"
ADMIN = {"email": "admin@memdb.dev", "password": "memdb-admin-2026"}  # the sample's development admin
SEED_USERS, SEED_ORDERS = 40, 300
MiB = 1024 * 1024
QUIET = {"MEMDB_RATE_LIMIT_PER_MINUTE": "0", "MEMDB_LOG_LEVEL": "WARNING"}
"""No rate limit, and no log line per request (nothing reads the server's output until it ends)."""


def _token(http: httpx.Client, email: str, password: str) -> dict[str, str]:
    response = http.post("/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['data']['access_token']}"}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server({**QUIET, "MEMDB_SEED_FILE": str(SEED), "MEMDB_SNAPSHOT_ON_START": "seed"}) as base:
        yield f"{base}/api/v1"


@pytest.fixture(scope="module")
def admin_headers(server: str) -> dict[str, str]:
    with httpx.Client(base_url=server, timeout=30) as http:
        return _token(http, ADMIN["email"], ADMIN["password"])


@pytest.fixture
def admin(server: str, admin_headers: dict[str, str]) -> Iterator[httpx.Client]:
    """An admin client on data put back to the seed (and no snapshots but ``seed``)."""
    with httpx.Client(base_url=server, headers=admin_headers, timeout=30) as http:
        assert http.post("/snapshots/seed/restore").status_code == 200
        for snapshot in http.get("/snapshots").json()["data"]:
            if snapshot["name"] != "seed":
                assert http.delete(f"/snapshots/{snapshot['name']}").status_code == 204
        yield http


def everything(http: httpx.Client) -> dict[str, list[dict[str, Any]]]:
    """Every user and order, page by page, as the API lists them."""
    found: dict[str, list[dict[str, Any]]] = {}
    for collection in ("users", "orders"):
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            body = http.get(f"/{collection}", params={"per_page": 100, "page": page}).json()
            items += body["data"]
            if page >= body["meta"]["total_pages"]:
                break
            page += 1
        found[collection] = items
    return found


def test_the_start_up_snapshot_holds_the_seed(admin: httpx.Client) -> None:
    listed = admin.get("/snapshots")
    one = admin.get("/snapshots/seed")

    assert listed.status_code == one.status_code == 200
    assert [snapshot["name"] for snapshot in listed.json()["data"]] == ["seed"]
    snapshot = one.json()["data"]
    assert snapshot["rows"] == {"users": SEED_USERS, "orders": SEED_ORDERS, "sessions": None}
    assert TIMESTAMP.fullmatch(snapshot["created_at"])
    assert 0 < snapshot["memory_bytes"] < SEED.stat().st_size


def test_a_restore_brings_back_deleted_changed_and_added_rows_exactly(admin: httpx.Client) -> None:
    before = everything(admin)
    victim = before["orders"][0]["user"]
    order = before["orders"][1]
    order_tag = admin.get(f"/orders/{order['id']}").headers["etag"]

    assert admin.delete(f"/users/{victim['id']}", params={"cascade": "true"}).status_code == 204
    assert admin.patch(f"/orders/{order['id']}", json={"product_name": "Changed"}).status_code == 200
    added = admin.post("/users", json=user_body()).json()["data"]
    assert admin.post("/orders", json=order_body(added["id"])).status_code == 201
    assert everything(admin) != before

    restored = admin.post("/snapshots/seed/restore")

    assert restored.status_code == 200
    assert restored.json()["data"]["rows"] == {"users": SEED_USERS, "orders": SEED_ORDERS, "sessions": None}
    assert everything(admin) == before
    assert admin.get(f"/users/{victim['id']}").status_code == 200
    assert admin.get(f"/users/{added['id']}").status_code == 404
    again = admin.get(f"/orders/{order['id']}")
    assert again.headers["etag"] == order_tag  # a client's cached tag is valid again
    assert admin.get(f"/orders/{order['id']}", headers={"If-None-Match": order_tag}).status_code == 304
    changed = admin.patch(f"/orders/{order['id']}", json={"product_name": "Changed again"})
    assert changed.headers["etag"] != order_tag


def test_readers_during_a_loop_of_restores_see_one_snapshot_or_the_other_never_a_mixture(
    admin: httpx.Client, server: str, admin_headers: dict[str, str]
) -> None:
    first_page = {"per_page": 100}
    as_in_a = {path: admin.get(path, params=first_page).json()["data"] for path in ("/orders", "/users")}
    for order in as_in_a["/orders"]:
        admin.patch(f"/orders/{order['id']}", json={"status": "cancelled", "quantity": 99})
    for user in as_in_a["/users"][1:11]:
        admin.delete(f"/users/{user['id']}", params={"cascade": "true"})
    assert admin.post("/snapshots", json={"name": "b"}).status_code == 201
    as_in_b = {path: admin.get(path, params=first_page).json()["data"] for path in ("/orders", "/users")}
    assert as_in_b != as_in_a
    seen: dict[str, set[str]] = {"/orders": set(), "/users": set()}
    mixtures: list[str] = []
    restoring = True

    def read(path: str) -> None:
        with httpx.Client(base_url=server, headers=admin_headers, timeout=30) as http:
            while restoring:
                page = http.get(path, params=first_page).json()["data"]
                if page == as_in_a[path]:
                    seen[path].add("seed")
                elif page == as_in_b[path]:
                    seen[path].add("b")
                else:
                    mixtures.append(path)

    readers = [threading.Thread(target=read, args=(path,)) for path in ("/orders", "/users") for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for _ in range(20):
            for name in ("seed", "b"):
                assert admin.post(f"/snapshots/{name}/restore").status_code == 200
    finally:
        restoring = False
        for reader in readers:
            reader.join()

    assert mixtures == []
    assert seen == {"/orders": {"seed", "b"}, "/users": {"seed", "b"}}


def test_snapshots_are_for_admins_only(server: str, admin: httpx.Client) -> None:
    body = user_body()
    assert admin.post("/users", json=body).status_code == 201
    routes = [
        ("POST", "/snapshots", {"name": "mine"}),
        ("GET", "/snapshots", None),
        ("GET", "/snapshots/seed", None),
        ("POST", "/snapshots/seed/restore", None),
        ("DELETE", "/snapshots/seed", None),
    ]
    with httpx.Client(base_url=server, timeout=30) as http:
        user = _token(http, body["email"], body["password"])
        for method, path, payload in routes:
            assert_error(http.request(method, path, json=payload), 401, "UNAUTHORIZED")
            assert_error(http.request(method, path, json=payload, headers=user), 403, "FORBIDDEN")

    assert [snapshot["name"] for snapshot in admin.get("/snapshots").json()["data"]] == ["seed"]


def test_a_restore_takes_back_a_promotion_on_the_very_next_request(server: str, admin: httpx.Client) -> None:
    body = user_body()
    user_id = admin.post("/users", json=body).json()["data"]["id"]
    assert admin.post("/snapshots", json={"name": "before-promotion"}).status_code == 201
    with httpx.Client(base_url=server, timeout=30) as http:
        headers = _token(http, body["email"], body["password"])
        assert http.get("/snapshots", headers=headers).status_code == 403
        assert admin.patch(f"/users/{user_id}", json={"role": "admin"}).status_code == 200
        assert http.get("/snapshots", headers=headers).status_code == 200

        assert admin.post("/snapshots/before-promotion/restore").status_code == 200

        assert_error(http.get("/snapshots", headers=headers), 403, "FORBIDDEN")


def test_sessions_stay_unless_the_snapshot_holds_them_and_die_with_their_user(server: str, admin: httpx.Client) -> None:
    early, late = user_body(), user_body()
    admin.post("/users", json=early)
    assert admin.post("/snapshots", json={"name": "users-only"}).status_code == 201
    taken = admin.post("/snapshots", json={"name": "with-sessions", "sessions": True})
    assert taken.json()["data"]["rows"]["sessions"] >= 1  # the admin's own
    admin.post("/users", json=late)
    with httpx.Client(base_url=server, timeout=30) as http:
        as_early = _token(http, early["email"], early["password"])
        as_late = _token(http, late["email"], late["password"])

        assert admin.post("/snapshots/users-only/restore").status_code == 200
        assert http.get("/auth/me", headers=as_early).status_code == 200  # signed in after, still exists
        assert_error(http.get("/auth/me", headers=as_late), 401, "UNAUTHORIZED")  # the restore removed them

        assert admin.post("/snapshots/with-sessions/restore").status_code == 200
        assert_error(http.get("/auth/me", headers=as_early), 401, "UNAUTHORIZED")  # that session came later
    assert admin.get("/snapshots").status_code == 200  # the admin's session was in the snapshot


def test_names_are_unique_checked_and_a_deleted_snapshot_is_gone(admin: httpx.Client) -> None:
    created = admin.post("/snapshots", json={"name": "v1.0_base-line"})
    assert created.status_code == 201
    assert created.headers["location"] == "/api/v1/snapshots/v1.0_base-line"
    assert_error(admin.post("/snapshots", json={"name": "v1.0_base-line"}), 409, "CONFLICT")
    for bad in ("", "has space", "x" * 65, "slash/name", "é"):
        assert_error(admin.post("/snapshots", json={"name": bad}), 422, "VALIDATION_ERROR")
    assert_error(admin.post("/snapshots", json={"name": "ok", "extra": 1}), 422, "VALIDATION_ERROR")
    assert_error(admin.post("/snapshots", json={"name": "ok", "sessions": "yes"}), 422, "VALIDATION_ERROR")
    assert_error(admin.get("/snapshots/has%20space"), 422, "VALIDATION_ERROR")
    assert_error(admin.post("/snapshots/nope/restore"), 404, "NOT_FOUND")

    assert admin.delete("/snapshots/v1.0_base-line").status_code == 204

    assert_error(admin.get("/snapshots/v1.0_base-line"), 404, "NOT_FOUND")
    assert_error(admin.delete("/snapshots/v1.0_base-line"), 404, "NOT_FOUND")
    assert [snapshot["name"] for snapshot in admin.get("/snapshots").json()["data"]] == ["seed"]


def _resident(http: httpx.Client) -> int:
    ready = http.get("/ready").json()["data"]
    return int(ready["memory_bytes"])


def test_a_snapshot_that_would_pass_the_memory_limit_is_507(tmp_path: Path) -> None:
    dataset = tmp_path / "seed.json"
    dataset.write_bytes(orjson.dumps(generate(Options(users=2_000, orders=10_000, bcrypt_rounds=4))))
    env = {**QUIET, "MEMDB_SEED_FILE": str(dataset), "MEMDB_MEMORY_CHECK_SECONDS": "0.05"}
    with running_server(env) as base, httpx.Client(base_url=f"{base}/api/v1", timeout=30) as http:
        loaded = _resident(http)  # what the same process holds with this seed, under no pressure
    limit_mb = loaded // MiB + 12
    limited = {**env, "MEMDB_MEMORY_LIMIT_MB": str(limit_mb)}
    with running_server(limited) as base, httpx.Client(base_url=f"{base}/api/v1", timeout=30) as http:
        http.headers.update(_token(http, ADMIN["email"], ADMIN["password"]))
        taken = 0
        while (answer := http.post("/snapshots", json={"name": f"s{taken}"})).status_code == 201:
            taken += 1
            size = answer.json()["data"]["memory_bytes"]
            assert taken * size < 2 * limit_mb * MiB, "the limit never stopped a snapshot"
        listed = http.get("/snapshots").json()["data"]
        order = http.get("/orders", params={"per_page": 1}).json()["data"][0]
        deleted = http.delete(f"/orders/{order['id']}")

    assert taken >= 1  # under the limit, snapshots are taken
    assert_error(answer, 507, "INSUFFICIENT_STORAGE")
    assert [snapshot["name"] for snapshot in listed] == [f"s{n}" for n in range(taken)]
    assert deleted.status_code == 204  # reads and deletes go on
