"""Rate limits shared by every node on one Redis: the ``limits`` package's moving window, stored in Redis.

With ``MEMDB_STORE_URL`` set, many memdb processes serve one dataset, so a
client's allowance must be counted once across all of them: each request is
one entry in a moving 60-second window kept in Redis (``limits``' own Lua
script adds it atomically), so no 60-second span ever holds more than the
limit, whichever nodes took the requests. While Redis cannot be reached the
window cannot be read: requests then pass the limiter (and the store answers
``503``), rather than every request failing twice.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import ConnectionPool

from server.security.limits import RateLimiter, Verdict
from store.redis import CONNECT_SECONDS

logger = logging.getLogger("memdb.limits")


class SharedRateLimiter(RateLimiter):
    """``limit`` requests in any 60 seconds per key, counted in Redis for every node at once."""

    def __init__(self, url: str, limit: int, name: str) -> None:
        super().__init__(limit)
        self._item = RateLimitItemPerMinute(limit)
        self._pool = ConnectionPool.from_url(url, socket_connect_timeout=CONNECT_SECONDS)
        # limits' redis-py bridge takes a connection pool, though its signature types options as scalars.
        storage = RedisStorage(
            f"async+{url}",
            implementation="redispy",
            key_prefix=f"memdb:limits:{name}",
            connection_pool=self._pool,  # type: ignore[arg-type]
        )
        self._window = MovingWindowRateLimiter(storage)

    async def close(self) -> None:
        """Close this limiter's connections to Redis (they close with the process otherwise)."""
        await self._pool.disconnect()

    async def check(self, key: str) -> Verdict:
        try:
            allowed = await self._window.hit(self._item, key)
            stats = await self._window.get_window_stats(self._item, key)
        except Exception:  # the storage's driver errors (connection lost, timeouts) are not one family
            logger.warning("rate limit window unreadable; request let through", exc_info=True)
            return Verdict(True, self.limit, self.limit, 0, 0)
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return Verdict(allowed, self.limit, stats.remaining, reset, 0 if allowed else reset)
