"""The store on Redis, wired into the service: ``MEMDB_STORE_URL=redis://…`` (or ``rediss://``).

:class:`SharedStore` opens the :class:`~store.redis.RedisStore` the routes use
in place of the embedded actor's client and shows its writes to the caller
cache (as the actor does). Other nodes write too, so the cache also listens to
Redis: every script that changes or removes sessions or users publishes it,
and this node's :class:`~store.redis.changes.ChangeFeed` empties the cache as
the message is read, so a logout, a password change or a deleted user on any
node is refused by every node once the message has arrived (see
docs/scaling.md). While the subscription is not known to be whole (not yet
confirmed, silent too long, or a message waiting unread on its socket), each
lookup asks Redis instead, as it did before the feed existed: one small read of
how many times sessions and users were changed, emptying the cache if the
counts moved since it was last asked. A cache that may have missed a message is
never trusted.
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
        self.feed = self.store.change_feed(self._watched, callers.clear)

    async def check_callers(self) -> None:
        """Make the caller cache exact before a lookup: free while the feed is whole, one read of Redis if not."""
        if self.feed.current():
            return
        self.feed.start()  # at the first lookup (it needs the running loop); after that, it resubscribes itself
        seen = await self.store.changes(self._watched)
        if seen != self._seen:
            self.callers.clear()
            self._seen = seen

    async def ready(self) -> bool:
        """Whether Redis answers right now."""
        return await self.store.ping()

    async def close(self) -> None:
        await self.feed.close()
        await self.store.close()


def rate_limiter(settings: Settings, limit: int, name: str) -> RateLimiter:
    """This process's own limiter, or (with the data in Redis) one every node shares."""
    if settings.store_url is None:
        return RateLimiter(limit, settings.rate_limit_max_clients)
    from server.security.shared_limits import SharedRateLimiter

    return SharedRateLimiter(settings.store_url, limit, name)
