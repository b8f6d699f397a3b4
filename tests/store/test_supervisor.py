"""The supervisor: restarts a dead actor with its data, and enforces the memory limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from store import ActorCrashed, Database, InsufficientStorage, Query, StoreActor, StoreClient
from store.supervisor import Supervisor, resident_memory_bytes

from .conftest import SPECS, Clock, uid

LIMIT = 1_000_000


class LoopKiller(BaseException):
    """Not an Exception: nothing in the actor's per-command handling catches it."""


class Memory:
    def __init__(self, value: int) -> None:
        self.value = value

    def __call__(self) -> int:
        return self.value


def parent_values(n: int) -> dict[str, Any]:
    return {"id": uid(n), "email": f"p{n}@example.com", "name": f"P{n}"}


@pytest.fixture
def memory() -> Memory:
    return Memory(LIMIT // 2)


@pytest.fixture
async def supervised(memory: Memory) -> AsyncIterator[Supervisor]:
    actor = StoreActor(Database(SPECS, clock=Clock()), queue_size=8, put_timeout=0.05)
    actor.start()
    supervisor = Supervisor(actor, LIMIT, read_memory=memory, interval=3600)
    supervisor.start()
    yield supervisor
    await supervisor.stop()
    await actor.close()


async def test_resident_memory_is_read_from_the_process() -> None:
    assert 10 * 1024 * 1024 < resident_memory_bytes() < 64 * 1024**3


async def test_a_healthy_store_is_reported_healthy(supervised: Supervisor) -> None:
    assert supervised.healthy
    assert supervised.memory_bytes == LIMIT // 2


async def test_at_the_memory_limit_inserts_are_refused_but_reads_and_deletes_go_on(
    supervised: Supervisor, memory: Memory
) -> None:
    client = StoreClient(supervised.actor)
    await client.insert("parent", parent_values(1))
    await client.insert("parent", parent_values(2))

    memory.value = LIMIT
    supervised.check_memory()

    assert not supervised.healthy
    with pytest.raises(InsufficientStorage):
        await client.insert("parent", parent_values(3))
    with pytest.raises(InsufficientStorage):
        await client.load([("parent", [parent_values(4)])])
    assert (await client.get("parent", uid(1))).data["name"] == "P1"
    await client.update("parent", uid(1), {"name": "renamed"})
    assert await client.delete("parent", uid(2)) == 1
    assert (await client.find("parent", Query())).total == 1

    memory.value = LIMIT - 1
    supervised.check_memory()

    assert supervised.healthy
    assert (await client.insert("parent", parent_values(3))).data["name"] == "P3"


async def test_a_full_mailbox_is_not_healthy(supervised: Supervisor) -> None:
    await supervised.actor.close()
    fresh = StoreActor(Database(SPECS, clock=Clock()), queue_size=1, put_timeout=0.05)
    supervisor = Supervisor(fresh, LIMIT, read_memory=Memory(0))
    pending = asyncio.ensure_future(StoreClient(fresh).counts())
    await asyncio.sleep(0)  # let the call reach the mailbox (the actor is not started)
    assert supervisor.saturated
    assert not supervisor.healthy
    fresh.start()
    assert await pending == {"parent": 0, "child": 0, "note": 0}
    await fresh.close()


async def test_a_dead_loop_is_restarted_with_its_tables_and_mailbox(
    supervised: Supervisor, monkeypatch: pytest.MonkeyPatch
) -> None:
    restarted: list[int] = []
    supervised.on_restart = lambda: restarted.append(supervised.restarts)
    client = StoreClient(supervised.actor)
    await client.insert("parent", parent_values(1))
    original_counts = supervised.actor.database.counts

    def die() -> dict[str, int]:
        monkeypatch.setattr(supervised.actor.database, "counts", original_counts)
        raise LoopKiller

    monkeypatch.setattr(supervised.actor.database, "counts", die)

    fatal = asyncio.ensure_future(client.counts())
    queued_behind = asyncio.ensure_future(client.get("parent", uid(1)))
    with pytest.raises(ActorCrashed):
        await fatal

    assert (await queued_behind).data["email"] == "p1@example.com"
    assert await client.counts() == {"parent": 1, "child": 0, "note": 0}
    assert supervised.restarts == 1
    assert restarted == [1]
    assert supervised.healthy


async def test_memory_is_sampled_periodically() -> None:
    sampled = asyncio.Event()

    def read_memory() -> int:
        if supervisor.memory_bytes:  # the first sample is taken by start(); later ones by the loop
            sampled.set()
        return LIMIT * 2

    actor = StoreActor(Database(SPECS, clock=Clock()))
    actor.start()
    supervisor = Supervisor(actor, LIMIT, read_memory=read_memory, interval=0.001)
    supervisor.start()
    await asyncio.wait_for(sampled.wait(), timeout=5)
    assert supervisor.memory_exhausted
    assert not actor.database.accepting_growth
    await supervisor.stop()
    await supervisor.stop()
    await actor.close()


async def test_a_closed_actor_is_not_restarted(supervised: Supervisor) -> None:
    await supervised.actor.close()
    supervised._restart(None)
    assert supervised.restarts == 0
    assert not supervised.healthy
