"""Receiving a ``POST /jobs`` body: streamed to a spool file and checked as it arrives, a few at a time.

The route calls :func:`receive` once the caller is known to be an admin, so
nobody else gets a byte of a body read. The body is never held whole: each
chunk is written to a spool file (kept in memory up to the ordinary body cap,
``MEMDB_MAX_BODY_BYTES``, on disk beyond it, in ``MEMDB_IMPORT_SPOOL_DIR``) and
fed to the format's check (:mod:`server.ingest`), which parses it as a stream,
counts the records and words what is wrong. A body larger than the ordinary
cap needs one of ``MEMDB_IMPORT_CONCURRENCY`` slots, taken before any of it is
read when its ``Content-Length`` says so (else when the count passes the cap);
with none free the answer is ``503`` with ``Retry-After``. The job then reads
its records back from the spool file (:meth:`Upload.records`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from starlette.requests import ClientDisconnect, Request

from server.errors import APIError
from server.ingest.document import DocumentCheck, document_records
from server.ingest.ndjson import NdjsonCheck, ndjson_records
from server.ingest.records import Record
from server.jobs.registry import Pacer

CHECK_BYTES = 16 << 10
"""Checked between two looks at whether others need the event loop: about half a millisecond of parsing."""
RETRY_AFTER_SECONDS = "5"
"""How long a refused upload is asked to wait: a large body takes seconds to receive."""


@dataclass
class Upload:
    """A received, checked body: its spool file and what the check found."""

    file: IO[bytes]
    check: DocumentCheck | NdjsonCheck

    @property
    def total(self) -> int:
        return sum(self.check.counts.values())

    def records(self) -> Iterator[Record]:
        """The body's records, users first, read back from the spool file one at a time."""
        if isinstance(self.check, NdjsonCheck):
            return ndjson_records(self.file, self.check.users_after_orders)
        return document_records(self.file, self.check.at)

    def close(self) -> None:
        self.file.close()


class ImportSlots:
    """How many large bodies may be received at once (``MEMDB_IMPORT_CONCURRENCY``); one event loop counts them."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.taken = 0

    def take(self) -> None:
        """Take a slot, or refuse the request with ``503`` and ``Retry-After``."""
        if self.taken >= self.size:
            raise APIError(
                503,
                "SERVICE_UNAVAILABLE",
                "too many large job bodies are being received at once; retry shortly",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        self.taken += 1

    def give_back(self) -> None:
        self.taken -= 1


async def receive(
    request: Request,
    check: DocumentCheck | NdjsonCheck,
    slots: ImportSlots,
    memory_bytes: int,
    spool_dir: Path | None,
    pacer: Pacer,
) -> Upload:
    """Stream the body into a spool file through ``check``; a bad body raises the check's error."""
    declared = request.headers.get("content-length", "")
    holding = False
    directory = None if spool_dir is None else str(spool_dir)
    file: Any = tempfile.SpooledTemporaryFile(max_size=memory_bytes, dir=directory)  # noqa: SIM115 - returned
    try:
        if declared.isdigit() and int(declared) > memory_bytes:
            slots.take()
            holding = True
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > memory_bytes and not holding:
                slots.take()
                holding = True
            _spool(file, chunk)
            for start in range(0, len(chunk), CHECK_BYTES):  # a chunk may be large: check it in short bursts
                check.feed(chunk[start : start + CHECK_BYTES])
                await pacer.breathe()
        check.close()
    except ClientDisconnect:
        file.close()
        raise APIError(400, "BAD_REQUEST", "the request body ended early") from None
    except BaseException:
        file.close()
        raise
    finally:
        if holding:
            slots.give_back()
    return Upload(file, check)


def _spool(file: IO[bytes], chunk: bytes) -> None:
    try:
        file.write(chunk)
    except OSError:
        raise APIError(
            507, "INSUFFICIENT_STORAGE", "there is no room on the server to hold this body; nothing was imported"
        ) from None
