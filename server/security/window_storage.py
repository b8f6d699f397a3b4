"""A bounded in-process storage for the ``limits`` package's moving-window strategy.

``limits`` ships in-memory storages, but neither is bounded: the number of keys
grows with every new client address seen within a window (the thread-based one
even keeps an empty entry per key for good), and their expiry passes scan every
key in a background thread or hop to a worker thread per key, competing with
bcrypt for the default executor. This one keeps, per key, the times of the
requests admitted within the window in a packed array (8 bytes each, at most
``limit`` of them) and holds at most ``max_keys`` keys in least-recently-seen
order: a key idle for a whole window is forgotten as soon as it reaches the
front, and past ``max_keys`` the least recently seen key is forgotten even if
its window is still open (so a flood of new addresses costs no memory, at worst
a fresh allowance for the idlest client). There is no background task: expiry
happens on the requests themselves. Its clock is injectable, so tests move time
instead of sleeping. A shared storage (``limits``' Redis one) replaces it when
several processes must share allowances.
"""

from __future__ import annotations

import asyncio
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from limits.aio.storage import MovingWindowSupport, Storage


class Entries(NamedTuple):
    held: int
    oldest: float | None
    newest: float | None
    checked_at: float


def loop_time() -> float:
    """The running event loop's monotonic clock."""
    return asyncio.get_running_loop().time()


class BoundedWindowStorage(Storage, MovingWindowSupport):
    """Moving windows for at most ``max_keys`` keys, in memory, read with ``clock``."""

    STORAGE_SCHEME = None  # built directly, never from a URI

    def __init__(self, max_keys: int, clock: Callable[[], float] = loop_time) -> None:
        super().__init__()
        self.max_keys = max_keys
        self.clock = clock
        self.checked_at = 0.0
        # Per key, the times of the entries within its window, oldest first; keys least recently seen first.
        self._windows: OrderedDict[str, array[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Add ``amount`` entries to ``key``'s window if it then holds at most ``limit``."""
        now = self.checked_at = self.clock()
        self._forget_idle(now - expiry)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = array("d")
            while len(self._windows) > self.max_keys:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(key)
            _trim(window, now - expiry)
        if len(window) + amount > limit:
            return False
        window.extend([now] * amount)
        return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """The time of the oldest entry within ``key``'s window and how many there are (now and 0 if none)."""
        now = self.clock()
        window = self._windows.get(key)
        if window is not None:
            _trim(window, now - expiry)
        if not window:
            return now, 0
        return window[0], len(window)

    def entries(self, key: str) -> Entries:
        """``key``'s window as the last acquisition (of any key) left it, and when that was."""
        window = self._windows.get(key)
        if not window:
            return Entries(0, None, None, self.checked_at)
        return Entries(len(window), window[0], window[-1], self.checked_at)

    def _forget_idle(self, horizon: float) -> None:
        """Drop least-recently-seen keys whose every entry is at or before ``horizon``."""
        while self._windows:
            key, window = next(iter(self._windows.items()))
            if window and window[-1] > horizon:
                return
            del self._windows[key]

    async def clear(self, key: str) -> None:
        self._windows.pop(key, None)

    async def reset(self) -> int | None:
        count = len(self._windows)
        self._windows.clear()
        return count

    async def check(self) -> bool:
        return True

    # The counters of the fixed and sliding window strategies: this storage serves only the moving window.
    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        raise NotImplementedError

    async def get(self, key: str) -> int:
        raise NotImplementedError

    async def get_expiry(self, key: str) -> float:
        raise NotImplementedError


def _trim(window: array[float], horizon: float) -> None:
    """Drop the entries at or before ``horizon``: a window of 60 s ending now excludes its start."""
    del window[: bisect_right(window, horizon)]
