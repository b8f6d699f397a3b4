"""Per-client allowances: a leaky bucket (aiolimiter) per key, in a bounded map.

Keys are ``user:<id>`` for authenticated callers and ``addr:<ip>`` otherwise.
The map holds at most ``max_clients`` buckets; the least recently seen are
forgotten first, so a flood of new addresses cannot grow memory. A forgotten
bucket was idle the longest, and a new one starts full — the worst a flood can
do is give an idle client a fresh allowance.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from aiolimiter import AsyncLimiter

WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int


class ClientBucket(AsyncLimiter):
    """An :class:`AsyncLimiter` that can say how full it is without blocking."""

    __slots__ = ()

    async def take(self) -> bool:
        """Take one unit if there is room now; never wait for room."""
        if not self.has_capacity():
            return False
        await self.acquire()  # returns at once: has_capacity() just said there is room
        return True

    @property
    def level(self) -> float:
        """How full the bucket is now (aiolimiter keeps this private; it has no public reading)."""
        self._leak()
        return float(self._level)


class RateLimiter:
    """``limit`` requests per minute per key, remembering at most ``max_clients`` keys."""

    def __init__(self, limit: int, max_clients: int = 10_000) -> None:
        self.limit = limit
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, ClientBucket] = OrderedDict()
        self._per_second = limit / WINDOW_SECONDS

    def __len__(self) -> int:
        return len(self._buckets)

    async def check(self, key: str) -> Verdict:
        """Count one request for ``key`` if its allowance permits."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = ClientBucket(self.limit, WINDOW_SECONDS)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        allowed = await bucket.take()
        level = bucket.level
        reset = math.ceil(level / self._per_second)
        retry = 0 if allowed else max(1, math.ceil((level + 1 - self.limit) / self._per_second))
        return Verdict(allowed, self.limit, max(0, math.floor(self.limit - level)), reset, retry)
