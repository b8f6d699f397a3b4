"""What a user sees when the supervisor steps in: 507 at the memory limit, and a crashed actor restarted."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.utils.api import assert_error, create_order, create_user
from tests.utils.data import order_body, user_body


class LoopKiller(BaseException):
    """Escapes the actor's per-command error handling and ends its loop."""


def _exhaust_memory(app: FastAPI, exhausted: bool) -> None:
    supervisor = app.state.supervisor
    limit = supervisor.memory_limit_bytes
    supervisor.read_memory = lambda: limit if exhausted else limit // 2
    supervisor.check_memory()


async def test_at_the_memory_limit_writes_that_add_data_get_507_and_nothing_is_lost(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    user = await create_user(client)
    order = await create_order(client, user["id"])
    spare = await create_order(client, user["id"])

    _exhaust_memory(app, exhausted=True)

    assert_error(await client.post("/users", json=user_body()), 507, "INSUFFICIENT_STORAGE")
    assert_error(await client.post("/orders", json=order_body(user["id"])), 507, "INSUFFICIENT_STORAGE")
    ready = await anon.get("/ready")
    assert_error(ready, 503, "SERVICE_UNAVAILABLE")
    assert ready.headers["retry-after"]
    assert (await client.get(f"/orders/{order['id']}")).json()["data"] == order
    assert (await client.patch(f"/orders/{order['id']}", json={"status": "paid"})).status_code == 200
    assert (await client.delete(f"/orders/{spare['id']}")).status_code == 204
    assert (await client.get(f"/users/{user['id']}/orders")).json()["meta"]["total"] == 1

    _exhaust_memory(app, exhausted=False)

    assert (await anon.get("/ready")).status_code == 200
    assert (await client.post("/orders", json=order_body(user["id"]))).status_code == 201
    assert (await client.get(f"/users/{user['id']}/orders")).json()["meta"]["total"] == 2


async def test_a_command_that_kills_the_actor_gets_500_and_the_next_request_succeeds(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await create_user(client)
    database = app.state.actor.database
    original_update = database.update

    def die_once(*args: object, **kwargs: object) -> object:
        monkeypatch.setattr(database, "update", original_update)
        raise LoopKiller

    # A write: it runs inside the actor (reads are applied directly, outside its loop).
    monkeypatch.setattr(database, "update", die_once)

    crashed = await client.patch(f"/users/{user['id']}", json={"full_name": "Renamed"})
    error = assert_error(crashed, 500, "INTERNAL_ERROR")

    assert "Traceback" not in error["message"]
    assert (await client.get(f"/users/{user['id']}")).json()["data"] == user
    after = await client.patch(f"/users/{user['id']}", json={"full_name": "Renamed"})
    assert after.status_code == 200
    assert after.json()["data"]["full_name"] == "Renamed"
    assert app.state.supervisor.restarts == 1
    scraped = (await client.get("http://testserver/metrics")).text
    assert "store_actor_restarts_total 1.0" in scraped
    assert (await client.get("/ready")).status_code == 200
