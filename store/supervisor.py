"""The supervisor: keeps the actor alive and the process inside its memory limit.

It restarts the actor's loop the moment it dies (the mailbox and every table
survive, since they belong to the actor object, not to its task), and samples
the process's resident memory every ``interval`` seconds: at or over the limit
the database refuses commands that add rows (``InsufficientStorage``) while
reads and deletes go on; below it, inserts are accepted again. It also tells
the database how many bytes are left under the limit, which a snapshot's size
is checked against. ``healthy`` is what a readiness probe reports.
"""

from __future__ import annotations

import logging
import os
import resource
from collections.abc import Callable

from store.actor import StoreActor
from store.periodic import Periodic

logger = logging.getLogger("memdb.supervisor")


def resident_memory_bytes() -> int:
    """This process's resident set size now (Linux ``/proc``), else its peak."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Supervisor:
    """Watches one :class:`StoreActor`."""

    def __init__(
        self,
        actor: StoreActor,
        memory_limit_bytes: int,
        read_memory: Callable[[], int] = resident_memory_bytes,
        interval: float = 1.0,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        self.actor = actor
        self.memory_limit_bytes = memory_limit_bytes
        self.read_memory = read_memory
        self.interval = interval
        self.on_restart = on_restart
        self.restarts = 0
        self.memory_bytes = 0
        self.memory_exhausted = False
        self._sampler = Periodic(interval, self._sample, "memdb-supervisor")
        actor.on_crash = self._restart

    @property
    def saturated(self) -> bool:
        return self.actor.depth >= self.actor.capacity

    @property
    def healthy(self) -> bool:
        """The actor runs, memory is under the limit and the mailbox has room."""
        return self.actor.running and not self.actor.closed and not self.memory_exhausted and not self.saturated

    def check_memory(self) -> int:
        """Sample memory once and open or close the store to growth accordingly."""
        self.memory_bytes = self.read_memory()
        exhausted = self.memory_bytes >= self.memory_limit_bytes
        if exhausted != self.memory_exhausted:
            level = logging.WARNING if exhausted else logging.INFO
            state = "reached; refusing writes that add data" if exhausted else "back under; accepting writes"
            logger.log(level, "memory limit %s (%d of %d bytes)", state, self.memory_bytes, self.memory_limit_bytes)
        self.memory_exhausted = exhausted
        # Set between commands (the loop never awaits mid-command), so each command sees one value.
        self.actor.database.accepting_growth = not exhausted
        self.actor.database.memory_headroom = self.memory_limit_bytes - self.memory_bytes
        return self.memory_bytes

    def start(self) -> None:
        self.check_memory()
        self._sampler.start()

    async def stop(self) -> None:
        await self._sampler.stop()

    async def _sample(self) -> None:
        try:
            self.check_memory()
        except Exception:
            logger.exception("memory sampling failed")

    def _restart(self, error: BaseException | None) -> None:
        if self.actor.closed:
            return
        self.restarts += 1
        logger.error("restarting the store actor (restart %d) after %r", self.restarts, error)
        self.actor.start()
        if self.on_restart is not None:
            self.on_restart()
