"""Direct reads: get, find, children and parent answer without the mailbox, never seeing an unanswered write."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from store import Database, NotFound, Query, StoreActor, StoreClient, StoreRecovering
from store import commands as c
from store.recovery import open_data_directory

from .conftest import SPECS, Clock, plain, uid


def parent(n: int) -> dict[str, Any]:
    return {"id": uid(n), "email": f"p{n}@example.com", "name": f"P{n}"}


def child(n: int, parent_n: int) -> dict[str, Any]:
    return {"id": uid(n), "parent_id": uid(parent_n), "label": f"c{n}", "status": "pending", "amount": "1.50"}


async def turns(count: int = 20) -> None:
    """Let the event loop run other tasks ``count`` times (bounded, no timing involved)."""
    for _ in range(count):
        await asyncio.sleep(0)


async def test_reads_are_answered_in_the_callers_step_and_see_every_answered_write() -> None:
    heard: list[tuple[str, str, float, float]] = []
    actor = StoreActor(Database(SPECS, clock=Clock()), observer=lambda *report: heard.append(report))
    actor.start()
    store = StoreClient(actor)
    await store.insert("parent", parent(1))
    await store.insert("child", child(2, 1))
    assert actor.reads_directly
    # A read that does not wait for the actor completes without the loop running: one send() finishes it.
    coroutine = store.get("parent", uid(1))
    with pytest.raises(StopIteration) as finished:
        coroutine.send(None)
    assert plain(finished.value.value.data)["email"] == "p1@example.com"
    assert [plain(row)["id"] for row in (await store.find("parent", Query())).items] == [str(uid(1))]
    assert [
        plain(row)["id"] for row in (await store.children("parent", uid(1), "child", "parent_id", Query())).items
    ] == [str(uid(2))]
    assert plain((await store.parent("child", uid(2), "parent_id")).data)["id"] == str(uid(1))
    with pytest.raises(NotFound):
        await store.get("parent", uid(404))
    # The metrics still count each read, with no time spent queued.
    reads = [(name, outcome, waited) for name, outcome, waited, _ in heard if name not in {"Insert"}]
    assert reads == [
        ("Get", "ok", 0.0),
        ("Find", "ok", 0.0),
        ("Children", "ok", 0.0),
        ("Parent", "ok", 0.0),
        ("Get", "error", 0.0),
    ]
    await actor.close()


async def test_a_read_does_not_see_a_write_still_waiting_in_the_mailbox() -> None:
    actor = StoreActor(Database(SPECS, clock=Clock()))
    actor.start()
    store = StoreClient(actor)
    writing = asyncio.ensure_future(store.insert("parent", parent(1)))
    await asyncio.sleep(0)  # the insert is in the mailbox; the actor has not taken it yet
    with pytest.raises(NotFound):
        await store.get("parent", uid(1))
    await writing
    assert plain((await store.get("parent", uid(1))).data)["id"] == str(uid(1))
    await actor.close()


async def test_a_command_that_writes_is_refused_a_direct_read() -> None:
    actor = StoreActor(Database(SPECS, clock=Clock()))
    actor.start()
    with pytest.raises(TypeError, match="Insert writes"):
        actor.read(c.Insert("parent", parent(1)))
    assert await actor.call(c.Counts()) == {"parent": 0, "child": 0, "note": 0}
    await actor.close()


async def test_an_unexpected_error_in_a_direct_read_reaches_the_caller_and_is_counted_as_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    heard: list[tuple[str, str]] = []
    actor = StoreActor(Database(SPECS, clock=Clock()), observer=lambda name, outcome, *_: heard.append((name, outcome)))
    actor.start()
    monkeypatch.setattr(Database, "get", lambda *args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        await StoreClient(actor).get("parent", uid(1))
    assert heard == [("Get", "crash")]
    assert actor.running
    await actor.close()


async def test_reads_wait_for_a_stopped_actor_and_are_refused_while_recovering_or_closed() -> None:
    actor = StoreActor(Database(SPECS, clock=Clock()))
    store = StoreClient(actor)
    assert not actor.reads_directly  # not running (yet, or between a crash and its restart)
    waiting = asyncio.ensure_future(store.get("parent", uid(1)))
    await turns()
    assert not waiting.done()
    actor.start()
    with pytest.raises(NotFound):
        await waiting
    store.recovering = True
    with pytest.raises(StoreRecovering):
        await store.find("parent", Query())
    store.recovering = False
    await actor.close()
    assert not actor.reads_directly


async def test_during_a_group_commit_reads_wait_until_the_writers_are_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = Database(SPECS, clock=Clock())
    recovery = open_data_directory(tmp_path / "data", database, "always", "refuse")
    actor = StoreActor(database, journal=recovery.log)
    actor.start()
    store = StoreClient(actor)
    released = asyncio.Event()
    real_sync = recovery.log.sync

    async def held_sync() -> None:
        await released.wait()
        await real_sync()

    monkeypatch.setattr(recovery.log, "sync", held_sync)
    writing = asyncio.ensure_future(store.insert("parent", parent(1)))
    await turns()
    assert not writing.done()  # applied, its fsync not done: the writer has not been told
    assert not actor.reads_directly
    reading = asyncio.ensure_future(store.get("parent", uid(1)))
    await turns()
    assert not reading.done()  # it would otherwise see a row that is not durable yet
    released.set()
    await writing
    assert plain((await reading).data)["id"] == str(uid(1))
    assert actor.reads_directly
    await actor.close()


async def test_with_direct_reads_off_every_read_goes_through_the_mailbox() -> None:
    actor = StoreActor(Database(SPECS, clock=Clock()))
    actor.start()
    store = StoreClient(actor)
    store.direct_reads = False
    writing = asyncio.ensure_future(store.insert("parent", parent(1)))
    await asyncio.sleep(0)  # the insert is in the mailbox; a read queued behind it sees it
    assert plain((await store.get("parent", uid(1))).data)["id"] == str(uid(1))
    assert writing.done()
    await actor.close()
