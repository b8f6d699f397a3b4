"""Rate limits shared by every node on one Redis: the same moving window as :mod:`server.security.limits`, in Redis.

With ``MEMDB_STORE_URL`` set, many memdb processes serve one dataset, so a
client's allowance must be counted once across all of them: each admitted
request is one entry in a moving 60-second window kept in Redis by the
``limits`` package's own Lua scripts (the acquiring one adds the entry
atomically), so no 60-second span ever holds more than the limit, whichever
nodes took the requests. The scripts run over the store's auto-pipelined
connection (:mod:`store.redis.link`): the entry, the window and its expiry are
asked for together, one round trip per request rather than three calls through
redis-py. The verdict — and so the ``X-Rate-Limit-*`` and ``Retry-After``
headers — is the in-process limiter's: remaining is the limit less the entries
held, reset is when the newest entry leaves (the key's TTL, which each entry
sets), and a refusal's retry is when the oldest leaves. While Redis cannot be
reached the window cannot be read: requests then pass the limiter (and the
store answers ``503``), rather than every request failing twice.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import hiredis
from limits.aio.storage.redis.bridge import RedisBridge
from redis.asyncio import ConnectionPool

from server.security.limits import RateLimiter, Verdict
from store.redis.link import CONNECT_SECONDS, REPLY_SECONDS, Address, Link, LinkLost, Script, unknown_script

logger = logging.getLogger("memdb.limits")

ACQUIRE = Script(RedisBridge.SCRIPT_ACQUIRE_MOVING_WINDOW)
WINDOW = Script(RedisBridge.SCRIPT_MOVING_WINDOW)


class SharedRateLimiter(RateLimiter):
    """``limit`` requests in any 60 seconds per key, counted in Redis for every node at once."""

    def __init__(self, url: str, limit: int, name: str) -> None:
        super().__init__(limit, max_clients=1)  # its in-process storage stays unused
        self._link = Link(Address.of_pool(ConnectionPool.from_url(url), CONNECT_SECONDS), REPLY_SECONDS)
        self._prefix = f"memdb:limits:{name}"  # limiters sharing one Redis keep their windows apart

    async def close(self) -> None:
        """Close this limiter's connection to Redis (it closes with the process otherwise)."""
        await self._link.close()

    async def check(self, key: str) -> Verdict:
        expiry = self._expiry
        window_key = f"{self._prefix}:{key}"
        now = time.time()
        try:
            # One round trip: Redis runs them in this order, so the window read includes the entry just added.
            allowed, window, ttl = await asyncio.gather(
                self._acquire(window_key, now), self._window(window_key, now), self._link.call("TTL", window_key)
            )
            retried = allowed is _UNKNOWN
            if retried:  # Redis restarted or flushed its scripts: the entry was not added; load and add it now
                allowed = await ACQUIRE(self._link, now, self.limit, expiry, 1, keys=(window_key,))
            if retried or window is _UNKNOWN:  # read again, after the entry
                window = await WINDOW(self._link, now - expiry, self.limit, keys=(window_key,))
        except (LinkLost, hiredis.ReplyError):
            logger.warning("rate limit window unreadable; request let through", exc_info=True)
            return Verdict(True, self.limit, self.limit, 0, 0)
        allowed = bool(allowed)
        oldest, held = (float(window[0]), int(window[1])) if window else (now, 0)
        # An admitted request is the newest entry; a refused one adds none, so ask when the newest leaves.
        newest_leaves = expiry if allowed else max(int(ttl), 0)
        retry = 0 if allowed or held == 0 else max(1, math.ceil(oldest + expiry - time.time()))
        return Verdict(allowed, self.limit, self.limit - held, max(newest_leaves, retry), retry)

    async def _acquire(self, window_key: str, now: float) -> Any:
        acquire = self._link.call("EVALSHA", ACQUIRE.sha, 1, window_key, now, self.limit, self._expiry, 1)
        return await self._unless_unknown(acquire)

    async def _window(self, window_key: str, now: float) -> Any:
        return await self._unless_unknown(
            self._link.call("EVALSHA", WINDOW.sha, 1, window_key, now - self._expiry, self.limit)
        )

    @staticmethod
    async def _unless_unknown(reply: Any) -> Any:
        try:
            return await reply
        except hiredis.ReplyError as error:
            if unknown_script(error):
                return _UNKNOWN
            raise


_UNKNOWN = object()
"""Redis did not know the script: it did not run."""
