"""Ordered indexes: one column of one table kept in sort order, so a sorted page is a walk, not a sort.

An :class:`OrderedIndex` is built lazily, the first time a query sorts a table
by that column (:func:`ordered_index`), so it costs no memory or load time
until someone asks for that order. It holds entries ``(key, seq, pk)`` — ``key``
the column's value (:func:`~store.table.fold`-ed for a case-insensitive column),
``seq`` the row's insertion number — in two parts: non-null values and nulls
(which sort last in both directions). Each part is a sorted :class:`Run` plus an
unsorted ``delta`` of entries added since. A run keeps its entries as three
parallel arrays (keys and primary keys as lists of the rows' own objects, the
insertion numbers as an ``array`` of 4-byte integers while they fit, as they
do below two billion inserts, else 8-byte ones), 20 bytes an entry, where a
tuple each cost about 72.

Building sorts every row, which takes about a second at a million rows, so it
is done in steps (:meth:`OrderedIndex.steps`): chunks of rows are read and
sorted, then the sorted chunks merged, a bounded number of entries per step.
The store's client runs the steps with a turn of the event loop between them
before a read that will walk the index, so no step holds the loop for long;
writes in between are recorded in the deltas (as after a build) and a walk
checks every entry against its row anyway. A read that finds the index
unbuilt (called on the database directly) runs the remaining steps at once.

The table tells its indexes about every add, replace and remove. An
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
import sys
from array import array
from collections.abc import Callable, Iterator
from itertools import chain, groupby, islice
from operator import itemgetter
from typing import Any

from store.allocator import release_free_memory
from store.collector import collection_paused
from store.table import Row, Table, fold

Entry = tuple[Any, int, Any]

# The deltas may hold this many entries, plus an eighth of the run, before the index is rebuilt.
_DELTA_ALLOWANCE = 256
_DELTA_FRACTION = 8
# Stale entries may be a quarter of the run (plus this many) before the index is rebuilt.
_STALE_ALLOWANCE = 64
_STALE_FRACTION = 4
STEP = 10_000
"""Rows read and sorted, or entries merged, per step of a build: ~10-20 ms on a slow core."""
TRIM_FROM = 50_000
"""A build of this many entries or more hands its freed chunks back to the system (:mod:`store.allocator`).

Smaller ones free a megabyte or less, and the trim costs the same ~2 ms whatever the index (it walks the
allocator's free lists), which a small group's index, rebuilt after a few hundred writes, would pay each time.
"""

_first = itemgetter(0)
_SMALL_SEQ = 2**31 - 1
"""Insertion numbers up to this fit an ``array("i")``: 4 bytes an entry instead of 8."""


def seq_array(seqs: list[int]) -> array[int]:
    """``seqs`` as an exactly-sized array, of 4-byte integers if they all fit."""
    return array("i" if max(seqs, default=0) <= _SMALL_SEQ else "q", seqs)


class Run:
    """Sorted entries as parallel arrays: keys, insertion numbers, primary keys."""

    __slots__ = ("keys", "pks", "seqs")

    def __init__(self, keys: list[Any], seqs: array[int], pks: list[Any]) -> None:
        self.keys = keys
        self.seqs = seqs
        self.pks = pks

    @classmethod
    def empty(cls) -> Run:
        return cls([], array("q"), [])

    @classmethod
    def of(cls, entries: list[Entry]) -> Run:
        """The entries (sorted), unzipped into exactly-sized arrays (a list's copy is exactly its length)."""
        keys = [entry[0] for entry in entries]
        pks = [entry[2] for entry in entries]
        return cls(keys.copy(), seq_array([entry[1] for entry in entries]), pks.copy())

    def __len__(self) -> int:
        return len(self.pks)

    def ascending(self) -> Iterator[Entry]:
        return zip(self.keys, self.seqs, self.pks, strict=True)

    def descending(self) -> Iterator[Entry]:
        return zip(reversed(self.keys), reversed(self.seqs), reversed(self.pks), strict=True)


class _Part:
    """Entries of one kind (values or nulls): a sorted run and the unsorted delta since."""

    __slots__ = ("delta", "delta_sorted", "run")

    def __init__(self, run: Run) -> None:
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
        return heapq.merge(self.run.ascending(), delta) if delta else self.run.ascending()

    def descending(self) -> Iterator[Entry]:
        """Keys from the largest down, each key's entries in ``seq`` order (as a stable sort leaves them)."""
        delta = self._sorted_delta()
        descending = self.run.descending()
        merged = heapq.merge(descending, reversed(delta), reverse=True) if delta else descending
        for _, group in groupby(merged, key=_first):
            yield from reversed(list(group))


class OrderedIndex:
    """The rows of ``table`` ordered by ``column``, kept up to date cheaply (see the module docstring)."""

    def __init__(self, table: Table, column: str, group: tuple[str, Any] | None = None) -> None:
        self.table = table
        self.column = column
        self.position = table.position[column]
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
        self.values = _Part(Run.empty())
        self.nulls = _Part(Run.empty())
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
        """Bytes the runs' arrays take (the keys and primary keys are the rows' own objects)."""
        return sum(
            sys.getsizeof(run.keys) + sys.getsizeof(run.seqs) + sys.getsizeof(run.pks)
            for run in (self.values.run, self.nulls.run)
        )

    def steps(self, step: int = STEP) -> Iterator[None]:
        """The build in progress, or a new one if the index is not built (nothing left to do if it is).

        Whoever needs the index runs the steps; two callers running the same build share its steps.
        """
        if self.built:
            return iter(())
        if self._building is None:
            # From now on writes go to these (empty) deltas, as if the index were built.
            self.values, self.nulls = _Part(Run.empty()), _Part(Run.empty())
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
        checks each entry against its row. The cyclic collector is paused during each step: entries hold
        no cycles, and the collections that making one per row would set off walk every row of the database.
        """
        rows, position, pk_position, folded = self.table.rows, self.position, self.table.pk_position, self.folded
        in_group = self._in_group
        keys = list(rows)
        chunks: list[Run] = []
        nulls: list[Entry] = []
        for start in range(0, len(keys), step):
            with collection_paused():
                entries: list[Entry] = []
                for pk in keys[start : start + step]:
                    row = rows.get(pk)
                    if row is None or not in_group(row):  # removed since, or not one of the group's
                        continue
                    value = row[position]
                    if value is None:
                        nulls.append((None, row[0], row[pk_position]))
                    else:
                        entries.append((fold(value) if folded else value, row[0], row[pk_position]))
                entries.sort()
                chunks.append(Run.of(entries))
                del entries
            yield
        del keys
        total = sum(map(len, chunks))
        merged_keys: list[Any] = [None] * total
        merged_pks: list[Any] = [None] * total
        merged_seqs = array("i" if all(chunk.seqs.typecode == "i" for chunk in chunks) else "q", [0]) * total
        merged = heapq.merge(*(chunk.ascending() for chunk in chunks))
        at = 0
        while at < total:
            with collection_paused():
                for key, seq, pk in islice(merged, step):
                    merged_keys[at] = key
                    merged_seqs[at] = seq
                    merged_pks[at] = pk
                    at += 1
            yield
        del chunks, merged
        nulls.sort()
        self.values.run = Run(merged_keys, merged_seqs, merged_pks)
        self.nulls.run = Run.of(nulls)
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
        if was and now and self._key(old[self.position]) == self._key(new[self.position]):
            return
        if was:
            self.stale += 1
        if now:
            self._append(new)
        elif was:
            self._check()

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
        """Drop the entries once the deltas or the stale ones outgrow the run; the next walk rebuilds.

        Not while a build runs: its run is not there yet, and it counts writes from its start.
        """
        run = len(self.values.run) + len(self.nulls.run)
        if self.built and (
            self.pending > _DELTA_ALLOWANCE + run // _DELTA_FRACTION
            or self.stale > _STALE_ALLOWANCE + run // _STALE_FRACTION
        ):
            self.values = _Part(Run.empty())
            self.nulls = _Part(Run.empty())
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
        rows, staged, position, folded, in_group = table.rows, table.staged, self.position, self.folded, self._in_group
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
            if (fold(value) if folded and value is not None else value) != key or not in_group(row):
                continue
            last = entry
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
    Each row is in one group of a column, so such indexes cost at most 20 bytes a row (24 past two billion
    inserts) per sorted column and filter column together; the planner makes them only for common keys
    (see :mod:`store.query`).
    """
    name: Any = column if group is None else (column, *group)
    index = table.ordered.get(name)
    if index is None:
        index = table.ordered[name] = OrderedIndex(table, column, group)
    return index
