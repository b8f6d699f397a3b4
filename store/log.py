"""The command log: every write command, framed and checksummed, appended before its caller hears back.

The log is a series of segment files ``00000001.log``, ``00000002.log``, … in
the data directory; each process appends to a segment of its own, so a segment
is never reopened for writing. A record is::

    u32 length | u32 crc32(body) | body = i64 time (µs) | the command's encoded form

``time`` is the clock the command saw (the database pins it for the command),
so replaying the record rebuilds the very same timestamps and tags. The record
is written (``os.write``, into the OS's cache) *before* the command is applied;
a command that then fails is cut off again (``ftruncate``), so the log holds
only commands that changed something, and a write the disk refuses is never
applied (:class:`~store.errors.PersistenceFailed`).

``fsync`` follows Redis's ``appendfsync``: ``always`` — the actor syncs once
per turn and answers the turn's writers after it (group commit, in a thread);
``everysec`` — a background task syncs once a second; ``no`` — the OS decides.
A failed ``fsync`` leaves the log ``broken``: data the OS dropped cannot be
trusted to be on disk, so every later write is refused until a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from store.commands import Command
from store.errors import PersistenceFailed
from store.periodic import Periodic

logger = logging.getLogger("memdb.log")

FsyncPolicy = Literal["always", "everysec", "no"]
HEADER = struct.Struct("<II")
TIME = struct.Struct("<q")
MAX_RECORD = 1 << 30
"""Bigger than any command can be (requests are limited far below); a larger length is corruption."""
SEGMENT_SUFFIX = ".log"
FILE_MODE = 0o600


def frame(command_bytes: bytes, now: int) -> bytes:
    """One record: header plus body."""
    body = TIME.pack(now) + command_bytes
    return HEADER.pack(len(body), zlib.crc32(body)) + body


def segment_name(number: int) -> str:
    return f"{number:08d}{SEGMENT_SUFFIX}"


def segments(directory: Path) -> list[tuple[int, Path]]:
    """The log segments in ``directory``, oldest first."""
    found = []
    for path in directory.glob(f"*{SEGMENT_SUFFIX}"):
        stem = path.name.removesuffix(SEGMENT_SUFFIX)
        if stem.isdigit():
            found.append((int(stem), path))
    return sorted(found)


@dataclass(frozen=True, slots=True)
class Record:
    offset: int
    now: int
    command: bytes


@dataclass(frozen=True, slots=True)
class Damage:
    """Where reading a segment stopped: the first bad byte and why; ``torn`` if only its tail is bad."""

    path: Path
    offset: int
    reason: str
    torn: bool

    def describe(self) -> str:
        return f"{self.path} at byte {self.offset}: {self.reason}"


def read_segment(path: Path) -> tuple[list[Record], Damage | None]:
    """Every intact record of the segment, and where (and how) it is damaged, if it is.

    Damage is ``torn`` when nothing intact follows it: the record runs past the
    end of the file, or it is the file's last record, or only zeros follow (what
    a crash mid-append leaves). Anything else is corruption in the middle.
    """
    data = path.read_bytes()
    records: list[Record] = []
    offset = 0
    end = len(data)
    view = memoryview(data)
    while offset < end:
        if end - offset < HEADER.size:
            return records, Damage(path, offset, "a record header is cut short", True)
        length, crc = HEADER.unpack_from(data, offset)
        start = offset + HEADER.size
        if length < TIME.size or length > MAX_RECORD:
            torn = not any(view[offset:])
            return records, Damage(path, offset, f"impossible record length {length}", torn)
        if start + length > end:
            return records, Damage(path, offset, "the last record is cut short", True)
        body = view[start : start + length]
        if zlib.crc32(body) != crc:
            torn = start + length == end
            return records, Damage(path, offset, "checksum mismatch", torn)
        (now,) = TIME.unpack_from(body)
        records.append(Record(offset, now, bytes(body[TIME.size :])))
        offset = start + length
    return records, None


class CommandLog:
    """The segment this process appends to, and its fsync policy."""

    def __init__(self, directory: Path, number: int, fsync: FsyncPolicy = "everysec") -> None:
        self.directory = directory
        self.fsync: FsyncPolicy = fsync
        self.number = number
        self.path = directory / segment_name(number)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        sync_directory(directory)
        self.size = 0
        """Bytes in this segment."""
        self.earlier_bytes = sum(path.stat().st_size for n, path in segments(directory) if n < number)
        """Bytes in older segments still on disk (until a snapshot removes them)."""
        self.synced_size = 0
        self.last_sync = time.monotonic()
        self.last_sync_seconds = 0.0
        self.syncs = 0
        self.broken: str | None = None
        """Why the log refuses writes for good (a failed fsync), else ``None``."""
        self.last_error: str | None = None
        """The most recent append failure (cleared by the next append that succeeds)."""
        self.failures = 0
        self._retired: list[int] = []
        """Descriptors of segments rotated away from, to fsync and close (off the event loop)."""
        self._retired_dirty = False
        self.lock_fd: int | None = None
        """The data directory's lock, held while this log is open."""
        self._syncer = Periodic(1.0, self._sync_quietly, "memdb-log-fsync")
        self.sync_lock = asyncio.Lock()

    @property
    def total_bytes(self) -> int:
        return self.earlier_bytes + self.size

    @property
    def sync_age(self) -> float:
        """Seconds since the last fsync (or since the segment was opened)."""
        return time.monotonic() - self.last_sync

    @property
    def dirty(self) -> bool:
        return self.synced_size != self.size or self._retired_dirty

    def rotate(self) -> int:
        """Continue in a new segment from here on; return its number.

        Synchronous (one ``open``), so a caller can take a snapshot of the database in
        the same step and know it precedes exactly the new segment. The old segment
        is fsynced and closed by the next :meth:`sync_now`.
        """
        if self.broken is not None:
            raise PersistenceFailed(self.broken)
        number = self.number + 1
        path = self.directory / segment_name(number)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except OSError as error:
            raise PersistenceFailed(f"a new log segment could not be created: {error.strerror or error}") from None
        self._retired.append(self._fd)
        self._fd, self.number, self.path = fd, number, path
        self.earlier_bytes += self.size
        self.size = self.synced_size = 0
        self._retired_dirty = True
        return number

    def forget_before(self, number: int) -> int:
        """Delete the segments older than ``number`` (a snapshot holds what they did); return bytes freed."""
        freed = 0
        for older, path in segments(self.directory):
            if older < number:
                size = path.stat().st_size
                path.unlink(missing_ok=True)
                freed += size
        self.earlier_bytes = max(0, self.earlier_bytes - freed)
        return freed

    def append(self, command: Command[Any], now: int) -> int:
        """Write ``command`` (seeing time ``now``); return the mark to :meth:`retract` it to.

        Raises :class:`PersistenceFailed` if the disk refuses it (nothing is then left behind).
        """
        if self.broken is not None:
            raise PersistenceFailed(self.broken)
        record = frame(command.encode(), now)
        mark = self.size
        try:
            written = os.write(self._fd, record)
            while written < len(record):  # a short write: the rest, or the error that stopped it
                written += os.write(self._fd, record[written:])
        except OSError as error:
            self.failures += 1
            self.last_error = f"the log could not be written: {error.strerror or error}"
            self._cut(mark)
            raise PersistenceFailed(self.last_error) from None
        self.size = mark + len(record)
        self.last_error = None
        return mark

    def retract(self, mark: int) -> None:
        """Take back everything appended since ``mark`` (the command failed, so it changed nothing)."""
        self._cut(mark)

    def _cut(self, mark: int) -> None:
        try:
            os.ftruncate(self._fd, mark)
            os.lseek(self._fd, mark, os.SEEK_SET)
        except OSError as error:
            self.broken = f"the log could not be repaired after a failed write: {error.strerror or error}"
            logger.error("command log %s is broken: %s", self.path, self.broken)
            return
        self.size = mark

    def sync_now(self) -> None:
        """``fsync`` the segment (blocking: run it in a thread)."""
        size = self.size
        started = time.perf_counter()
        retired, self._retired = self._retired, []
        self._retired_dirty = False
        try:
            for fd in retired:
                os.fsync(fd)
                os.close(fd)
            if retired:
                sync_directory(self.directory)  # the new segment's name, too
            os.fsync(self._fd)
        except OSError as error:
            self.broken = f"fsync of the log failed: {error.strerror or error}"
            self.failures += 1
            logger.error("command log %s is broken: %s", self.path, self.broken)
            raise PersistenceFailed(self.broken) from None
        self.last_sync_seconds = time.perf_counter() - started
        self.last_sync = time.monotonic()
        self.synced_size = max(self.synced_size, size)
        self.syncs += 1

    async def sync(self) -> None:
        """``fsync`` in a thread, never on the event loop; concurrent calls share one."""
        async with self.sync_lock:
            if self.dirty:
                await asyncio.to_thread(self.sync_now)

    def start(self) -> None:
        """Start the once-a-second fsync task (``everysec`` only)."""
        if self.fsync == "everysec":
            self._syncer.start()

    async def _sync_quietly(self) -> None:
        with contextlib.suppress(PersistenceFailed):  # it marks the log broken; the writers hear of it
            await self.sync()

    async def close(self) -> None:
        """Stop the background task, ``fsync`` what is left (whatever the policy) and close the file."""
        await self._syncer.stop()
        if self._fd < 0:
            return
        with contextlib.suppress(PersistenceFailed):
            await self.sync()
        os.close(self._fd)
        self._fd = -1
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None


def sync_directory(directory: Path) -> None:
    """Make a file created or renamed in ``directory`` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
