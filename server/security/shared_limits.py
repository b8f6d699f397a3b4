"""Rate limits shared by every node on one Redis: the same moving window as :mod:`server.security.limits`, in Redis.

With ``MEMDB_STORE_URL`` set, many memdb processes serve one dataset, so a
client's allowance must be counted once across all of them: each admitted
request is one entry in a moving 60-second window kept by ``limits``' Redis
storage (its own Lua script adds it atomically), so no 60-second span ever
holds more than the limit, whichever nodes took the requests. The verdict —
and so the ``X-Rate-Limit-*`` and ``Retry-After`` headers — is the in-process
limiter's: remaining is the limit less the entries held, reset is when the
newest entry leaves (the key's TTL, which each entry sets), and a refusal's
retry is when the oldest leaves. While Redis cannot be reached the window
cannot be read: requests then pass the limiter (and the store answers
``503``), rather than every request failing twice.
"""

from __future__ import annotations

import logging
import math
import time

from limits.aio.storage import RedisStorage
from redis.asyncio import ConnectionPool

from server.security.limits import RateLimiter, Verdict
from store.redis import CONNECT_SECONDS

logger = logging.getLogger("memdb.limits")


class SharedRateLimiter(RateLimiter):
    """``limit`` requests in any 60 seconds per key, counted in Redis for every node at once."""

    def __init__(self, url: str, limit: int, name: str) -> None:
        super().__init__(limit, max_clients=1)  # its in-process storage stays unused
        self._pool = ConnectionPool.from_url(url, socket_connect_timeout=CONNECT_SECONDS)
        # limits' redis-py bridge takes a connection pool, though its signature types options as scalars.
        self._window = RedisStorage(
            f"async+{url}",
            implementation="redispy",
            key_prefix=f"memdb:limits:{name}",  # limiters sharing one Redis keep their windows apart
            connection_pool=self._pool,  # type: ignore[arg-type]
        )

    async def close(self) -> None:
        """Close this limiter's connections to Redis (they close with the process otherwise)."""
        await self._pool.disconnect()

    async def check(self, key: str) -> Verdict:
        expiry = self._expiry
        try:
            allowed = await self._window.acquire_entry(key, self.limit, expiry)
            oldest, held = await self._window.get_moving_window(key, self.limit, expiry)
            # An admitted request is the newest entry; a refused one adds none, so ask when the newest leaves
            # (the key's TTL, in whole seconds).
            newest_leaves = expiry if allowed else round(await self._window.get_expiry(key) - time.time())
        except Exception:  # the storage's driver errors (connection lost, timeouts) are not one family
            logger.warning("rate limit window unreadable; request let through", exc_info=True)
            return Verdict(True, self.limit, self.limit, 0, 0)
        retry = 0 if allowed or held == 0 else max(1, math.ceil(oldest + expiry - time.time()))
        return Verdict(allowed, self.limit, self.limit - held, max(newest_leaves, retry), retry)
