"""Snapshot files: the whole database at the moment a log segment began, written so a crash never leaves half of one.

``snapshot-00000007.snap`` holds the state as of the start of log segment 7:
recovery loads it and replays segments 7, 8, … only. It is a series of records
framed like the log's (``u32 length | u32 crc32 | body``): a header (format,
counters, open transactions, each table's numbering), then the rows in chunks,
then the named snapshots of that moment (:mod:`store.named_images`), then an
end marker, so a file cut short or damaged anywhere is recognised.
Bodies are pickles of plain values only (tuples, lists, dicts, ints, strings,
bytes, bools, ``None``) — rows are already encoded, so loading skips every
codec — and they are read back with an unpickler that refuses every global, so
a tampered file can never name code to run.

A snapshot is written to ``*.tmp``, fsynced, renamed into place and the
directory fsynced; only then are older segments and snapshots removed.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from store.database import Database, Image, TableImage
from store.log import FILE_MODE, sync_directory
from store.named_images import MARK, NamedLoader, named_header, named_records

FORMAT = 2
READABLE = (1, 2)
"""Format 1 (no named snapshots, no version counters) is still read."""
HEADER = struct.Struct("<II")
CHUNK_ROWS = 10_000
PREFIX = "snapshot-"
SUFFIX = ".snap"
_END = b"end"


class SnapshotError(ValueError):
    """The snapshot file is damaged or not one this version reads; the message says where."""


def snapshot_name(segment: int) -> str:
    return f"{PREFIX}{segment:08d}{SUFFIX}"


def snapshots(directory: Path) -> list[tuple[int, Path]]:
    """The snapshot files in ``directory``, oldest first (by the segment they precede)."""
    found = []
    for path in directory.glob(f"{PREFIX}*{SUFFIX}"):
        number = path.name.removeprefix(PREFIX).removesuffix(SUFFIX)
        if number.isdigit():
            found.append((int(number), path))
    return sorted(found)


def write_snapshot(directory: Path, segment: int, image: Image) -> Path:
    """Write ``image`` as the snapshot preceding ``segment``; return its path (blocking: run it in a thread)."""
    path = directory / snapshot_name(segment)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as file:
        header = {
            "format": FORMAT,
            "segment": segment,
            "last_now": image.last_now,
            "last_transaction": image.last_transaction,
            "transactions": image.transactions,
            "tables": {
                name: {"rows": len(table.rows), "staged": table.staged, "order": table.order}
                for name, table in image.tables.items()
            },
            "named": named_header(image),
        }
        _write(file, pickle.dumps(header, protocol=5))
        for name, table in image.tables.items():
            for start in range(0, len(table.rows), CHUNK_ROWS):
                _write(file, pickle.dumps((name, table.rows[start : start + CHUNK_ROWS]), protocol=5))
        for record in named_records(image):
            _write(file, pickle.dumps(record, protocol=5))
        _write(file, _END)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    sync_directory(directory)
    return path


def _write(file: BinaryIO, body: bytes) -> None:
    file.write(HEADER.pack(len(body), zlib.crc32(body)))
    file.write(body)


def verify_snapshot(path: Path) -> None:
    """Check every record's checksum and the end marker (reading, not unpickling); :class:`SnapshotError` if bad."""
    with open(path, "rb") as file:
        last = b""
        for _, body in _records(path, file):
            last = body
    if last != _END:
        raise SnapshotError(f"{path}: cut short (no end marker)")


def load_snapshot(path: Path, database: Database) -> int:
    """Load the snapshot into ``database`` (empty), a chunk at a time; return the log segment it precedes.

    The file is verified first, so a damaged one leaves the database untouched;
    rows are never all in memory twice (file, then rows).
    """
    verify_snapshot(path)
    offset = 0
    try:
        with open(path, "rb") as file:
            records = _records(path, file)
            offset, body = next(records)
            header = _loads(body)
            if not isinstance(header, dict) or header.get("format") not in READABLE:
                raise SnapshotError(f"{path}: not a snapshot of format {FORMAT}")
            counts = dict.fromkeys(header["tables"], 0)
            named = NamedLoader(header.get("named", []), database)
            for offset, body in records:  # noqa: B007 - the error below names the offset reached
                if body == _END:
                    break
                record = _loads(body)
                if record[0] == MARK and len(record) == 5:
                    named.add(*record[1:])
                    continue
                name, chunk = record
                database.restore_rows(name, chunk)
                counts[name] += len(chunk)
        tables = {}
        for name, info in header["tables"].items():
            if counts[name] != info["rows"]:
                raise SnapshotError(f"{path}: {name} holds {counts[name]} rows, not {info['rows']}")
            tables[name] = TableImage([], info["staged"], tuple(info["order"]))
        database.restore_state(Image(tables, header["transactions"], header["last_now"], header["last_transaction"]))
        database.snapshots = named.finish()
        return int(header["segment"])
    except SnapshotError:
        raise
    except (KeyError, TypeError, ValueError, pickle.UnpicklingError, StopIteration) as error:
        raise SnapshotError(f"{path} at byte {offset}: {error!r}") from None


def _records(path: Path, file: BinaryIO) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while header := file.read(HEADER.size):
        if len(header) < HEADER.size:
            raise SnapshotError(f"{path} at byte {offset}: a record header is cut short")
        length, crc = HEADER.unpack(header)
        body = file.read(length)
        if len(body) != length or zlib.crc32(body) != crc:
            raise SnapshotError(f"{path} at byte {offset}: checksum mismatch or record cut short")
        yield offset, body
        offset += HEADER.size + length


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"a snapshot holds plain values only, not {module}.{name}")


def _loads(body: bytes) -> Any:
    return _PlainUnpickler(io.BytesIO(body)).load()
