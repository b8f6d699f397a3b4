"""The cache of resolved callers: what empties it, what may not refill it, and its bound."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from server.security.callers import CallerCache
from server.tables import ORDERS, SESSIONS, USERS
from store import commands as c
from tests.utils.api import create_user
from tests.utils.auth import assert_unauthorized, bearer, token_pair

WATCHED = frozenset({SESSIONS.name, USERS.name})
SESSION = uuid.uuid4()


def warm() -> CallerCache[str]:
    cache = CallerCache[str](WATCHED)
    cache.remember(SESSION, "alice", cache.epoch)
    return cache


@pytest.mark.parametrize(
    "command",
    [
        c.Update(USERS.name, uuid.uuid4(), {"role": "admin"}),
        c.Delete(USERS.name, uuid.uuid4(), cascade=True),
        c.Delete(SESSIONS.name, SESSION),
        c.Purge(SESSIONS.name, ()),
        c.Load([(USERS.name, [])]),
        c.Commit(1),
        c.Abort(1, 10),
        c.Rollback({}),
        c.RestoreSnapshot("baseline"),
    ],
    ids=lambda command: type(command).__name__,
)
def test_a_command_that_may_change_a_session_or_user_empties_the_cache(command: c.Command) -> None:
    cache = warm()
    cache.watch(command)
    assert cache.get(SESSION) is None
    assert len(cache) == 0


@pytest.mark.parametrize(
    "command",
    [
        c.Get(SESSIONS.name, SESSION, embed=("user",)),
        c.Insert(SESSIONS.name, {}),
        c.Insert(USERS.name, {}),
        c.Stage(1, USERS.name, []),
        c.Update(ORDERS.name, uuid.uuid4(), {"status": "paid"}),
        c.Delete(ORDERS.name, uuid.uuid4()),
        c.Counts(),
        c.TakeSnapshot("baseline", (USERS.name, SESSIONS.name)),
        c.DropSnapshot("baseline"),
        c.ListSnapshots(),
        c.DescribeSnapshot("baseline"),
        c.FindSnapshot("baseline"),
    ],
    ids=lambda command: f"{type(command).__name__}-{getattr(command, 'table', '')}",
)
def test_reads_new_rows_and_other_tables_leave_the_cache_alone(command: c.Command) -> None:
    cache = warm()
    cache.watch(command)
    assert cache.get(SESSION) == "alice"


def test_a_read_that_raced_a_write_is_not_remembered() -> None:
    cache = CallerCache[str](WATCHED)
    asked_at = cache.epoch  # a request notes the epoch, then asks the store ...
    cache.watch(c.Delete(SESSIONS.name, SESSION))  # ... which revokes the session before the answer lands
    cache.remember(SESSION, "alice (revoked)", asked_at)
    assert cache.get(SESSION) is None


def test_a_full_cache_turns_over_instead_of_growing() -> None:
    cache = CallerCache[int](WATCHED, size=3)
    sessions = [uuid.uuid4() for _ in range(5)]
    for number, session in enumerate(sessions):
        cache.remember(session, number, cache.epoch)
    assert len(cache) == 3
    assert [cache.get(session) for session in sessions] == [None, None, 2, 3, 4]


async def test_a_session_in_use_is_revoked_at_once_by_each_kind_of_write(
    anon: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Each revocation lands while the session is cached (it was just used)."""

    async def in_use(email: str) -> tuple[dict[str, Any], dict[str, str]]:
        user = await create_user(anon, email=email, password="correct-horse")
        own = bearer((await token_pair(anon, email, "correct-horse"))["access_token"])
        assert (await anon.get("/auth/me", headers=own)).status_code == 200
        return user, own

    alice, own = await in_use("alice@example.com")
    assert (await client.delete(f"/users/{alice['id']}")).status_code == 204
    assert_unauthorized(await anon.get("/auth/me", headers=own))

    bob, own = await in_use("bob@example.com")
    assert (await client.patch(f"/users/{bob['id']}", json={"password": "battery-staple"})).status_code == 200
    assert_unauthorized(await anon.get("/auth/me", headers=own))

    carol, own = await in_use("carol@example.com")
    assert (await anon.post("/auth/logout", headers=own)).status_code == 204
    assert_unauthorized(await anon.get(f"/users/{carol['id']}", headers=own))
    assert (await client.get("/auth/me")).status_code == 200  # the admin's session was never revoked
