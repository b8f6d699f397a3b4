"""The job registry: what runs, what ran, and for how long we remember it.

A :class:`Job` is a record of one background task (its kind, state, progress,
timestamps, result or error). The :class:`JobRegistry` starts each job's
coroutine as an asyncio task, lets callers cancel it, and forgets finished jobs
after ``keep_seconds`` or beyond ``keep_count`` (oldest first), so jobs cannot
grow memory without bound.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from store import ActorCrashed, InsufficientStorage, StoreClosed, StoreOverloaded

logger = logging.getLogger("memdb.jobs")


class JobStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


FINISHED = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled})


class JobFailed(Exception):
    """A job's own, expected failure: its message (and details) become the job's error."""

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None, code: str = "JOB_FAILED") -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.code = code


@dataclass
class Job:
    """One background job, as clients see it."""

    type: str
    parameters: dict[str, Any]
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    status: JobStatus = JobStatus.queued
    done: int = 0
    total: int | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    payload: bytes | None = field(default=None, repr=False)
    """A downloadable result (an export), kept apart from ``result``."""
    media_type: str | None = None
    finished_monotonic: float | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def progress(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total


JobBody = Callable[[Job], Awaitable[dict[str, Any]]]


class Pacer:
    """Keeps a job's work on the event loop to short bursts, and out of the way of requests.

    A job validates and renders records on the same event loop as every
    request, and its store commands queue in the same mailbox. Called between
    records, :meth:`breathe` pauses the job once ``burst`` seconds (of its own
    work and its store commands) have gone by: it lets everything else that is
    ready run, then, while ``waiting()`` says requests are being served, stays
    out of their way ``rest`` seconds at a time, at most ``most`` times in a
    row, so a steady stream of requests slows a job down but cannot stop it.
    """

    def __init__(
        self, waiting: Callable[[], bool] | None = None, burst: float = 0.002, rest: float = 0.001, most: int = 20
    ) -> None:
        self.waiting = waiting
        self.burst = burst
        self.rest = rest
        self.most = most
        self._since = time.perf_counter()

    async def breathe(self) -> None:
        """Pause if this burst has lasted long enough."""
        if time.perf_counter() - self._since >= self.burst:
            await self.pause()

    async def pause(self) -> None:
        """Let everything else that is ready run; then give way while requests are being served."""
        await asyncio.sleep(0)
        if self.waiting is not None:
            for _ in range(self.most):
                if not self.waiting():
                    break
                await asyncio.sleep(self.rest)
        self._since = time.perf_counter()


def _failure(error: Exception) -> dict[str, str]:
    """A job's unexpected failure in plain words: never the exception's text or class (the log has those)."""
    if isinstance(error, InsufficientStorage):
        return {"code": "INSUFFICIENT_STORAGE", "message": "the server's memory limit was reached, so the job stopped"}
    if isinstance(error, StoreOverloaded | StoreClosed | ActorCrashed):
        return {"code": "SERVICE_UNAVAILABLE", "message": "the store was busy or restarting, so the job stopped"}
    return {"code": "INTERNAL_ERROR", "message": "the job stopped on an unexpected error, logged on the server"}


class JobRegistry:
    """Starts, tracks, cancels and eventually forgets jobs."""

    def __init__(self, keep_count: int = 100, keep_seconds: float = 3600.0) -> None:
        self.keep_count = keep_count
        self.keep_seconds = keep_seconds
        self._jobs: OrderedDict[uuid.UUID, Job] = OrderedDict()
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}

    def submit(self, job: Job, body: JobBody, on_done: Callable[[], object] | None = None) -> Job:
        """Start ``body`` for ``job``; ``on_done`` runs once it has ended, however (even cancelled before it began)."""
        self.prune()
        self._jobs[job.id] = job
        task = asyncio.get_running_loop().create_task(self._run(job, body), name=f"memdb-job-{job.id}")
        if on_done is not None:
            task.add_done_callback(lambda _: on_done())
        self._tasks[job.id] = task
        return job

    def get(self, job_id: uuid.UUID) -> Job | None:
        self.prune()
        return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        self.prune()
        return list(self._jobs.values())

    async def cancel(self, job: Job) -> None:
        """Cancel a queued or running job and wait until it has stopped (and cleaned up)."""
        task = self._tasks.get(job.id)
        if task is None or task.done():
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the caller itself is being cancelled, not (only) the job
        if not job.finished:  # cancelled before it ever started
            job.status = JobStatus.cancelled
            job.error = {"code": "CANCELLED", "message": "the job was cancelled"}
            job.finished_at = datetime.now(UTC)
            job.finished_monotonic = time.monotonic()

    def forget(self, job: Job) -> None:
        """Drop a finished job (a cancelled one: ``DELETE`` removes what it cancels)."""
        if job.finished:
            self._jobs.pop(job.id, None)
            self._tasks.pop(job.id, None)

    async def close(self) -> None:
        for job in list(self._jobs.values()):
            await self.cancel(job)

    def prune(self) -> None:
        now = time.monotonic()
        finished = [job for job in self._jobs.values() if job.finished]
        expired = {job.id for job in finished if now - (job.finished_monotonic or now) > self.keep_seconds}
        excess = len(finished) - len(expired) - self.keep_count
        for job in finished:
            if excess <= 0:
                break
            if job.id not in expired:
                expired.add(job.id)
                excess -= 1
        for job_id in expired:
            del self._jobs[job_id]
            self._tasks.pop(job_id, None)

    async def _run(self, job: Job, body: JobBody) -> None:
        job.status = JobStatus.running
        job.started_at = datetime.now(UTC)
        try:
            job.result = await body(job)
            job.status = JobStatus.succeeded
        except asyncio.CancelledError:
            job.status = JobStatus.cancelled
            job.error = {"code": "CANCELLED", "message": "the job was cancelled"}
            raise
        except JobFailed as failure:
            job.status = JobStatus.failed
            job.error = {"code": failure.code, "message": failure.message}
            if failure.details:
                job.error["details"] = failure.details
        except Exception as error:
            logger.exception("job %s failed unexpectedly", job.id)
            job.status = JobStatus.failed
            job.error = _failure(error)
        finally:
            job.finished_at = datetime.now(UTC)
            job.finished_monotonic = time.monotonic()
