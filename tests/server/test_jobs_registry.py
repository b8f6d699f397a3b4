"""The job registry, the pacer and the importer's clean-up, driven directly (no HTTP).

Jobs here are small coroutines that wait on events, so every state a test
looks at is reached deterministically.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.ingest.records import Record
from server.jobs import imports
from server.jobs import registry as registry_module
from server.jobs.imports import SLICE, Importer
from server.jobs.registry import Job, JobFailed, JobRegistry, JobStatus, Pacer
from server.tables import TABLES, USERS
from store import Database, InsufficientStorage, StoreActor, StoreClient, StoreClosed, StoreOverloaded


async def succeed(job: Job) -> dict[str, Any]:
    job.progress(1, 1)
    return {"answer": 42}


async def wait_forever(job: Job) -> dict[str, Any]:
    await asyncio.Event().wait()
    return {}


async def settle(registry: JobRegistry, job: Job) -> None:
    """Let the loop run until ``job`` has finished (boundedly)."""
    give_up = time.monotonic() + 10
    while not job.finished:
        assert time.monotonic() < give_up, "the job did not finish"
        await asyncio.sleep(0)


async def finished_job(registry: JobRegistry) -> Job:
    job = registry.submit(Job("export", {}), succeed)
    await settle(registry, job)
    return job


# -- running jobs ---------------------------------------------------------------------------------------------------


async def test_a_job_runs_to_success_with_its_result_and_timestamps() -> None:
    registry = JobRegistry()
    job = registry.submit(Job("export", {"tables": ["users"]}), succeed)
    assert job.status is JobStatus.queued
    assert registry.get(job.id) is job

    await settle(registry, job)

    assert job.status is JobStatus.succeeded
    assert job.finished
    assert job.result == {"answer": 42}
    assert (job.done, job.total) == (1, 1)
    assert job.error is None
    assert job.started_at is not None
    assert job.finished_at is not None
    assert job.created_at <= job.started_at <= job.finished_at
    assert job.finished_monotonic is not None


async def test_a_job_failing_on_purpose_keeps_its_message_and_details() -> None:
    async def refuse(job: Job) -> dict[str, Any]:
        raise JobFailed("orders[3]: bad", [{"record": "orders[3]", "reason": "bad"}])

    registry = JobRegistry()
    job = registry.submit(Job("import", {}), refuse)
    await settle(registry, job)

    assert job.status is JobStatus.failed
    assert job.error == {
        "code": "JOB_FAILED",
        "message": "orders[3]: bad",
        "details": [{"record": "orders[3]", "reason": "bad"}],
    }
    assert job.result is None


async def test_an_unexpected_exception_fails_the_job_with_internal_error_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def explode(job: Job) -> dict[str, Any]:
        raise KeyError("boom")

    registry = JobRegistry()
    with caplog.at_level(logging.ERROR, logger="memdb.jobs"):
        job = registry.submit(Job("import", {}), explode)
        await settle(registry, job)

    assert job.status is JobStatus.failed
    assert job.error == {
        "code": "INTERNAL_ERROR",
        "message": "the job stopped on an unexpected error, logged on the server",
    }
    assert any(record.exc_info and "failed unexpectedly" in record.getMessage() for record in caplog.records)
    assert job.finished_at is not None


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        (InsufficientStorage(), "INSUFFICIENT_STORAGE", "the server's memory limit was reached, so the job stopped"),
        (StoreClosed(), "SERVICE_UNAVAILABLE", "the store was busy or restarting, so the job stopped"),
    ],
)
async def test_a_store_error_fails_the_job_in_plain_words_never_the_exception_name(
    error: Exception, code: str, words: str
) -> None:
    async def fail(job: Job) -> dict[str, Any]:
        raise error

    registry = JobRegistry()
    job = registry.submit(Job("export", {}), fail)
    await settle(registry, job)

    assert job.error == {"code": code, "message": words}
    assert type(error).__name__ not in job.error["message"]


# -- cancelling -----------------------------------------------------------------------------------------------------


async def test_a_job_cancelled_before_it_starts_never_runs() -> None:
    ran = False

    async def body(job: Job) -> dict[str, Any]:
        nonlocal ran
        ran = True
        return {}

    registry = JobRegistry()
    job = registry.submit(Job("import", {}), body)
    await registry.cancel(job)  # the task has not had a turn yet

    assert not ran
    assert job.status is JobStatus.cancelled
    assert job.error == {"code": "CANCELLED", "message": "the job was cancelled"}
    assert job.started_at is None
    assert job.finished_at is not None
    assert job.finished_monotonic is not None


async def test_only_a_finished_job_is_forgotten() -> None:
    release = asyncio.Event()

    async def body(job: Job) -> dict[str, Any]:
        await release.wait()
        return {}

    registry = JobRegistry()
    running = registry.submit(Job("import", {}), body)
    registry.forget(running)
    assert registry.get(running.id) is running  # still running: forgetting it would hide work under way

    await registry.cancel(running)
    registry.forget(running)

    assert registry.get(running.id) is None
    assert registry.list() == []


async def test_cancelling_a_running_job_waits_for_its_clean_up() -> None:
    started, cleaned = asyncio.Event(), asyncio.Event()

    async def body(job: Job) -> dict[str, Any]:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # clean-up that itself awaits
            cleaned.set()
        return {}

    registry = JobRegistry()
    job = registry.submit(Job("import", {}), body)
    await asyncio.wait_for(started.wait(), 10)
    assert job.status is JobStatus.running

    await registry.cancel(job)

    assert cleaned.is_set()
    assert job.status is JobStatus.cancelled
    assert job.error is not None
    assert job.error["code"] == "CANCELLED"
    assert job.started_at is not None


async def test_cancelling_a_finished_job_changes_nothing() -> None:
    registry = JobRegistry()
    job = registry.submit(Job("export", {}), succeed)
    await settle(registry, job)

    await registry.cancel(job)
    await registry.cancel(Job("export", {}))  # one it never knew

    assert job.status is JobStatus.succeeded


async def test_the_canceller_being_cancelled_itself_is_not_swallowed() -> None:
    started, cleaning, finish = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow_to_clean_up(job: Job) -> dict[str, Any]:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cleaning.set()
            await finish.wait()
            raise
        return {}

    registry = JobRegistry()
    job = registry.submit(Job("import", {}), slow_to_clean_up)
    await asyncio.wait_for(started.wait(), 10)
    canceller = asyncio.create_task(registry.cancel(job))
    await asyncio.wait_for(cleaning.wait(), 10)

    canceller.cancel()  # e.g. shutdown while a DELETE waits for the job

    with pytest.raises(asyncio.CancelledError):
        await canceller
    assert job.status is JobStatus.cancelled


async def test_close_cancels_every_unfinished_job() -> None:
    registry = JobRegistry()
    waiting = [registry.submit(Job("import", {}), wait_forever) for _ in range(3)]
    done = registry.submit(Job("export", {}), succeed)
    await settle(registry, done)

    await registry.close()

    assert [job.status for job in waiting] == [JobStatus.cancelled] * 3
    assert done.status is JobStatus.succeeded


# -- bounds ---------------------------------------------------------------------------------------------------------


async def test_beyond_keep_count_the_oldest_finished_jobs_are_forgotten_but_never_unfinished_ones() -> None:
    registry = JobRegistry(keep_count=2)
    running = registry.submit(Job("import", {}), wait_forever)
    finished = []
    for _ in range(4):
        job = registry.submit(Job("export", {}), succeed)
        await settle(registry, job)
        finished.append(job)

    listed = registry.list()

    assert listed == [running, *finished[2:]]
    assert registry.get(finished[0].id) is None
    assert registry.get(finished[1].id) is None
    assert running.status is JobStatus.running
    await registry.close()


async def test_finished_jobs_are_forgotten_after_keep_seconds() -> None:
    registry = JobRegistry(keep_count=100, keep_seconds=60)
    old, recent = await finished_job(registry), await finished_job(registry)
    old.finished_monotonic = time.monotonic() - 61
    recent.finished_monotonic = time.monotonic() - 59

    assert registry.get(old.id) is None
    assert registry.get(recent.id) is recent
    assert registry.list() == [recent]


# -- the pacer ------------------------------------------------------------------------------------------------------


@pytest.fixture
def naps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The sleeps the pacer takes (each still yields once to the loop, without waiting)."""
    taken: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:
        taken.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(registry_module.asyncio, "sleep", sleep)
    return taken


async def test_the_pacer_does_nothing_within_a_burst(naps: list[float]) -> None:
    pacer = Pacer(lambda: True, burst=3600)
    for _ in range(100):
        await pacer.breathe()
    assert naps == []


async def test_the_pacer_yields_once_and_goes_on_when_no_request_is_waiting(naps: list[float]) -> None:
    await Pacer(lambda: False, burst=0, rest=0.5).breathe()
    await Pacer(None, burst=0, rest=0.5).breathe()
    assert naps == [0, 0]


async def test_the_pacer_gives_way_while_requests_are_served(naps: list[float]) -> None:
    in_flight = [True, True, False]
    await Pacer(lambda: in_flight.pop(0), burst=0, rest=0.004).breathe()
    assert naps == [0, 0.004, 0.004]


async def test_the_pacer_gives_way_for_a_while_only_so_a_job_always_gets_on(naps: list[float]) -> None:
    pacer = Pacer(lambda: True, burst=0, rest=0.004, most=3)  # requests never stop coming
    await pacer.breathe()
    await pacer.breathe()
    assert naps == [0, 0.004, 0.004, 0.004] * 2


# -- the importer's clean-up ----------------------------------------------------------------------------------------


@pytest.fixture
async def store() -> AsyncIterator[StoreClient]:
    actor = StoreActor(Database(TABLES))
    actor.start()
    yield StoreClient(actor)
    await actor.close()


def users(count: int) -> list[Record]:
    return [
        Record("users", index, {"id": str(uuid.uuid4()), "email": f"u{index}@example.com", "full_name": f"U {index}"})
        for index in range(count)
    ]


async def test_an_abort_refused_by_a_full_mailbox_is_retried_until_nothing_is_left(
    store: StoreClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage, abort = store.stage, store.abort
    calls: list[str] = []

    async def stage_then_fail(transaction: int, table: str, rows: Any) -> int:
        if len(calls) == 2:
            raise RuntimeError("the import broke")
        calls.append("stage")
        return await stage(transaction, table, rows)

    async def busy_abort(transaction: int, limit: int) -> int:
        calls.append("abort")
        if calls.count("abort") % 2:
            raise StoreOverloaded(0.5)
        return await abort(transaction, limit)

    monkeypatch.setattr(store, "stage", stage_then_fail)
    monkeypatch.setattr(store, "abort", busy_abort)
    importer = Importer(store, users(3 * SLICE), 3 * SLICE, "all-or-nothing", bcrypt_rounds=4)

    with pytest.raises(RuntimeError, match="the import broke"):
        await importer(Job("import", {}))

    table = store.actor.database.tables[USERS.name]
    assert len(table.rows) == len(table) == 0  # both staged slices went, in spite of the refusals
    assert calls.count("abort") == 4
    assert await store.counts() == {spec.name: 0 for spec in TABLES}


async def test_an_abort_gives_up_quietly_once_the_store_has_closed(
    store: StoreClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def closed(transaction: int, limit: int) -> int:
        raise StoreClosed

    async def broken(transaction: int, table: str, rows: Any) -> int:
        raise RuntimeError("the import broke")

    monkeypatch.setattr(store, "abort", closed)
    monkeypatch.setattr(store, "stage", broken)
    importer = Importer(store, users(2), 2, "all-or-nothing", bcrypt_rounds=4)

    with pytest.raises(RuntimeError, match="the import broke"):  # the import's own error, not the abort's
        await importer(Job("import", {}))


async def test_skip_invalid_lists_the_first_rejections_and_counts_them_all(
    store: StoreClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "LISTED_REJECTIONS", 7)
    records = [Record("users", index, {"id": str(uuid.uuid4()), "email": "not an email"}) for index in range(60)]
    records.append(users(1)[0]._replace(number=60))

    result = await Importer(store, records, 61, "skip-invalid", bcrypt_rounds=4)(Job("import", {}))

    assert result["imported"] == {"users": 1, "orders": 0}
    assert result["rejected_count"] == 60
    assert [entry["index"] for entry in result["rejected"]] == list(range(7))
