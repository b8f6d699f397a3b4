"""Taking snapshots in the background, so the log stays short and recovery fast.

A snapshot is taken from one consistent moment without holding the actor: in
one synchronous step on the event loop (between two commands, the same
guarantee a command has) the log moves on to a new segment and the database
hands over its image — rows are immutable tuples, so the lists it copies stay
that moment's while writes go on. The file is then written in a thread
(:func:`store.snapshot.write_snapshot`: temporary file, fsync, atomic rename),
and only then are the older segments and snapshots deleted.

:class:`Snapshotter` takes one when the log on disk has grown past
``log_bytes_limit`` (checked once a second), when asked (:meth:`take`: the
admin job, a clean shutdown), and never two at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from store.database import Database
from store.log import CommandLog
from store.periodic import Periodic
from store.snapshot import snapshots, write_snapshot

logger = logging.getLogger("memdb.snapshot")


@dataclass(frozen=True, slots=True)
class Taken:
    """One snapshot: where it is, the segment it precedes, rows it holds, seconds it took, log bytes freed."""

    path: Path
    segment: int
    rows: int
    seconds: float
    freed_bytes: int


class Snapshotter:
    """Snapshots of one database whose writes go to ``log``."""

    def __init__(self, database: Database, log: CommandLog, log_bytes_limit: int, interval: float = 1.0) -> None:
        self.database = database
        self.log = log
        self.log_bytes_limit = log_bytes_limit
        self.interval = interval
        self.last: Taken | None = None
        self.last_finished = time.monotonic()
        """When the last snapshot finished (or, before any, when this started)."""
        self.taken = 0
        self.failures = 0
        self._lock = asyncio.Lock()
        self._watcher = Periodic(interval, self._check, "memdb-snapshots")

    @property
    def age(self) -> float:
        return time.monotonic() - self.last_finished

    @property
    def running(self) -> bool:
        return self._lock.locked()

    async def take(self) -> Taken:
        """Take a snapshot now (after the one in progress, if any)."""
        async with self._lock:
            started = time.perf_counter()
            try:
                async with self.log.sync_lock:  # no fsync of the old segment is half done while it is retired
                    segment = self.log.rotate()
                    image = self.database.image()
                rows = sum(len(table.rows) for table in image.tables.values())
                path = await asyncio.to_thread(write_snapshot, self.log.directory, segment, image)
                await self.log.sync()  # the retired segment is closed before it is deleted
                freed = await asyncio.to_thread(self._forget_before, segment, path)
            except Exception:
                self.failures += 1
                raise
            self.last = Taken(path, segment, rows, time.perf_counter() - started, freed)
            self.last_finished = time.monotonic()
            self.taken += 1
            logger.info("snapshot %s: %d rows in %.2fs, %d log bytes freed", path.name, rows, self.last.seconds, freed)
            return self.last

    def _forget_before(self, segment: int, keep: Path) -> int:
        for _, path in snapshots(self.log.directory):
            if path != keep:
                path.unlink(missing_ok=True)
        return self.log.forget_before(segment)

    def start(self) -> None:
        """Watch the log's size once every ``interval`` seconds."""
        self._watcher.start()

    async def stop(self) -> None:
        await self._watcher.stop()

    async def _check(self) -> None:
        if self.log.total_bytes >= self.log_bytes_limit and not self.running and self.log.broken is None:
            try:
                await self.take()
            except Exception:
                logger.exception("snapshot failed; the log keeps everything, a later one will be tried")
