"""Bulk import as a background job.

Records arrive one at a time from a reader (:mod:`server.ingest`: a JSON
document or NDJSON lines, streamed from the request body's spool file). The
job works through them in slices of ``SLICE`` records: it validates a slice
with the dataset models (:mod:`server.ingest.prepare`, hashing any plain
passwords in worker threads), applies it in one store command and reports the
progress, so the actor is never held for long, ``done`` moves from the first
slice on, and memory holds one slice beside what the import has added.

``all-or-nothing`` stages every slice inside one store transaction: staged rows
are invisible to everyone else until the final commit makes all of them
visible at once; any bad record (or a cancellation) aborts the transaction and
nothing was ever visible. ``skip-invalid`` inserts slice by slice and reports
each rejected record with its reason (the first :data:`LISTED_REJECTIONS` of
them: the rest are only counted, so a file of bad records cannot grow the
job's result without bound).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing
from typing import Any, Literal, NoReturn

from server.ingest.prepare import Prepared, hash_passwords, prepare
from server.ingest.records import SECTIONS, TABLE_OF, Record, RecordError, batches
from server.jobs.registry import Job, JobFailed, Pacer
from store import BatchRejected, InsufficientStorage, StoreClient, StoreError, StoreOverloaded

SLICE = 50
"""Rows per store command: small enough that ordinary requests queued behind one wait a few milliseconds at most."""
LISTED_REJECTIONS = 1_000
"""How many rejected records a ``skip-invalid`` result lists; ``rejected_count`` counts them all."""
Mode = Literal["all-or-nothing", "skip-invalid"]


class Importer:
    """Runs one import job."""

    def __init__(
        self,
        store: StoreClient,
        records: Iterable[Record],
        total: int,
        mode: Mode,
        bcrypt_rounds: int,
        pacer: Pacer | None = None,
    ) -> None:
        self.store = store
        self.records = records
        self.total = total
        self.mode = mode
        self.bcrypt_rounds = bcrypt_rounds
        self.rejected: list[dict[str, Any]] = []
        self.rejected_count = 0
        self.pacer = pacer or Pacer()

    async def __call__(self, job: Job) -> dict[str, Any]:
        job.progress(0, self.total)
        try:
            if self.mode == "all-or-nothing":
                applied = await self._apply_atomically(job)
            else:
                applied = await self._apply_each(job)
        except InsufficientStorage:
            kept = "nothing was imported" if self.mode == "all-or-nothing" else "the records before it were imported"
            raise JobFailed(
                f"the server's memory limit was reached after {job.done} of {self.total} records; {kept}",
                code="INSUFFICIENT_STORAGE",
            ) from None
        result: dict[str, Any] = {"mode": self.mode, "imported": applied, "rejected_count": self.rejected_count}
        if self.mode == "skip-invalid":
            result["rejected"] = self.rejected
        return result

    async def _slices(self) -> AsyncGenerator[tuple[int, Prepared], None]:
        """The records' slices, validated and with their passwords hashed, and the count done after each."""
        done = 0
        for batch in batches(self.records, SLICE):
            done += len(batch)
            rejected: list[RecordError] | None = [] if self.mode == "skip-invalid" else None
            try:
                prepared = prepare(batch, rejected)
            except RecordError as error:
                self._fail(error)
            for refused in rejected or ():
                self._reject(refused)
            await hash_passwords(prepared, self.bcrypt_rounds)
            yield done, prepared
            await self.pacer.breathe()

    def _fail(self, error: RecordError) -> NoReturn:
        raise JobFailed(f"{error}; nothing was imported", [{"record": error.name, "reason": error.reason}])

    def _reject(self, error: RecordError) -> None:
        self.rejected_count += 1
        if len(self.rejected) < LISTED_REJECTIONS:
            entry = {"section": error.section, "index": error.index, "record": error.name, "reason": error.reason}
            self.rejected.append(entry)

    async def _apply_each(self, job: Job) -> dict[str, int]:
        applied = dict.fromkeys(SECTIONS, 0)
        async with aclosing(self._slices()) as slices:
            async for done, prepared in slices:
                if prepared.rows:
                    refused = await self.store.insert_each(TABLE_OF[prepared.section], prepared.rows)
                    for position, reason in refused:
                        self._reject(_refused(prepared, position, reason))
                    applied[prepared.section] += len(prepared.rows) - len(refused)
                job.progress(done)
        return applied

    async def _apply_atomically(self, job: Job) -> dict[str, int]:
        applied = dict.fromkeys(SECTIONS, 0)
        transaction = await self.store.begin()
        try:
            async with aclosing(self._slices()) as slices:
                async for done, prepared in slices:  # a bad record raises JobFailed: the transaction is aborted
                    try:
                        await self.store.stage(transaction, TABLE_OF[prepared.section], prepared.rows)
                    except BatchRejected as error:
                        self._fail(_refused(prepared, error.index, error.cause.message))
                    applied[prepared.section] += len(prepared.rows)
                    job.progress(done)
            await self._commit(transaction)
        except BaseException:
            await asyncio.shield(self._abort(transaction))
            raise
        return applied

    async def _commit(self, transaction: int) -> None:
        """Commit ``transaction``; a cancellation arriving once the commit is asked for is too late to undo it.

        The commit may already have been applied when the cancellation lands (its answer not yet read), so
        aborting then would report a cancelled job whose rows are all visible: the commit is seen through
        instead, and the job succeeds.
        """
        commit = asyncio.ensure_future(self.store.commit(transaction))
        try:
            await asyncio.shield(commit)
        except asyncio.CancelledError:
            await commit
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()

    async def _abort(self, transaction: int) -> None:
        while True:
            try:
                if not await self.store.abort(transaction, SLICE):
                    return
            except StoreOverloaded:
                continue  # staged rows left behind would hold their keys until restart: keep trying
            except StoreError:
                return  # the transaction is gone (or the store closed): nothing is left to remove


def _refused(prepared: Prepared, position: int, reason: str) -> RecordError:
    """The store refused row ``position`` of ``prepared``."""
    return RecordError(prepared.section, prepared.indexes[position], prepared.name(position), reason)
