"""The storage actor: one task, one command at a time, a bounded mailbox, and a clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from store import Database, NotFound, Query, StoreActor, StoreClosed, StoreOverloaded
from store import commands as c

from .conftest import SPECS, Clock, plain, uid


def parent_values(n: int) -> dict[str, Any]:
    return {"id": uid(n), "email": f"p{n}@example.com", "name": f"P{n}"}


@pytest.fixture
def database() -> Database:
    return Database(SPECS, clock=Clock())


@pytest.fixture
async def actor(database: Database) -> AsyncIterator[StoreActor]:
    running = StoreActor(database, queue_size=8, put_timeout=0.05)
    running.start()
    yield running
    await running.close()


# -- lifecycle ---------------------------------------------------------------


async def test_a_new_actor_is_neither_running_nor_closed(database: Database) -> None:
    actor = StoreActor(database)
    assert (actor.running, actor.closed, actor.depth, actor.capacity) == (False, False, 0, 1024)
    actor.start()
    assert actor.running
    await actor.close()
    assert (actor.running, actor.closed) == (False, True)


async def test_starting_twice_keeps_one_loop(actor: StoreActor) -> None:
    actor.start()
    loops = [task for task in asyncio.all_tasks() if task.get_name() == "memdb-store-actor"]
    assert len(loops) == 1
    assert await actor.call(c.Counts()) == {"parent": 0, "child": 0, "note": 0}


async def test_close_twice_is_safe(actor: StoreActor) -> None:
    await actor.close()
    await actor.close()
    assert actor.closed
    assert not actor.running


async def test_calls_and_starts_after_close_raise_store_closed(actor: StoreActor) -> None:
    await actor.close()
    with pytest.raises(StoreClosed, match="store is closed"):
        await actor.call(c.Counts())
    with pytest.raises(StoreClosed):
        actor.start()


async def test_close_runs_every_command_already_queued(actor: StoreActor, database: Database) -> None:
    inserts = [actor.call(c.Insert("parent", parent_values(n))) for n in range(1, 6)]
    *answers, _ = await asyncio.gather(*inserts, actor.close(), return_exceptions=True)
    assert [plain(answer.data)["id"] for answer in answers] == [str(uid(n)) for n in range(1, 6)]
    assert database.counts()["parent"] == 5
    assert actor.depth == 0


async def test_close_of_an_actor_that_never_ran_answers_the_queued_with_store_closed(database: Database) -> None:
    actor = StoreActor(database, queue_size=4)
    answers = await asyncio.gather(
        actor.call(c.Insert("parent", parent_values(1))), actor.call(c.Counts()), actor.close(), return_exceptions=True
    )
    assert [type(answer) for answer in answers[:2]] == [StoreClosed, StoreClosed]
    assert database.counts()["parent"] == 0
    assert actor.depth == 0


async def test_commands_run_in_the_order_they_were_sent(actor: StoreActor) -> None:
    key = uid(1)
    answers = await asyncio.gather(
        actor.call(c.Insert("parent", parent_values(1))),
        actor.call(c.Update("parent", key, {"name": "second"})),
        actor.call(c.Get("parent", key)),
        actor.call(c.Delete("parent", key)),
        actor.call(c.Get("parent", key)),
        return_exceptions=True,
    )
    assert plain(answers[2].data)["name"] == "second"
    assert answers[3] == 1
    assert isinstance(answers[4], NotFound)


# -- backpressure ------------------------------------------------------------


async def test_a_full_mailbox_makes_the_caller_wait_then_fail_overloaded(database: Database) -> None:
    actor = StoreActor(database, queue_size=1, put_timeout=0.05)
    first = asyncio.ensure_future(actor.call(c.Counts()))
    started = time.perf_counter()
    with pytest.raises(StoreOverloaded) as info:
        await asyncio.gather(first, actor.call(c.Counts()))
    waited = time.perf_counter() - started
    assert info.value.waited == 0.05
    assert "mailbox full for 0.05s" in info.value.message
    assert waited >= 0.04
    assert actor.depth == 1
    assert not first.done()
    await actor.close()
    with pytest.raises(StoreClosed):
        await first


async def test_a_waiting_caller_gets_in_once_the_actor_drains_the_mailbox(database: Database) -> None:
    actor = StoreActor(database, queue_size=1, put_timeout=5)

    async def start_later() -> None:
        actor.start()

    answers = await asyncio.gather(
        actor.call(c.Insert("parent", parent_values(1))), actor.call(c.Counts()), start_later()
    )
    assert answers[1] == {"parent": 1, "child": 0, "note": 0}
    await actor.close()


async def test_a_caller_waiting_for_room_when_the_store_closes_gets_store_closed(database: Database) -> None:
    actor = StoreActor(database, queue_size=1, put_timeout=5)
    answers = await asyncio.gather(
        actor.call(c.Counts()), actor.call(c.Insert("parent", parent_values(1))), actor.close(), return_exceptions=True
    )
    assert [type(answer) for answer in answers[:2]] == [StoreClosed, StoreClosed]
    assert database.counts()["parent"] == 0
    assert actor.depth == 0


async def test_a_caller_that_gave_up_never_has_its_command_applied(database: Database) -> None:
    actor = StoreActor(database, queue_size=4)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(actor.call(c.Insert("parent", parent_values(1))), timeout=0.01)
    assert actor.depth == 1
    actor.start()
    assert await actor.call(c.Counts()) == {"parent": 0, "child": 0, "note": 0}
    await actor.close()


async def test_closing_skips_callers_that_already_gave_up(database: Database) -> None:
    actor = StoreActor(database, queue_size=4)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(actor.call(c.Insert("parent", parent_values(1))), timeout=0.01)
    answers = await asyncio.gather(actor.call(c.Counts()), actor.close(), return_exceptions=True)
    assert isinstance(answers[0], StoreClosed)
    assert answers[1] is None
    assert (actor.depth, database.counts()["parent"]) == (0, 0)


# -- failures ----------------------------------------------------------------


async def test_a_store_error_answers_only_its_own_caller(actor: StoreActor) -> None:
    answers = await asyncio.gather(
        actor.call(c.Get("parent", uid(404))),
        actor.call(c.Insert("parent", parent_values(1))),
        actor.call(c.Insert("parent", parent_values(1))),
        actor.call(c.Counts()),
        return_exceptions=True,
    )
    assert isinstance(answers[0], NotFound)
    assert plain(answers[1].data)["id"] == str(uid(1))
    assert type(answers[2]).__name__ == "Conflict"
    assert answers[3] == {"parent": 1, "child": 0, "note": 0}
    assert actor.running


async def test_an_unexpected_exception_is_answered_and_the_actor_keeps_running(
    actor: StoreActor, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Database, "get", broken)
    with caplog.at_level(logging.ERROR, logger="memdb.store"), pytest.raises(RuntimeError, match="disk on fire"):
        await actor.call(c.Get("parent", uid(1)))
    assert "store command Get failed" in caplog.text
    assert actor.running
    assert await actor.call(c.Counts()) == {"parent": 0, "child": 0, "note": 0}


async def test_the_observer_hears_every_command_with_its_outcome_and_timings(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    heard: list[tuple[str, str, float, float]] = []
    actor = StoreActor(database, observer=lambda *report: heard.append(report))
    actor.start()
    monkeypatch.setattr(Database, "counts", lambda self: 1 / 0)
    await asyncio.gather(
        actor.call(c.Insert("parent", parent_values(1))),
        actor.call(c.Get("parent", uid(404))),
        actor.call(c.Counts()),
        return_exceptions=True,
    )
    await actor.close()
    assert [(name, outcome) for name, outcome, _, _ in heard] == [
        ("Insert", "ok"),
        ("Get", "error"),
        ("Counts", "crash"),
    ]
    assert all(waited >= 0 and ran >= 0 for _, _, waited, ran in heard)


async def test_a_failing_observer_does_not_stop_the_actor(database: Database, caplog: pytest.LogCaptureFixture) -> None:
    def observer(*report: Any) -> None:
        raise ValueError("metrics broke")

    actor = StoreActor(database, observer=observer)
    actor.start()
    # Were the loop to die with the observer, the second call would wait forever: bound it.
    async with asyncio.timeout(5):
        with caplog.at_level(logging.ERROR, logger="memdb.store"):
            assert plain((await actor.call(c.Insert("parent", parent_values(1)))).data)["id"] == str(uid(1))
            assert await actor.call(c.Counts()) == {"parent": 1, "child": 0, "note": 0}
    assert actor.running
    assert "store observer failed after Insert" in caplog.text
    await actor.close()


async def test_watchers_see_every_command_before_its_caller_resumes(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[c.Command] = []
    actor = StoreActor(database)
    actor.watch(seen.append)
    actor.start()
    insert, missing, counts = c.Insert("parent", parent_values(1)), c.Get("parent", uid(404)), c.Counts()
    monkeypatch.setattr(Database, "counts", lambda self: 1 / 0)

    await actor.call(insert)
    assert seen == [insert]
    results = await asyncio.gather(actor.call(missing), actor.call(counts), return_exceptions=True)
    await actor.close()

    assert [type(result) for result in results] == [NotFound, ZeroDivisionError]
    assert seen == [insert, missing, counts]  # failed commands too: a watcher cannot know what they left


async def test_a_failing_watcher_does_not_stop_the_actor(database: Database, caplog: pytest.LogCaptureFixture) -> None:
    def watcher(command: c.Command) -> None:
        raise ValueError("cache broke")

    actor = StoreActor(database)
    actor.watch(watcher)
    actor.start()
    async with asyncio.timeout(5):
        with caplog.at_level(logging.ERROR, logger="memdb.store"):
            await actor.call(c.Insert("parent", parent_values(1)))
            assert await actor.call(c.Counts()) == {"parent": 1, "child": 0, "note": 0}
    assert actor.running
    assert "store watcher failed after Insert" in caplog.text
    await actor.close()


# -- every command -----------------------------------------------------------


async def test_apply_handles_every_command(actor: StoreActor) -> None:
    assert await actor.call(c.Load([("parent", [parent_values(1)])])) == {"parent": 1}
    child = {"id": uid(2), "parent_id": uid(1), "label": "kid", "status": "paid", "amount": "3.50"}
    inserted = await actor.call(c.Insert("child", child, ("parent",)))
    assert plain(inserted.data)["parent"]["id"] == str(uid(1))
    found = await actor.call(c.Find("child", Query(), ("parent",)))
    assert [plain(item)["label"] for item in found.items] == ["kid"]
    children = await actor.call(c.Children("parent", uid(1), "child", "parent_id", Query()))
    assert children.total == 1
    parent = await actor.call(c.Parent("child", uid(2), "parent_id"))
    assert plain(parent.data)["email"] == "p1@example.com"
    updated = await actor.call(c.Update("child", uid(2), {"label": "grown"}, (inserted.tag,), ("parent",)))
    assert plain(updated.data)["label"] == "grown"
    got = await actor.call(c.Get("child", uid(2), ("parent",)))
    assert got.tag == updated.tag
    assert await actor.call(c.Delete("parent", uid(1), True, ("*",))) == 2
    assert await actor.call(c.Counts()) == {"parent": 0, "child": 0, "note": 0}
