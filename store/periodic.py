"""A background task that runs an action every ``interval`` seconds until stopped.

The supervisor's memory check, the log's once-a-second fsync and the snapshot
watcher all need one; the action handles (and logs) its own errors.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


class Periodic:
    """Runs ``action`` every ``interval`` seconds (the first time one interval after :meth:`start`)."""

    def __init__(self, interval: float, action: Callable[[], Awaitable[None]], name: str) -> None:
        self.interval = interval
        self.action = action
        self.name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.action()
