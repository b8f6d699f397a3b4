"""Ordered indexes: one column of one table kept in sort order, so a sorted page is a walk, not a sort.

An :class:`OrderedIndex` is built lazily, the first time a query sorts a table
by that column alone with no filter (:func:`ordered_index`), so it costs no
memory or load time until someone asks for that order. It holds entries
``(key, seq, pk)`` — ``key`` the column's value (:func:`~store.table.fold`-ed
for a case-insensitive column), ``seq`` the row's insertion number — in two
parts: non-null values and nulls (which sort last in both directions). Each
part is a sorted ``run`` plus an unsorted ``delta`` of entries added since.

The table tells its built indexes about every add, replace and remove. An
addition (or a changed value) appends an entry to a delta; a removal (or the
old value of a change) only counts a stale entry, which stays in place. An
entry is valid while its row exists with the same ``seq``, is visible, and
still has that key; a walk skips the others, and a row that left a key and
came back to it is listed once. When the deltas or the stale entries grow past
a fraction of the run, the index drops its entries and the next walk rebuilds
them from the rows, so writes never pay for a rebuild and walks stay short.

A walk yields rows in exactly the order of a stable sort of the table by
``(value, seq)``: ascending, or descending with equal values still in ``seq``
order; then the rows whose value is null, in ``seq`` order. A filtered walk
(:meth:`OrderedIndex.filtered_page`) keeps only the rows a test accepts, so a
sort combined with an equality filter is a walk too, given up (``None``) past a
budget of entries so an unlucky order never costs more than the sort it avoids.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from itertools import chain, groupby
from operator import itemgetter
from typing import Any

from store.collector import collection_paused
from store.table import Row, Table, fold

Entry = tuple[Any, int, Any]

# The deltas may hold this many entries, plus an eighth of the run, before the index is rebuilt.
_DELTA_ALLOWANCE = 256
_DELTA_FRACTION = 8
# Stale entries may be a quarter of the run (plus this many) before the index is rebuilt.
_STALE_ALLOWANCE = 64
_STALE_FRACTION = 4

_first = itemgetter(0)


class _Part:
    """Entries of one kind (values or nulls): a sorted run and the unsorted delta since."""

    __slots__ = ("delta", "delta_sorted", "run")

    def __init__(self, run: list[Entry]) -> None:
        self.run = run
        self.delta: list[Entry] = []
        self.delta_sorted = True

    def _sorted_delta(self) -> list[Entry]:
        if not self.delta_sorted:
            self.delta.sort()
            self.delta_sorted = True
        return self.delta

    def ascending(self) -> Iterator[Entry]:
        delta = self._sorted_delta()
        return heapq.merge(self.run, delta) if delta else iter(self.run)

    def descending(self) -> Iterator[Entry]:
        """Keys from the largest down, each key's entries in ``seq`` order (as a stable sort leaves them)."""
        delta = self._sorted_delta()
        merged = heapq.merge(reversed(self.run), reversed(delta), reverse=True) if delta else reversed(self.run)
        for _, group in groupby(merged, key=_first):
            yield from reversed(list(group))


class OrderedIndex:
    """The rows of ``table`` ordered by ``column``, kept up to date cheaply (see the module docstring)."""

    def __init__(self, table: Table, column: str) -> None:
        self.table = table
        self.column = column
        self.position = table.position[column]
        self.folded = column in table.folded
        self.values = _Part([])
        self.nulls = _Part([])
        self.pending = 0
        self.stale = 0
        self.built = False
        self.builds = 0

    def __len__(self) -> int:
        """Entries held, valid or not."""
        values, nulls = self.values, self.nulls
        return len(values.run) + len(values.delta) + len(nulls.run) + len(nulls.delta)

    def build(self) -> None:
        """Sort every row of the table (staged ones too: they become visible on commit) into fresh runs.

        The cyclic collector is paused meanwhile: entries hold no cycles, and the collections that making
        one per row would set off walk every row of the database (they tripled the time at 50,000 rows).
        """
        with collection_paused():
            self._build()
        self.pending = self.stale = 0
        self.built = True
        self.builds += 1

    def _build(self) -> None:
        position, pk_position, folded = self.position, self.table.pk_position, self.folded
        values: list[Entry] = []
        nulls: list[Entry] = []
        for row in self.table.rows.values():
            value = row[position]
            if value is None:
                nulls.append((None, row[0], row[pk_position]))
            else:
                values.append((fold(value) if folded else value, row[0], row[pk_position]))
        values.sort()
        nulls.sort()
        self.values = _Part(values)
        self.nulls = _Part(nulls)

    # -- kept in step by the table -------------------------------------------

    def added(self, row: Row) -> None:
        if self.built:
            self._append(row)

    def removed(self, row: Row) -> None:
        if self.built:
            self.stale += 1
            self._check()

    def replaced(self, old: Row, new: Row) -> None:
        if self.built and self._key(old[self.position]) != self._key(new[self.position]):
            self.stale += 1
            self._append(new)

    def _key(self, value: Any) -> Any:
        return fold(value) if self.folded and value is not None else value

    def _append(self, row: Row) -> None:
        value = row[self.position]
        part = self.nulls if value is None else self.values
        part.delta.append((self._key(value), row[0], row[self.table.pk_position]))
        part.delta_sorted = False
        self.pending += 1
        self._check()

    def _check(self) -> None:
        """Drop the entries once the deltas or the stale ones outgrow the run; the next walk rebuilds."""
        run = len(self.values.run) + len(self.nulls.run)
        if (
            self.pending > _DELTA_ALLOWANCE + run // _DELTA_FRACTION
            or self.stale > _STALE_ALLOWANCE + run // _STALE_FRACTION
        ):
            self.values = _Part([])
            self.nulls = _Part([])
            self.pending = self.stale = 0
            self.built = False

    # -- reading -------------------------------------------------------------

    def page(self, descending: bool, offset: int, end: int) -> tuple[list[Row], int]:
        """Rows ``offset:end`` of the table in this order, and how many entries were looked at."""
        page, examined, _ = self._walk(descending, offset, end, None, None)
        return page, examined

    def filtered_page(
        self, descending: bool, offset: int, end: int, accept: Callable[[Row], bool], budget: int
    ) -> tuple[list[Row], int] | None:
        """Rows ``offset:end`` of those ``accept`` takes, in this order, and the entries looked at.

        ``None`` once more than ``budget`` entries were looked at without filling the page.
        """
        page, examined, complete = self._walk(descending, offset, end, accept, budget)
        return (page, examined) if complete else None

    def _walk(
        self, descending: bool, offset: int, end: int, accept: Callable[[Row], bool] | None, budget: int | None
    ) -> tuple[list[Row], int, bool]:
        if not self.built:
            self.build()
        table = self.table
        rows, staged, position, folded = table.rows, table.staged, self.position, self.folded
        entries = chain(
            self.values.descending() if descending else self.values.ascending(),
            self.nulls.ascending(),
        )
        page: list[Row] = []
        found = examined = 0
        last: Entry | None = None
        for entry in entries:
            if found >= end:
                break
            if examined == budget:
                return page, examined, False
            examined += 1
            if entry == last:  # the row left this key and came back: its first entry stands
                continue
            key, seq, pk = entry
            row = rows.get(pk)
            if row is None or row[0] != seq or pk in staged:
                continue
            value = row[position]
            if (fold(value) if folded and value is not None else value) != key:
                continue
            last = entry
            if accept is not None and not accept(row):
                continue
            if found >= offset:
                page.append(row)
            found += 1
        return page, examined, True


def ordered_index(table: Table, column: str) -> OrderedIndex:
    """``table``'s ordered index on ``column``, created (empty, built at its first walk) if need be."""
    index = table.ordered.get(column)
    if index is None:
        index = table.ordered[column] = OrderedIndex(table, column)
    return index
