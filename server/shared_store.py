"""The store on Redis, wired into the service: ``MEMDB_STORE_URL=redis://…`` (or ``rediss://``).

:class:`SharedStore` opens the :class:`~store.redis.RedisStore` the routes use
in place of the embedded actor's client, shows its writes to the caller cache
(as the actor does) and follows the store's change feed, so a write on any
node (a logout, a password change, a deleted user) empties every node's cache
before its writer hears back. While the feed is down the cache is off.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from server.security.callers import CallerCache
from server.tables import TABLES
from store.redis import RedisStore, connect


class SharedStore:
    """A Redis-backed store and its change feed, for one memdb process."""

    def __init__(self, url: str, callers: CallerCache[Any]) -> None:
        self.store: RedisStore = connect(url, TABLES)
        self.callers = callers
        self.store.watch(callers.watch)
        self._feed: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._feed = asyncio.get_running_loop().create_task(
            self.store.follow(self.callers.changed, self.callers.follow), name="memdb-store-feed"
        )

    async def ready(self) -> bool:
        """Whether Redis answers right now."""
        return await self.store.ping()

    async def close(self) -> None:
        if self._feed is not None:
            self._feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed
        await self.store.close()
