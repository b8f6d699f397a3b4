"""The store on Redis, wired into the service: ``MEMDB_STORE_URL=redis://…`` (or ``rediss://``).

:class:`SharedStore` opens the :class:`~store.redis.RedisStore` the routes use
in place of the embedded actor's client, shows its writes to the caller cache
(as the actor does) and has the cache ask Redis, before each lookup, whether
any node changed sessions or users since it was filled (one small read): a
logout, a password change or a deleted user on any node is seen by every node
from the moment it is acknowledged.
:func:`rate_limiter` gives the limiter every node shares in that case.

Redis's client (and ``limits``' Redis storage) are imported only when a store on
Redis is opened: the embedded store never uses them, and importing them costs
every process about 4 MiB of its 512 (docs/performance.md, section 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from server.security.callers import CallerCache
from server.security.limits import RateLimiter
from server.settings import Settings
from server.tables import TABLES

if TYPE_CHECKING:
    from store.redis import RedisStore


class SharedStore:
    """A Redis-backed store and its change feed, for one memdb process."""

    def __init__(self, url: str, callers: CallerCache[Any]) -> None:
        from store.redis import connect

        self.store: RedisStore = connect(url, TABLES)
        self.callers = callers
        self.store.watch(callers.watch)
        callers.check = self.check_callers
        self._watched = tuple(sorted(callers.watched))
        self._seen: tuple[int, ...] | None = None

    async def check_callers(self) -> None:
        """Empty the caller cache if any node changed a session or user since it was last checked."""
        seen = await self.store.changes(self._watched)
        if seen != self._seen:
            self.callers.clear()
            self._seen = seen

    async def ready(self) -> bool:
        """Whether Redis answers right now."""
        return await self.store.ping()

    async def close(self) -> None:
        await self.store.close()


def rate_limiter(settings: Settings, limit: int, name: str) -> RateLimiter:
    """This process's own limiter, or (with the data in Redis) one every node shares."""
    if settings.store_url is None:
        return RateLimiter(limit, settings.rate_limit_max_clients)
    from server.security.shared_limits import SharedRateLimiter

    return SharedRateLimiter(settings.store_url, limit, name)
