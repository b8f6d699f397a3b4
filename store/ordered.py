"""Ordered indexes: one column of one table kept in sort order, so a sorted page is a walk, not a sort.

An :class:`OrderedIndex` is built lazily, the first time a query sorts a table
by that column (:func:`ordered_index`), so it costs no memory or load time
until someone asks for that order. Its entries are the rows themselves: a list
of references to the tables' own row tuples, 8 bytes an entry, sorted by
``(key, seq)`` — ``key`` the column's value (:func:`~store.table.fold`-ed for a
case-insensitive column), ``seq`` the row's insertion number, both read from
the row. Entries come in two parts: non-null values and nulls (which sort last
in both directions). Each part is a sorted run plus an unsorted ``delta`` of
rows added since.

Building sorts every row, which takes about a second at a million rows, so it
is done in steps (:meth:`OrderedIndex.steps`): chunks of rows are read and
sorted, then the sorted chunks merged, a bounded number of entries per step.
The store's client runs the steps with a turn of the event loop between them
before a read that will walk the index, so no step holds the loop for long;
writes in between are recorded in the deltas (as after a build) and a walk
checks every entry against its row anyway. A read that finds the index
unbuilt (called on the database directly) runs the remaining steps at once.

An entry is valid while it is the table's current row for its primary key
(``rows.get(pk) is row``: rows are immutable, a write replaces the tuple) and
no open transaction staged it; a walk skips the others, and lists a row once
even if it is in the index twice (a build meets it again in a delta). The
table tells its indexes about every add, replace and remove. An addition, or a
change of the column's value, appends the new row to a delta; a change that
keeps the value swaps the new row in for the old one where it stands (found by
bisection on ``(key, seq)`` in the run, or among the delta's newest
:data:`DELTA_SWAP_REACH` entries), so the index holds no unchanged row's old
tuple but, rarely, one deeper in the delta. A removal, the old version of a
change of value, or an old version out of the delta's reach counts a stale
entry, which stays in place and keeps that old tuple alive until the next
rebuild; a removed row's tuple is memory the table held anyway, and a replaced
one's is bounded by the deltas' allowance. When the deltas or the stale
entries grow past a fraction of the run, the index drops its entries and the
next walk rebuilds them from the rows, so writes never pay for a rebuild and
walks stay short.

A walk yields rows in exactly the order of a stable sort of the table by
``(value, seq)``: ascending, or descending with equal values still in ``seq``
order; then the rows whose value is null, in ``seq`` order. A filtered walk
(:meth:`OrderedIndex.filtered_page`) keeps only the rows a test accepts, so a
sort combined with an equality filter is a walk too, given up (``None``) past a
budget of entries so an unlucky order never costs more than the sort it avoids.
"""

from __future__ import annotations

import heapq
import sys
from bisect import bisect_left
from collections.abc import Callable, Iterator
from itertools import chain, groupby, islice
from operator import itemgetter
from typing import Any

from store.allocator import release_free_memory
from store.collector import collection_paused
from store.table import Row, Table, fold

# The deltas may hold this many entries, plus an eighth of the run, before the index is rebuilt.
_DELTA_ALLOWANCE = 256
_DELTA_FRACTION = 8
# Stale entries may be a quarter of the run (plus this many) before the index is rebuilt.
_STALE_ALLOWANCE = 64
_STALE_FRACTION = 4
DELTA_SWAP_REACH = 1024
"""Newest delta entries a write looks through for its row's old version (~20 µs at most; the whole delta may
hold a hundred thousand at a million rows, ~2 ms to scan)."""
STEP = 10_000
"""Rows read and sorted, or entries merged, per step of a build: ~10-20 ms on a slow core."""
TRIM_FROM = 50_000
"""A build of this many entries or more hands its freed chunks back to the system (:mod:`store.allocator`).

Smaller ones free a megabyte or less, and the trim costs the same ~2 ms whatever the index (it walks the
allocator's free lists), which a small group's index, rebuilt after a few hundred writes, would pay each time.
"""

_seq = itemgetter(0)
"""A row's insertion number: the order of the nulls' part."""


class _Part:
    """Rows of one kind (values or nulls): a sorted run and the unsorted delta since, both in ``order``."""

    __slots__ = ("delta", "delta_sorted", "order", "run")

    def __init__(self, order: Callable[[Row], Any], run: list[Row] | None = None) -> None:
        self.order = order
        self.run: list[Row] = [] if run is None else run
        self.delta: list[Row] = []
        self.delta_sorted = True

    def _sorted_delta(self) -> list[Row]:
        if not self.delta_sorted:
            self.delta.sort(key=self.order)
            self.delta_sorted = True
        return self.delta

    def ascending(self) -> Iterator[Row]:
        delta = self._sorted_delta()
        return heapq.merge(self.run, delta, key=self.order) if delta else iter(self.run)

    def descending(self, value: Callable[[Row], Any]) -> Iterator[Row]:
        """Values from the largest down, each value's rows in ``seq`` order (as a stable sort leaves them)."""
        delta = self._sorted_delta()
        descending = reversed(self.run)
        merged = heapq.merge(descending, reversed(delta), key=self.order, reverse=True) if delta else descending
        for _, group in groupby(merged, key=value):
            yield from reversed(list(group))

    def swap(self, old: Row, new: Row) -> bool:
        """Put ``new`` where ``old`` stands (they sort alike); False if ``old`` is not here."""
        run, order = self.run, self.order
        wanted = order(old)
        at = bisect_left(run, wanted, key=order)
        while at < len(run) and order(run[at]) == wanted:
            if run[at] is old:
                run[at] = new
                return True
            at += 1
        # The delta is unsorted: look only at its newest entries (a row written again soon after it was
        # added, the common case), at C speed; rows compare equal only to themselves (versions differ).
        # Past that reach the caller counts a stale entry instead, so a write never scans the whole delta.
        try:
            at = self.delta.index(old, max(0, len(self.delta) - DELTA_SWAP_REACH))
        except ValueError:
            return False
        if self.delta[at] is not old:  # pragma: no cover - only if two live tuples were ever equal
            return False
        self.delta[at] = new
        return True


class OrderedIndex:
    """The rows of ``table`` ordered by ``column``, kept up to date cheaply (see the module docstring)."""

    def __init__(self, table: Table, column: str, group: tuple[str, Any] | None = None) -> None:
        self.table = table
        self.column = column
        self.position = position = table.position[column]
        self.folded = column in table.folded
        self.group = group
        """``(indexed column, index key)``: only rows holding that key are in the index (:func:`ordered_index`)."""
        if group is None:
            self._group_position, self._group_folded, self._group_key = -1, False, None
        else:
            self._group_position, self._group_folded, self._group_key = (
                table.position[group[0]],
                group[0] in table.folded,
                group[1],
            )
        if self.folded:
            self._value: Callable[[Row], Any] = lambda row: fold(row[position])
            self._order: Callable[[Row], Any] = lambda row: (fold(row[position]), row[0])
        else:
            self._value, self._order = itemgetter(position), itemgetter(position, 0)
        self.values = _Part(self._order)
        self.nulls = _Part(_seq)
        self.pending = 0
        self.stale = 0
        self.built = False
        self.builds = 0
        self._building: Iterator[None] | None = None

    def __len__(self) -> int:
        """Entries held, valid or not."""
        values, nulls = self.values, self.nulls
        return len(values.run) + len(values.delta) + len(nulls.run) + len(nulls.delta)

    @property
    def size(self) -> int:
        """Bytes the runs take (the entries are references to the rows the table holds)."""
        return sys.getsizeof(self.values.run) + sys.getsizeof(self.nulls.run)

    def steps(self, step: int = STEP) -> Iterator[None]:
        """The build in progress, or a new one if the index is not built (nothing left to do if it is).

        Whoever needs the index runs the steps; two callers running the same build share its steps.
        """
        if self.built:
            return iter(())
        if self._building is None:
            # From now on writes go to these (empty) deltas, as if the index were built.
            self.values, self.nulls = _Part(self._order), _Part(_seq)
            self.pending = self.stale = 0
            self._building = self._build(step)
        return self._building

    def build(self) -> None:
        """Build (or finish building) at once."""
        for _ in self.steps():
            pass

    def _build(self, step: int) -> Iterator[None]:
        """Sort every row of the table (staged ones too: they become visible on commit) into fresh runs.

        Writes since :meth:`steps` began it are recorded in the deltas as if the index were built, so
        whatever changes between steps is either read from its row by a later step or in a delta; a walk
        checks each entry against its row. The cyclic collector is paused during each step: sorting makes a
        key tuple per row, and the collections those set off would walk every row of the database.
        """
        rows, position, order = self.table.rows, self.position, self._order
        in_group = self._in_group
        keys = list(rows)
        chunks: list[list[Row]] = []
        nulls: list[Row] = []
        for start in range(0, len(keys), step):
            with collection_paused():
                chunk: list[Row] = []
                for pk in keys[start : start + step]:
                    row = rows.get(pk)
                    if row is None or not in_group(row):  # removed since, or not one of the group's
                        continue
                    (nulls if row[position] is None else chunk).append(row)
                chunk.sort(key=order)
                chunks.append(chunk)
            yield
        del keys
        total = sum(map(len, chunks))
        merged_run: list[Row] = [None] * total  # type: ignore[list-item]  # every slot is filled below
        merged = heapq.merge(*chunks, key=order)
        at = 0
        while at < total:
            with collection_paused():
                taken = list(islice(merged, step))
                merged_run[at : at + len(taken)] = taken
                at += len(taken)
            yield
        del chunks, merged
        nulls.sort(key=_seq)
        self.values.run = merged_run
        self.nulls.run = nulls.copy()  # exactly sized
        del nulls
        if total >= TRIM_FROM:
            # The sorted chunks, as large as the index, were freed in the middle of the C heap, under the
            # merged run: resident until given back (without this, 37 MiB at 800,000 rows for a 18 MiB index).
            release_free_memory()
        self.built = True
        self.builds += 1
        self._building = None
        self._check()

    # -- kept in step by the table -------------------------------------------

    def _in_group(self, row: Row) -> bool:
        if self._group_position < 0:
            return True
        value = row[self._group_position]
        return bool((fold(value) if self._group_folded and value is not None else value) == self._group_key)

    @property
    def _kept(self) -> bool:
        """Built, or being built: writes go to the deltas."""
        return self.built or self._building is not None

    def added(self, row: Row) -> None:
        if self._kept and self._in_group(row):
            self._append(row)

    def removed(self, row: Row) -> None:
        if self._kept and self._in_group(row):
            self.stale += 1
            self._check()

    def replaced(self, old: Row, new: Row) -> None:
        if not self._kept:
            return
        was, now = self._in_group(old), self._in_group(new)
        if was and now and self.built:
            # The same place in the order: the new row takes the old one's entry, which then keeps no old tuple.
            # (Mid-build the old one may sit in a sorted chunk instead: it stays there, a stale entry.)
            part = self._same_part(old, new)
            if part is not None and part.swap(old, new):
                return
        if was:
            self.stale += 1
        if now:
            self._append(new)
        elif was:
            self._check()

    def _same_part(self, old: Row, new: Row) -> _Part | None:
        """The part both rows sort in, at the same place (a null stays a null, a value keeps its key); else None."""
        old_value, new_value = old[self.position], new[self.position]
        if old_value is None or new_value is None:
            return self.nulls if old_value is None and new_value is None else None
        return self.values if self._value(old) == self._value(new) else None

    def _append(self, row: Row) -> None:
        part = self.nulls if row[self.position] is None else self.values
        part.delta.append(row)
        part.delta_sorted = False
        self.pending += 1
        self._check()

    def _check(self) -> None:
        """Drop the entries once the deltas or the stale ones outgrow the run; the next walk rebuilds.

        Not while a build runs: its run is not there yet, and it counts writes from its start.
        """
        run = len(self.values.run) + len(self.nulls.run)
        if self.built and (
            self.pending > _DELTA_ALLOWANCE + run // _DELTA_FRACTION
            or self.stale > _STALE_ALLOWANCE + run // _STALE_FRACTION
        ):
            self.values = _Part(self._order)
            self.nulls = _Part(_seq)
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
        rows, staged, pk_position = table.rows, table.staged, table.pk_position
        entries = chain(
            self.values.descending(self._value) if descending else self.values.ascending(),
            self.nulls.ascending(),
        )
        page: list[Row] = []
        found = examined = 0
        last: Row | None = None
        for row in entries:
            if found >= end:
                break
            if examined == budget:
                return page, examined, False
            examined += 1
            if row is last:  # in the index twice (met by a build and in a delta): listed once
                continue
            pk = row[pk_position]
            if rows.get(pk) is not row or pk in staged:
                continue
            last = row
            if accept is not None and not accept(row):
                continue
            if found >= offset:
                page.append(row)
            found += 1
        return page, examined, True


def ordered_index(table: Table, column: str, group: tuple[str, Any] | None = None) -> OrderedIndex:
    """``table``'s ordered index on ``column``, created (empty, built at its first walk) if need be.

    With a ``group`` ``(indexed column, index key)``, the index orders only the rows holding that key (all
    ``status=paid`` orders by price, say): a sort under that equality filter is then a walk of about a page.
    Each row is in one group of a column, so such indexes cost at most 8 bytes a row per sorted column and
    filter column together; the planner makes them only for common keys
    (see :mod:`store.query`).
    """
    name: Any = column if group is None else (column, *group)
    index = table.ordered.get(name)
    if index is None:
        index = table.ordered[name] = OrderedIndex(table, column, group)
    return index
