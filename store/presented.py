"""Presented forms of rows, kept between reads so a page is a join of forms already made.

Presenting a row (decoding each stored value into its JSON-ready form, then
serialising it) costs far more than finding it, so a page of twenty rows cost
about fifteen single reads. :class:`PresentedForms` remembers, for each row
read through a page, the form a :class:`Presenter` made of it, next to the very
row tuple it was made from. Rows are immutable and a write swaps in a new tuple,
so an entry is served only while the table still holds that same tuple (an
identity check): a changed, deleted or restored row can never be answered from
a stale entry, whatever path changed it. Tables also drop a row's entry when
they replace or remove the row, so entries never keep old rows alive. The
store knows nothing of the form itself (the server's presenter makes JSON
bytes); it only counts each form's size (``sys.getsizeof``) against a budget in
bytes, evicts the oldest entries past it, and adds nothing while the process
has less room under its memory limit than the cache may still grow. The cache
starts empty, so loading data never pays for it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Protocol

ENTRY_OVERHEAD = 120
"""Bytes an entry costs besides its form: its share of the dict's table (~50), the (row, form, size) tuple (64)."""


class Presenter(Protocol):
    """Makes the forms answers are built of (the server's makes JSON bytes)."""

    def form(self, data: dict[str, Any]) -> Any:
        """The form of one row's JSON-ready fields (``Table.present``); this is what is kept."""

    def item(self, form: Any, parents: Sequence[tuple[str, Any]]) -> Any:
        """One item of a page: a row's form with each embedded parent's form (``None``: no parent) under its name."""


class PresentedForms:
    """Forms by primary key, each kept with the row it was made from, within a budget of bytes."""

    __slots__ = ("_entries", "budget", "held", "presenter")

    def __init__(self, presenter: Presenter, budget: int) -> None:
        self.presenter = presenter
        self.budget = budget
        self.held = 0
        """Bytes the entries are reckoned to hold (forms plus :data:`ENTRY_OVERHEAD` each)."""
        self._entries: dict[Any, tuple[Any, Any, int]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Any, row: Any) -> Any | None:
        """The form kept for ``key`` if it was made from this very ``row``, else ``None``."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] is row:
            return entry[1]
        return None

    def put(self, key: Any, row: Any, form: Any, room: int | None = None) -> None:
        """Keep ``form`` as ``row``'s (``key``'s) if the budget, and ``room`` left under the memory limit, allow."""
        self.drop(key)
        size = sys.getsizeof(form) + ENTRY_OVERHEAD
        if size > self.budget or (room is not None and room < self.budget - self.held):
            return
        entries = self._entries
        while self.held + size > self.budget:
            oldest = next(iter(entries))
            self.held -= entries.pop(oldest)[2]
        entries[key] = (row, form, size)
        self.held += size

    def drop(self, key: Any) -> None:
        """Forget ``key``'s form (its row changed or went)."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.held -= entry[2]

    def clear(self) -> None:
        self._entries.clear()
        self.held = 0
