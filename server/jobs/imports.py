"""Bulk import as a background job.

Records arrive as ``(section, raw record)`` pairs (from a JSON document in the
seed format or from NDJSON lines). The job works through them in slices of
``SLICE`` records: it validates a slice with the dataset models (hashing any
plain passwords in worker threads), applies it in one store command and
reports the progress, so the actor is never held for long and ``done`` moves
from the first slice on.

``all-or-nothing`` stages every slice inside one store transaction: staged rows
are invisible to everyone else until the final commit makes all of them
visible at once; any bad record (or a cancellation) aborts the transaction and
nothing was ever visible. ``skip-invalid`` inserts slice by slice and reports
each rejected record with its reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from server.jobs.registry import Job, JobFailed, Pacer
from server.models.dataset import LOCKED_PASSWORD_HASH, OrderRecord, UserRecord
from server.security.passwords import hash_password
from server.tables import ORDERS, USERS
from server.validation import plain
from store import BatchRejected, StoreClient, StoreError, StoreOverloaded

SLICE = 50
"""Rows per store command: small enough that ordinary requests queued behind one wait a few milliseconds at most."""

SECTIONS: dict[str, tuple[str, type[BaseModel]]] = {
    "users": (USERS.name, UserRecord),
    "orders": (ORDERS.name, OrderRecord),
}
Mode = Literal["all-or-nothing", "skip-invalid"]


@dataclass(frozen=True, slots=True)
class RawRecord:
    section: str
    index: int
    data: Any

    @property
    def name(self) -> str:
        record_id = self.data.get("id") if isinstance(self.data, dict) else None
        return f"{self.section}[{self.index}]" + (f" (id {record_id})" if record_id else "")


def records_from_document(document: Any) -> list[RawRecord]:
    """The records of a ``{"users": [...], "orders": [...]}`` document, users first."""
    if not isinstance(document, dict) or not set(document) <= set(SECTIONS):
        raise ValueError("expected an object with 'users' and/or 'orders' lists")
    records: list[RawRecord] = []
    for section in SECTIONS:
        items = document.get(section, [])
        if not isinstance(items, list):
            raise ValueError(f"'{section}' must be a list")
        records.extend(RawRecord(section, index, item) for index, item in enumerate(items))
    return records


class Importer:
    """Runs one import job."""

    def __init__(
        self,
        store: StoreClient,
        records: Sequence[RawRecord],
        mode: Mode,
        bcrypt_rounds: int,
        pacer: Pacer | None = None,
    ) -> None:
        self.store = store
        self.records = records
        self.mode = mode
        self.bcrypt_rounds = bcrypt_rounds
        self.rejected: list[dict[str, Any]] = []
        self.pacer = pacer or Pacer()

    async def __call__(self, job: Job) -> dict[str, Any]:
        job.progress(0, len(self.records))
        if self.mode == "all-or-nothing":
            applied = await self._apply_atomically(job)
        else:
            applied = await self._apply_each(job)
        result: dict[str, Any] = {"mode": self.mode, "imported": applied, "rejected_count": len(self.rejected)}
        if self.mode == "skip-invalid":
            result["rejected"] = self.rejected
        return result

    async def _validate(self, batch: Sequence[RawRecord]) -> list[tuple[RawRecord, dict[str, Any]]]:
        """The records of ``batch`` that pass the dataset models, as store values (the others are rejected)."""
        valid: list[tuple[RawRecord, dict[str, Any]]] = []
        for raw in batch:
            model = SECTIONS[raw.section][1]
            try:
                record = model.model_validate(raw.data)
            except ValidationError as error:
                self._reject(raw, _first_problem(error))
                continue
            valid.append((raw, await self._values(record)))
            await self.pacer.breathe()
        return valid

    async def _values(self, record: BaseModel) -> dict[str, Any]:
        values = record.model_dump(exclude={"password"})
        if isinstance(record, UserRecord):
            if record.password is not None:
                values["password_hash"] = await hash_password(record.password, self.bcrypt_rounds)
            elif record.password_hash is None:
                values["password_hash"] = LOCKED_PASSWORD_HASH
        return values

    def _reject(self, raw: RawRecord, reason: str) -> None:
        if self.mode == "all-or-nothing":
            raise JobFailed(f"{raw.name}: {reason}; nothing was imported", [{"record": raw.name, "reason": reason}])
        self.rejected.append({"section": raw.section, "index": raw.index, "record": raw.name, "reason": reason})

    async def _apply_each(self, job: Job) -> dict[str, int]:
        applied = dict.fromkeys(SECTIONS, 0)
        for done, batch in _slices(self.records):
            valid = await self._validate(batch)
            if valid:
                table = SECTIONS[batch[0].section][0]
                refused = await self.store.insert_each(table, [values for _, values in valid])
                for index, reason in refused:
                    self._reject(valid[index][0], reason)
                applied[batch[0].section] += len(valid) - len(refused)
            job.progress(done)
            await self.pacer.breathe()
        return applied

    async def _apply_atomically(self, job: Job) -> dict[str, int]:
        applied = dict.fromkeys(SECTIONS, 0)
        transaction = await self.store.begin()
        try:
            for done, batch in _slices(self.records):
                valid = await self._validate(batch)  # a bad record raises JobFailed: the transaction is aborted
                try:
                    await self.store.stage(transaction, SECTIONS[batch[0].section][0], [values for _, values in valid])
                except BatchRejected as error:
                    self._reject(valid[error.index][0], error.cause.message)
                applied[batch[0].section] += len(valid)
                job.progress(done)
                await self.pacer.breathe()
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


def _slices(records: Sequence[RawRecord]) -> list[tuple[int, Sequence[RawRecord]]]:
    """Consecutive runs of at most ``SLICE`` records of one section, with the count done after each."""
    slices: list[tuple[int, Sequence[RawRecord]]] = []
    start = 0
    while start < len(records):
        section = records[start].section
        stop = start + 1
        while stop < min(start + SLICE, len(records)) and records[stop].section == section:
            stop += 1
        slices.append((stop, records[start:stop]))
        start = stop
    return slices


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "record"
    return f"{where}: {plain(first)}"
