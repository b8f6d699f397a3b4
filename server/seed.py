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
process inserts, with the same guarantees. Reading and validating are the ingest
path import jobs use too (:mod:`server.ingest`).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import BinaryIO

from server.ingest.dataset_file import Irregular, stream_records
from server.ingest.document import DatasetError, DocumentCheck, document_records
from server.ingest.prepare import Prepared, hash_passwords, prepare
from server.ingest.records import TABLE_OF, Record, RecordError, batches
from store import BatchRejected, StoreClient
from store.allocator import release_free_memory
from store.collector import collection_paused
from store.table import EncodedRows

CHUNK = 2_000
"""Records validated and inserted per store command: the actor is held a few milliseconds at a time."""
PARALLEL_FROM_BYTES = 8 << 20
"""Files this large (~20,000 records) are validated by :data:`WORKERS` other processes, and their rows frozen."""
WORKERS = 2
_CHECK_BYTES = 1 << 20


class SeedError(Exception):
    """The dataset cannot be loaded; the message names the file and the record."""


async def load_seed(
    path: Path, store: StoreClient, bcrypt_rounds: int, chunk: int = CHUNK, workers: int | None = None
) -> dict[str, int]:
    """Load the dataset at ``path`` into ``store``; raise :class:`SeedError` if anything is wrong.

    Records are read one at a time (:mod:`server.ingest`), validated and
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
    with collection_paused():
        loaded = await _load_all(path, store, bcrypt_rounds, chunk, workers)
    if large:
        # Every value the load shares is shared now: the pools let go of the ones a single row holds.
        await store.trim_pools()
        gc.collect()  # what the load left as garbage goes now, not into the frozen generation
        gc.freeze()
        # Loading frees as much as it keeps (each chunk's messages, dicts and models), scattered
        # between the rows that stay; glibc keeps such pages until asked (about 14 MiB at 1M records).
        release_free_memory()
    return loaded


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
            # Valid JSON the fast reader does not take (say, orders before users): the general reader takes it.
            await store.rollback(mark)
            with _open(path) as file:
                _check(path, file)
                return await _load(path, _prepared_here(path, document_records(file), chunk), store, bcrypt_rounds)
    except BaseException:
        await store.rollback(mark)
        raise


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as error:
        raise SeedError(f"{path}: cannot read: {error.strerror}") from None


def _check(path: Path, file: BinaryIO) -> None:
    """The file must be a dataset, checked a block at a time before anything is loaded from it."""
    check = DocumentCheck()
    try:
        while block := file.read(_CHECK_BYTES):
            check.feed(block)
        check.close()
    except OSError as error:
        raise SeedError(f"{path}: cannot read: {error.strerror}") from None
    except DatasetError as error:
        raise SeedError(f"{path}: {error}") from None


def read_batches(path: Path, records: Iterator[Record], chunk: int) -> Iterator[list[Record]]:
    """``records`` in chunks of at most ``chunk`` records of one section; a read error is a :class:`SeedError`."""
    try:
        yield from batches(records, chunk)
    except OSError as error:
        raise SeedError(f"{path}: cannot read: {error.strerror}") from None
    except DatasetError as error:
        raise SeedError(f"{path}: {error}") from None


def prepare_chunk(path: Path, batch: list[Record]) -> Prepared:
    """Validate one chunk; a bad record is a :class:`SeedError` naming the file and the record."""
    try:
        return prepare(batch)
    except RecordError as error:
        raise SeedError(f"{path}: {error}") from None


async def _store(path: Path, prepared: Prepared, store: StoreClient, bcrypt_rounds: int, encoded: bool = False) -> int:
    """Hash the chunk's passwords and insert it in one store command; return the rows inserted."""
    table = TABLE_OF[prepared.section]
    await hash_passwords(prepared, bcrypt_rounds)
    rows = prepared.rows
    try:
        loaded = await store.load([(table, EncodedRows(rows) if encoded else rows)])
    except BatchRejected as error:
        raise SeedError(f"{path}: {prepared.name(error.index)}: {error.cause.message}") from None
    return loaded.get(table, 0)


Chunks = AsyncGenerator[Prepared, None]
"""Prepared chunks, in file order."""


async def _prepared_here(path: Path, records: Iterator[Record], chunk: int) -> Chunks:
    """Chunks prepared in this process."""
    for batch in read_batches(path, records, chunk):
        yield prepare_chunk(path, batch)


async def _load(
    path: Path,
    chunks: Chunks,
    store: StoreClient,
    bcrypt_rounds: int,
    encoded: bool = False,
) -> dict[str, int]:
    loaded = dict.fromkeys(TABLE_OF.values(), 0)
    async with aclosing(chunks) as prepared_chunks:  # so worker processes stop with the first error
        async for prepared in prepared_chunks:
            loaded[TABLE_OF[prepared.section]] += await _store(path, prepared, store, bcrypt_rounds, encoded)
    return loaded
