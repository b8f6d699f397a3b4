"""Validating a large seed file in other processes while the loading process inserts.

Validation is most of a load's time and needs no store, so for a large file
(``server.seed.PARALLEL_FROM_BYTES``) :func:`prepared_chunks` starts worker
processes and hands the loading process their chunks, validated, dumped and
already encoded with the store's own codecs, in file order. Worker ``part`` of
``parts`` reads the whole file (cutting records is cheap, and every worker
needs the same chunk boundaries) and prepares chunks number ``part``,
``part + parts``, ... What crosses the pipe is plain ints, strings and bytes
(pickling the dump's UUID, Decimal and datetime objects costs five to ten
times as much), so the loading process only shares pooled values and indexes
the rows. A worker's pipe holds about two chunks and the loading process reads
up to 2 MiB more ahead of its inserting; beyond that the worker waits, so only
a few chunks are ever in flight.

A worker is a fresh interpreter (``python -m server.seed_worker FILE CHUNK
PART PARTS``), not a fork: the server has threads, and a forked copy of a
threaded process may hold a lock forever; nor multiprocessing's "spawn", which
runs the parent's main script again.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import gc
import importlib
import itertools
import os
import pickle
import struct
import sys
from pathlib import Path
from typing import Any, BinaryIO

from server.ingest.dataset_file import Irregular, stream_records
from server.ingest.prepare import Prepared
from server.ingest.records import TABLE_OF
from server.seed import Chunks, SeedError, prepare_chunk, read_batches
from server.tables import ORDERS, USERS
from store import StoreError
from store.table import Table

PIPE_BYTES = 1 << 20
"""How much the pipe to the loading process may hold: about two chunks (a chunk is about 400 KB pickled).

Also the most an unprivileged process may ask for by default (``/proc/sys/fs/pipe-max-size``)."""
_IMPORT_ROOT = str(Path(__file__).resolve().parent.parent)
"""The directory ``server`` is imported from, for the workers' ``PYTHONPATH``."""
_AHEAD_BYTES = 1 << 20
"""Read from a worker's pipe ahead of the inserting (up to twice this; the pipe itself holds another MiB)."""
_FRAME = struct.Struct("<Q")
"""Each message on a worker's pipe: its length, then the pickled message."""
_Message = tuple[Any, ...]
"""``("chunk", Prepared)``, ``("error", message)``, ``("irregular",)`` or ``("end",)``."""


# -- the loading process's side -------------------------------------------------


async def prepared_chunks(path: Path, chunk: int, parts: int) -> Chunks:
    """Prepared chunks in file order, from ``parts`` worker processes.

    Raises :class:`SeedError` for a bad record (or a worker that died) and
    :class:`~server.ingest.dataset_file.Irregular` for a file the streaming reader does not take.
    The workers are stopped when the iteration ends, however it ends (close it with
    :func:`contextlib.aclosing`).
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (_IMPORT_ROOT, os.environ.get("PYTHONPATH"))))}
    workers: list[asyncio.subprocess.Process] = []
    try:
        for part in range(parts):
            workers.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "server.seed_worker",
                    str(path),
                    str(chunk),
                    str(part),
                    str(parts),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    env=env,
                    limit=_AHEAD_BYTES,
                )
            )
        for number in itertools.count():
            message = await _receive(path, workers[number % parts])
            kind = message[0]
            if kind == "end":
                return
            if kind == "irregular":
                raise Irregular
            if kind == "error":
                raise SeedError(message[1])
            yield message[1]
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
            await worker.wait()


async def _receive(path: Path, worker: asyncio.subprocess.Process) -> _Message:
    assert worker.stdout is not None  # started with stdout=PIPE
    try:
        (size,) = _FRAME.unpack(await worker.stdout.readexactly(_FRAME.size))
        message: _Message = pickle.loads(await worker.stdout.readexactly(size))  # noqa: S301 - our own worker
    except asyncio.IncompleteReadError:
        raise SeedError(f"{path}: a seed worker process failed (exit status {await worker.wait()})") from None
    return message


# -- a worker's side ----------------------------------------------------------------


def main(argv: list[str]) -> int:
    # The messages get the real standard output to themselves; anything else printed goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _widen_pipe(out.fileno())
    path, chunk, part, parts = argv
    with out:
        work(Path(path), int(chunk), int(part), int(parts), out)
    return 0


def work(path: Path, chunk: int, part: int, parts: int, out: BinaryIO) -> None:
    """A worker process's job: prepare and send every ``parts``-th chunk from number ``part``, then ``end``."""
    gc.disable()  # nothing it makes lives long or holds cycles
    _remember_email_domains()
    tables = {spec.name: Table(spec) for spec in (USERS, ORDERS)}
    message: _Message = ("end",)
    try:
        for number, batch in enumerate(read_batches(path, stream_records(path), chunk)):
            if number % parts == part:
                _send(out, ("chunk", _encode(path, tables, prepare_chunk(path, batch))))
    except Irregular:
        message = ("irregular",)
    except SeedError as error:
        message = ("error", str(error))
    except Exception as error:  # reported to the loading process, which stops start-up with it
        message = ("error", f"{path}: {error!r}")
    _send(out, message)
    out.flush()


def _remember_email_domains() -> None:
    """Check each distinct email domain's syntax once (in a worker only), not once per user.

    Half of validating a user is email-validator checking the domain character
    by character against the IDNA rules; the answer depends on the domain alone
    (a pure function of its arguments; errors are raised, so never cached), and
    a dataset has a few domains for many users. Left as it is if the library
    no longer has that function.
    """
    module = importlib.import_module("email_validator.validate_email")
    check = getattr(module, "validate_email_domain_name", None)
    if check is not None and not hasattr(check, "cache_info"):
        setattr(module, "validate_email_domain_name", functools.lru_cache(maxsize=4096)(check))  # noqa: B010


def _send(out: BinaryIO, message: _Message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_FRAME.pack(len(data)))
    out.write(data)


def _encode(path: Path, tables: dict[str, Table], prepared: Prepared) -> Prepared:
    """``prepared`` with its rows in the store's encoding (the store then skips its codecs)."""
    table = tables[TABLE_OF[prepared.section]]
    rows = []
    for position, values in enumerate(prepared.rows):
        try:
            rows.append(table.encode(values))
        except StoreError as error:
            raise SeedError(f"{path}: {prepared.name(position)}: {error.message}") from None
    return prepared._replace(rows=rows)


def _widen_pipe(fd: int) -> None:
    """Let the pipe hold two chunks, so this worker goes on validating while the loading process inserts.

    A pipe holds 64 KiB by default, a sixth of a chunk: the worker would wait
    for every read, and the loading process reads only between its inserts.
    Linux only; elsewhere (or if refused) the worker just waits more often.
    """
    try:
        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, min(PIPE_BYTES, limit))
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
