"""Loading a JSON dataset at start-up (``MEMDB_SEED_FILE``).

The file is ``{"users": [...], "orders": [...]}``. Every record is validated
with the API's own rules (plus the ids, timestamps and password hashes a
dataset carries). The file is streamed: records are read one at a time and
validated and inserted a chunk at a time, so a million records load without
the file, or a million models, ever being in memory at once. All or nothing:
any bad record stops start-up with a :class:`SeedError` naming it, after the
rows already loaded are rolled back. Rows are inserted in file order; a file
in creation order (as ``bench/make_dataset.py`` writes) keeps the store's
insertion-order shortcuts, any other order still sorts correctly. A large file
is validated by worker processes (:mod:`server.seed_worker`) while this
process inserts, with the same guarantees.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import TypeAdapter, ValidationError

from server.dataset import DatasetError, Irregular, Record, document_records, stream_records
from server.models.dataset import LOCKED_PASSWORD_HASH, OrderRecord, UserRecord
from server.security.passwords import hash_password
from server.tables import ORDERS, USERS
from server.validation import plain
from store import BatchRejected, StoreClient
from store.table import EncodedRows

CHUNK = 2_000
"""Records validated and inserted per store command: the actor is held a few milliseconds at a time."""
PARALLEL_FROM_BYTES = 8 << 20
"""Files this large (~20,000 records) are validated by :data:`WORKERS` other processes, and their rows frozen."""
WORKERS = 2


class SeedError(Exception):
    """The dataset cannot be loaded; the message names the file and the record."""


def describe(section: str, index: int, record: Any) -> str:
    record_id = record.get("id") if isinstance(record, dict) else None
    return f"{section}[{index}]" + (f" (id {record_id})" if record_id else "")


SECTIONS: dict[str, tuple[str, TypeAdapter[list[Any]]]] = {
    "users": (USERS.name, TypeAdapter(list[UserRecord])),
    "orders": (ORDERS.name, TypeAdapter(list[OrderRecord])),
}
"""Each section's table and its records' validator; a whole chunk is validated (and dumped) in one call."""
_SECRETS = {"__all__": {"password"}}


async def load_seed(
    path: Path, store: StoreClient, bcrypt_rounds: int, chunk: int = CHUNK, workers: int | None = None
) -> dict[str, int]:
    """Load the dataset at ``path`` into ``store``; raise :class:`SeedError` if anything is wrong.

    Records are read one at a time (:mod:`server.dataset`), validated and
    inserted ``chunk`` at a time, so memory holds a few chunks, never the file.
    All or nothing: if any record fails, every row loaded so far is rolled
    back before the error is raised.

    ``workers`` processes read and validate the file while this one inserts
    (by default :data:`WORKERS` for files of :data:`PARALLEL_FROM_BYTES` or
    more, none for smaller ones, which load faster than processes start).

    The cyclic garbage collector is paused meanwhile: rows hold no cycles, and
    every full collection would walk every row loaded so far (a quarter of the
    load's time at 100,000 records, more as the table grows). After a large
    load the rows are frozen (:func:`gc.freeze`): they live as long as the
    process, so later collections, during requests, need not walk them again;
    and the free memory the load leaves behind is handed back to the system.
    """
    large = _size(path) >= PARALLEL_FROM_BYTES
    if workers is None:
        workers = WORKERS if large else 0
    collecting = gc.isenabled()
    gc.disable()
    try:
        loaded = await _load_all(path, store, bcrypt_rounds, chunk, workers)
    finally:
        if collecting:
            gc.enable()
    if large:
        gc.collect()  # what the load left as garbage goes now, not into the frozen generation
        gc.freeze()
        _release_free_memory()
    return loaded


def _release_free_memory() -> None:
    """Hand the C allocator's free pages back to the system (glibc only; elsewhere nothing happens).

    Loading frees as much as it keeps (each chunk's messages, dicts and
    models), scattered between the rows that stay; glibc keeps such pages
    until asked. At a million records this returns about 14 MiB.
    """
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return
    trim(0)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reading it will say what is wrong


async def _load_all(path: Path, store: StoreClient, bcrypt_rounds: int, chunk: int, workers: int) -> dict[str, int]:
    mark = await store.checkpoint()
    try:
        try:
            if workers:
                from server import seed_worker  # not at the top: it imports this module

                chunks = seed_worker.prepared_chunks(path, chunk, workers)
                return await _load(path, chunks, store, bcrypt_rounds, encoded=True)
            return await _load(path, _prepared_here(path, stream_records(path), chunk), store, bcrypt_rounds)
        except Irregular:
            # Valid JSON the streaming reader does not take (say, orders before users): read it whole.
            await store.rollback(mark)
            return await _load(path, _prepared_here(path, document_records(path), chunk), store, bcrypt_rounds)
    except BaseException:
        await store.rollback(mark)
        raise


def batches(path: Path, records: Iterator[Record], chunk: int) -> Iterator[list[Record]]:
    """``records`` in chunks of at most ``chunk`` records of one section each."""
    batch: list[Record] = []
    try:
        for record in records:
            if batch and (len(batch) >= chunk or record[0] != batch[0][0]):
                yield batch
                batch = []
            batch.append(record)
    except OSError as error:
        raise SeedError(f"{path}: cannot read: {error.strerror}") from None
    except DatasetError as error:
        raise SeedError(f"{path}: {error}") from None
    if batch:
        yield batch


class Prepared(NamedTuple):
    """One chunk, validated and dumped: what goes to the store once the passwords are hashed."""

    section: str
    rows: list[dict[str, Any]]
    passwords: list[tuple[int, str]]
    """``(position in rows, password)`` of the users whose password is still to be hashed."""
    ids: list[Any]
    """Each record's ``id`` as the file gave it, to name a record the store refuses."""


def prepare(path: Path, batch: list[Record]) -> Prepared:
    """Validate one chunk of records of one section with the API's models and dump it."""
    section = batch[0][0]
    _, adapter = SECTIONS[section]
    try:
        records = adapter.validate_python([raw for _, _, raw in batch])
    except ValidationError as error:
        first = error.errors()[0]
        position, *where = first["loc"]
        _, index, raw = batch[int(position)]
        field = ".".join(str(part) for part in where) or "record"
        raise SeedError(f"{path}: {describe(section, index, raw)}: {field}: {plain(first)}") from None
    rows: list[dict[str, Any]] = adapter.dump_python(records, exclude=_SECRETS)
    passwords: list[tuple[int, str]] = []
    for position, (record, values) in enumerate(zip(records, rows, strict=True)):
        if isinstance(record, UserRecord):
            if record.password is not None:
                passwords.append((position, record.password))
                del values["password_hash"]  # hashed just before the chunk is inserted
            elif record.password_hash is None:
                values["password_hash"] = LOCKED_PASSWORD_HASH
    return Prepared(section, rows, passwords, [raw.get("id") for _, _, raw in batch])


async def _store(
    path: Path, prepared: Prepared, first_index: int, store: StoreClient, bcrypt_rounds: int, encoded: bool = False
) -> int:
    """Hash the chunk's passwords and insert it in one store command; return the rows inserted."""
    section, rows, passwords, ids = prepared
    table = SECTIONS[section][0]
    for position, password in passwords:
        rows[position]["password_hash"] = await hash_password(password, bcrypt_rounds)
    try:
        loaded = await store.load([(table, EncodedRows(rows) if encoded else rows)])
    except BatchRejected as error:
        record = {"id": ids[error.index]}
        raise SeedError(
            f"{path}: {describe(section, first_index + error.index, record)}: {error.cause.message}"
        ) from None
    return loaded.get(table, 0)


Chunks = AsyncGenerator[tuple[int, Prepared], None]
"""``(index of the chunk's first record, chunk)``, in file order."""


async def _prepared_here(path: Path, records: Iterator[Record], chunk: int) -> Chunks:
    """``(index of the chunk's first record, chunk)``, prepared in this process."""
    for batch in batches(path, records, chunk):
        yield batch[0][1], prepare(path, batch)


async def _load(
    path: Path,
    chunks: Chunks,
    store: StoreClient,
    bcrypt_rounds: int,
    encoded: bool = False,
) -> dict[str, int]:
    loaded = dict.fromkeys(SECTIONS, 0)
    async with aclosing(chunks) as prepared_chunks:  # so worker processes stop with the first error
        async for first_index, prepared in prepared_chunks:
            loaded[prepared.section] += await _store(path, prepared, first_index, store, bcrypt_rounds, encoded)
    return {SECTIONS[section][0]: count for section, count in loaded.items()}
