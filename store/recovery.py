"""Opening a data directory: lock it, rebuild the database from its log, and start a new segment.

Recovery loads the newest snapshot (:mod:`store.snapshot`: encoded rows, no
codecs), then replays every segment after it, oldest first, each record with the clock it
recorded, so rows, timestamps and tags come back exactly as they were. Damage
is handled as Redis handles a truncated AOF: a torn or corrupt *tail* of the
newest segment (what a crash mid-append leaves) is cut off with a warning and
counted; damage anywhere else refuses to start with :class:`CorruptLog`, naming
the file and offset, unless the operator asked for ``truncate``, which keeps
what precedes the damage and sets the rest aside (renamed ``*.discarded``).

Rows an import staged but never committed are removed afterwards, through the
log (an ``Abort`` record), so the next recovery sees the same thing.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from store import commands as c
from store.database import Database
from store.errors import CorruptLog, StoreError
from store.log import FILE_MODE, CommandLog, Damage, FsyncPolicy, read_segment, segments
from store.snapshot import SnapshotError, load_snapshot, snapshots, verify_snapshot

logger = logging.getLogger("memdb.recovery")

RecoverPolicy = Literal["refuse", "truncate"]
LOCK_NAME = "lock"


@dataclass(slots=True)
class Recovery:
    """What opening the data directory found and did."""

    log: CommandLog
    records: int = 0
    """Commands replayed."""
    seconds: float = 0.0
    cut: list[str] = field(default_factory=list)
    """Damage cut off (torn tails, or with ``truncate`` anything), one description each."""
    failed: int = 0
    """Replayed commands the database refused (should stay 0: replay repeats what succeeded)."""
    aborted: int = 0
    """Staged rows of imports that never committed, removed."""
    snapshot: Path | None = None
    """The snapshot loaded before the log was replayed."""

    @property
    def empty(self) -> bool:
        """Nothing was there before: a fresh data directory (the only kind a seed file is loaded into)."""
        return self.records == 0 and not self.cut and self.snapshot is None


def lock_directory(directory: Path) -> int:
    """Hold the directory's lock for the life of the process; a second memdb on it is refused."""
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise CorruptLog(f"{directory} is in use by another memdb process") from None
    return fd


def open_data_directory(
    directory: Path, database: Database, fsync: FsyncPolicy = "everysec", policy: RecoverPolicy = "refuse"
) -> Recovery:
    """Rebuild ``database`` (empty) from ``directory`` and open a new log segment to append to."""
    started = time.perf_counter()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = lock_directory(directory)
    try:
        recovery = _recover(directory, database, fsync, policy)
    except BaseException:
        os.close(lock)
        raise
    recovery.log.lock_fd = lock
    recovery.seconds = time.perf_counter() - started
    return recovery


def _recover(directory: Path, database: Database, fsync: FsyncPolicy, policy: RecoverPolicy) -> Recovery:
    cut: list[str] = []
    snapshot, first = _load_snapshot(directory, database, policy, cut)
    for number, path in segments(directory):
        if number < first:  # left by a crash between a snapshot's rename and its clean-up
            path.unlink()
    found = segments(directory)
    replayed = 0
    failed = 0
    database.replaying = True
    for index, (_, path) in enumerate(found):
        records, damage = read_segment(path)
        newest = index == len(found) - 1
        for record in records:
            if not _replay(database, record.now, record.command):
                failed += 1
            replayed += 1
        if damage is None:
            continue
        if damage.torn and newest:
            logger.warning("cutting off a torn log tail: %s", damage.describe())
        elif policy == "truncate":
            logger.warning("MEMDB_RECOVER=truncate: keeping what precedes %s", damage.describe())
        else:
            raise CorruptLog(f"corrupt log: {damage.describe()} (set MEMDB_RECOVER=truncate to keep what precedes it)")
        _cut(damage)
        cut.append(damage.describe())
        for _, later in found[index + 1 :]:
            later.rename(later.with_name(later.name + ".discarded"))
        break
    database.replaying = False
    last = max((number for number, _ in segments(directory)), default=first - 1)
    log = CommandLog(directory, last + 1, fsync)
    recovery = Recovery(log, replayed, 0.0, cut, failed, snapshot=snapshot)
    for transaction, staged in database.open_transactions.items():
        abort = c.Abort(transaction, staged)
        log.append(abort, database.pin_clock())
        try:
            abort.apply(database)
        finally:
            database.unpin_clock()
        recovery.aborted += staged
    return recovery


def _load_snapshot(
    directory: Path, database: Database, policy: RecoverPolicy, cut: list[str]
) -> tuple[Path | None, int]:
    """Load the newest readable snapshot; return it and the first log segment to replay after it."""
    for leftover in directory.glob("*.snap.tmp"):  # a snapshot a crash interrupted: never renamed, never used
        leftover.unlink()
    for _, path in reversed(snapshots(directory)):
        try:
            verify_snapshot(path)
        except SnapshotError as error:
            if policy != "truncate":
                raise CorruptLog(f"corrupt snapshot: {error} (set MEMDB_RECOVER=truncate to set it aside)") from None
            logger.warning("MEMDB_RECOVER=truncate: setting aside %s", error)
            path.rename(path.with_name(path.name + ".discarded"))
            cut.append(str(error))
            continue
        try:
            first = load_snapshot(path, database)
        except SnapshotError as error:  # checksums held, yet it is not what this version wrote
            raise CorruptLog(f"unreadable snapshot: {error}") from None
        for _, older in snapshots(directory):
            if older != path:
                older.unlink()
        return path, first
    return None, 1


def _replay(database: Database, now: int, encoded: bytes) -> bool:
    try:
        command = c.decode(encoded)
    except ValueError as error:
        raise CorruptLog(f"a log record is no command this version knows: {error}") from None
    database.pin_clock(now)
    try:
        command.apply(database)
    except StoreError as error:
        logger.error("replaying %s failed: %s", command.op, error.message)
        return False
    finally:
        database.unpin_clock()
    return True


def _cut(damage: Damage) -> None:
    with open(damage.path, "r+b") as segment:
        segment.truncate(damage.offset)
        segment.flush()
        os.fsync(segment.fileno())
