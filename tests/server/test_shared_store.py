"""Several memdb processes on one Redis (``MEMDB_STORE_URL``), over real sockets: one dataset, one set of rules.

Two nodes started with ``python -m server`` share a ``redis-server`` the test
starts itself (AOF on, ``appendfsync always``). Conflicting writes sent to both
at once have exactly one winner; a logout on one node is refused on the other
at once; one client's rate limit counts requests on both; killing a node
loses nothing; killing and restarting Redis loses nothing acknowledged, and the
nodes report it (``503``, ``/ready`` false) and reconnect by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis

from server.security.callers import CallerCache
from server.shared_store import SharedStore
from server.tables import SESSIONS, TABLES, USERS
from store.redis import connect
from tests.utils.api import assert_error
from tests.utils.data import order_body, user_body
from tests.utils.redis_server import RedisServer, running_redis
from tests.utils.server import ServerProcess, running_server, server_process

ADMIN = {"email": "admin@example.com", "password": "admin-password-1"}
SECRET = "a-test-signing-key-shared-by-every-node-0123456789"


@pytest.fixture(scope="module")
def redis_aof() -> Iterator[RedisServer]:
    with running_redis("--appendonly", "yes", "--appendfsync", "always") as server:
        yield server


def node_env(redis: RedisServer, **extra: str) -> dict[str, str]:
    return {
        "MEMDB_STORE_URL": redis.url,
        "MEMDB_JWT_SECRET": SECRET,
        "MEMDB_ADMIN_EMAIL": ADMIN["email"],
        "MEMDB_ADMIN_PASSWORD": ADMIN["password"],
        "MEMDB_RATE_LIMIT_PER_MINUTE": "0",
        "MEMDB_LOG_LEVEL": "WARNING",
        **extra,
    }


@contextlib.contextmanager
def two_nodes(redis: RedisServer, **extra: str) -> Iterator[tuple[str, str, list[ServerProcess]]]:
    env = node_env(redis, **extra)
    with server_process(env) as a, server_process(env) as b:
        yield a.base, b.base, [a, b]


async def admin_client(base: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30)
    response = await client.post("/auth/token", json=ADMIN)
    assert response.status_code == 200, response.text
    client.headers["Authorization"] = f"Bearer {response.json()['data']['access_token']}"
    return client


@pytest.fixture
def fresh(redis_aof: RedisServer) -> RedisServer:
    """The module's Redis, emptied."""
    redis.Redis(port=redis_aof.port).flushdb()
    return redis_aof


async def test_conflicting_writes_sent_to_two_nodes_at_once_have_exactly_one_winner(fresh: RedisServer) -> None:
    with two_nodes(fresh) as (a, b, _):
        clients = (await admin_client(a), await admin_client(b))
        try:
            spellings = ("same@example.com", "SAME@example.com", "Same@Example.COM")
            creates = await asyncio.gather(
                *(clients[n % 2].post("/users", json=user_body(email=spellings[n % 3])) for n in range(20))
            )
            assert sorted(response.status_code for response in creates) == [201] + [409] * 19
            user = next(response.json()["data"] for response in creates if response.status_code == 201)
            tag = (await clients[1].get(f"/users/{user['id']}")).headers["etag"]
            updates = await asyncio.gather(
                *(
                    clients[n % 2].patch(f"/users/{user['id']}", json={"full_name": f"w{n}"}, headers={"If-Match": tag})
                    for n in range(10)
                )
            )
            assert sorted(response.status_code for response in updates) == [200] + [412] * 9
            winner = next(response for response in updates if response.status_code == 200)
            for client in clients:
                seen = await client.get(f"/users/{user['id']}")
                assert seen.json()["data"]["full_name"] == winner.json()["data"]["full_name"]
                assert seen.headers["etag"] == winner.headers["etag"]
        finally:
            for client in clients:
                await client.aclose()


async def test_a_logout_on_one_node_is_refused_on_the_other_at_once(fresh: RedisServer) -> None:
    with two_nodes(fresh) as (a, b, _):
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(5):
                login = await http.post(f"{a}/api/v1/auth/token", json=ADMIN)
                headers = {"Authorization": f"Bearer {login.json()['data']['access_token']}"}
                assert (await http.get(f"{b}/api/v1/auth/me", headers=headers)).status_code == 200  # cached on B
                assert (await http.post(f"{a}/api/v1/auth/logout", headers=headers)).status_code == 204
                refused = await http.get(f"{b}/api/v1/auth/me", headers=headers)
                assert_error(refused, 401, "UNAUTHORIZED")


async def test_one_clients_rate_limit_counts_its_requests_on_every_node(fresh: RedisServer) -> None:
    with two_nodes(fresh, MEMDB_RATE_LIMIT_PER_MINUTE="10") as (a, b, _):
        async with httpx.AsyncClient(timeout=30) as http:
            statuses = [(await http.get(f"{(a, b)[n % 2]}/api/v1/users/{'0' * 8}")).status_code for n in range(14)]
    assert statuses[:10] == [401] * 10  # anonymous: counted by address, refused by auth
    assert statuses[10:] == [429] * 4


async def test_killing_a_node_loses_nothing_it_acknowledged(fresh: RedisServer) -> None:
    with two_nodes(fresh) as (a, b, processes):
        client_a, client_b = await admin_client(a), await admin_client(b)
        try:
            user = (await client_a.post("/users", json=user_body())).json()["data"]
            created = [
                (await client_a.post("/orders", json=order_body(user["id"]))).json()["data"]["id"] for _ in range(20)
            ]
            processes[0].kill()
            listed = await client_b.get(f"/users/{user['id']}/orders", params={"per_page": 100})
            assert [order["id"] for order in listed.json()["data"]] == created
        finally:
            await client_a.aclose()
            await client_b.aclose()


async def test_redis_killed_and_restarted_with_aof_loses_nothing_acknowledged(fresh: RedisServer) -> None:
    with two_nodes(fresh) as (a, b, _):
        client_a, client_b = await admin_client(a), await admin_client(b)
        try:
            user = (await client_a.post("/users", json=user_body())).json()["data"]
            created = [(await client_b.post("/orders", json=order_body(user["id"]))).json()["data"] for _ in range(10)]
            assert fresh.process is not None
            fresh.process.send_signal(signal.SIGKILL)  # no shutdown save: only what AOF already holds survives
            fresh.process.wait(timeout=10)
            down = await client_a.get(f"/users/{user['id']}")
            error = assert_error(down, 503, "SERVICE_UNAVAILABLE")
            assert "Redis" in error["message"]
            assert (await client_b.get("/ready")).status_code == 503
            fresh.start()
            assert (await client_b.get("/ready")).status_code == 200  # reconnected by itself
            listed = await client_a.get(f"/users/{user['id']}/orders", params={"per_page": 100})
            assert listed.json()["data"] == created
        finally:
            await client_a.aclose()
            await client_b.aclose()


def test_more_than_one_worker_is_allowed_with_the_data_in_redis(fresh: RedisServer) -> None:
    with running_server(node_env(fresh), args=("--workers", "2")) as base, httpx.Client(timeout=30) as http:
        token = http.post(f"{base}/api/v1/auth/token", json=ADMIN).json()["data"]["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        created = [
            http.post(f"{base}/api/v1/users", json=user_body(), headers=headers).json()["data"]["id"] for _ in range(10)
        ]
        for user_id in created:  # whichever worker answers, it sees every user
            assert http.get(f"{base}/api/v1/users/{user_id}", headers=headers).status_code == 200
        # Named snapshots live in the embedded actor only: refused clearly, not a 500.
        assert_error(
            http.post(f"{base}/api/v1/snapshots", json={"name": "clean"}, headers=headers), 501, "NOT_IMPLEMENTED"
        )
        assert_error(http.get(f"{base}/api/v1/snapshots", headers=headers), 501, "NOT_IMPLEMENTED")


async def another_node_changes_a_user(url: str) -> None:
    other = connect(url, TABLES)
    try:
        user = {"id": uuid.uuid4(), "email": f"{uuid.uuid4().hex[:8]}@example.com", "full_name": "Pat"}
        await other.insert(USERS.name, {**user, "password_hash": "!", "role": "user"})
        await other.update(USERS.name, user["id"], {"full_name": "Pat Renamed"})
    finally:
        await other.close()


async def test_another_nodes_change_empties_the_caller_cache_through_the_feed(fresh: RedisServer) -> None:
    callers: CallerCache[str] = CallerCache(frozenset({SESSIONS.name, USERS.name}))
    shared = SharedStore(fresh.url, callers)
    try:
        await shared.check_callers()  # starts the feed
        async with asyncio.timeout(10):
            while not shared.feed.current():  # noqa: ASYNC110 - the feed's state has no event: polled, bounded
                await asyncio.sleep(0.01)
        callers.remember("session", "caller", callers.epoch)
        await another_node_changes_a_user(fresh.url)
        async with asyncio.timeout(10):
            while callers.get("session") is not None:  # noqa: ASYNC110 - emptied as the message is read
                await asyncio.sleep(0.01)
    finally:
        await shared.close()


async def test_without_the_feed_each_lookup_asks_redis_whether_anything_changed(fresh: RedisServer) -> None:
    callers: CallerCache[str] = CallerCache(frozenset({SESSIONS.name, USERS.name}))
    shared = SharedStore(fresh.url, callers)
    try:
        await shared.check_callers()
        await shared.feed.close()  # as if the subscription were down: never current
        assert not shared.feed.current()
        callers.remember("session", "caller", callers.epoch)
        await shared.check_callers()
        assert callers.get("session") == "caller"  # nothing changed: kept
        await another_node_changes_a_user(fresh.url)
        await shared.check_callers()
        assert callers.get("session") is None
    finally:
        await shared.close()
