"""Per-client allowances over a moving 60-second window (the ``limits`` package's moving-window storage).

Keys are ``user:<id>`` for authenticated callers and ``addr:<ip>`` otherwise.
Every admitted request is remembered for 60 s, and one is admitted only while
fewer than ``limit`` are remembered, so no 60-second window ever holds more
than ``limit`` requests of one client (a token bucket lets a full bucket plus a
minute's refill, nearly twice the figure, through in the first minute). The
state lives in a :class:`BoundedWindowStorage`: at most ``max_clients`` keys.

``limits``' ``MovingWindowRateLimiter.hit`` is exactly the storage's
``acquire_entry(item.key_for(key), item.amount, item.get_expiry())``; the check
calls the storage itself with the client's key as it is (each limiter has a
storage of its own), because ``key_for``'s escaping and the strategy's wrapper
were two thirds of the cost of a check (11 µs against 4 µs, measured in one
run). A storage shared by several limiters (Redis) would need ``key_for``'s
namespacing back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItemPerMinute

from server.security.window_storage import BoundedWindowStorage, loop_time


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
        self._item = RateLimitItemPerMinute(limit)
        self._expiry = self._item.get_expiry()

    def __len__(self) -> int:
        return len(self.storage)

    async def check(self, key: str) -> Verdict:
        """Count one request for ``key`` if its allowance permits."""
        allowed = await self.storage.acquire_entry(key, self._item.amount, self._expiry)
        held, oldest, newest, now = self.storage.entries(key)  # the window as that left it
        reset = 0 if newest is None else _seconds(newest + self._expiry - now)
        retry = 0 if allowed or oldest is None else max(1, _seconds(oldest + self._expiry - now))
        return Verdict(allowed, self.limit, self.limit - held, reset, retry)


def _seconds(interval: float) -> int:
    """Whole seconds, rounded up: a client waiting this long is never early."""
    return math.ceil(interval)
