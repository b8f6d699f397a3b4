"""Per-client allowances over a moving 60-second window (the ``limits`` package's strategy).

Keys are ``user:<id>`` for authenticated callers and ``addr:<ip>`` otherwise.
Every admitted request is remembered for 60 s, and one is admitted only while
fewer than ``limit`` are remembered, so no 60-second window ever holds more
than ``limit`` requests of one client (a token bucket lets a full bucket plus a
minute's refill, nearly twice the figure, through in the first minute). The
state lives in a :class:`BoundedWindowStorage`: at most ``max_clients`` keys.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter

from server.security.window_storage import BoundedWindowStorage, loop_time

WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    """Seconds until the whole allowance is back (every remembered request has left the window)."""
    retry_after: int
    """Seconds until one more request fits, when this one was refused; else 0."""


class RateLimiter:
    """``limit`` requests per moving minute per key, remembering at most ``max_clients`` keys."""

    def __init__(self, limit: int, max_clients: int = 10_000, clock: Callable[[], float] = loop_time) -> None:
        self.limit = limit
        self.storage = BoundedWindowStorage(max_clients, clock)
        self._strategy = MovingWindowRateLimiter(self.storage)
        self._item = RateLimitItemPerMinute(limit)

    def __len__(self) -> int:
        return len(self.storage)

    async def check(self, key: str) -> Verdict:
        """Count one request for ``key`` if its allowance permits."""
        allowed = await self._strategy.hit(self._item, key)
        oldest_leaves, remaining = await self._strategy.get_window_stats(self._item, key)
        now = self.storage.clock()
        newest = self.storage.newest_entry(self._item.key_for(key))
        reset = 0 if newest is None else _seconds(newest + WINDOW_SECONDS - now)
        retry = 0 if allowed else max(1, _seconds(oldest_leaves - now))
        return Verdict(allowed, self.limit, remaining, reset, retry)


def _seconds(interval: float) -> int:
    """Whole seconds, rounded up: a client waiting this long is never early."""
    return math.ceil(interval)
