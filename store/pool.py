"""Sharing equal values between rows, so a million rows do not hold a million copies.

Many columns repeat: a product name, a city in a shipping address, the bcrypt
hash every seeded user shares, the few shapes of an order's ``metadata``, a
catalogue's prices (money is an integer of cents, 32 bytes above 2.56). A
:class:`Pool` hands back one canonical object for every equal value it is
given, so rows hold references instead of copies. It never pins memory: when
it has grown to twice the size it had after the last sweep, it forgets every
value that no row references any more (CPython's reference count says so), so
a pool's size follows the distinct values alive in the table, and deleting rows
gives their memory back. After a bulk load, :meth:`Pool.trim` also forgets the
values only one row holds: at a million records most distinct shipping
addresses are held once (122,701 of 240,471), and each costs the pool a dict
entry (about 6 MiB in all) while sharing nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable
from typing import TypeVar

T = TypeVar("T", bound=Hashable)

_SWEEP_AFTER = 4096
# While sweeping, a value only the pool holds is referenced by the pool's key and
# value slots (one object, two references), the sweep's loop variable and
# ``getrefcount``'s own argument.
_ONLY_THE_POOL = 4


class Pool:
    """One canonical object per distinct value, forgetting values nothing else holds."""

    __slots__ = ("_sweep_at", "_values")

    def __init__(self) -> None:
        self._values: dict[Hashable, Hashable] = {}
        self._sweep_at = _SWEEP_AFTER

    def __len__(self) -> int:
        return len(self._values)

    def share(self, value: T) -> T:
        """The pool's object equal to ``value`` (``value`` itself the first time it is seen)."""
        found = self._values.setdefault(value, value)
        if len(self._values) > self._sweep_at:
            self.sweep()
        return found  # type: ignore[return-value]

    def sweep(self) -> int:
        """Forget values no one else references; return how many went."""
        return self._keep_held_by_more_than(0)

    def trim(self) -> int:
        """Forget values at most one other holder (a row) references; return how many went.

        For after a bulk load, when every value the load will share is shared: a
        later equal value starts a new shared object (the one row keeps its own).
        Not while loading: a value seen once so far may be seen again.
        """
        return self._keep_held_by_more_than(1)

    def _keep_held_by_more_than(self, holders: int) -> int:
        before = len(self._values)
        refcount, most = sys.getrefcount, _ONLY_THE_POOL + holders
        self._values = {value: value for value in self._values if refcount(value) > most and not _always_shared(value)}
        self._sweep_at = max(_SWEEP_AFTER, 2 * len(self._values))
        return before - len(self._values)


def _always_shared(value: Hashable) -> bool:
    """CPython's small integers: one object each whatever the pool does, and always referenced elsewhere."""
    return type(value) is int and -5 <= value <= 256
