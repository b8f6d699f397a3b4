"""Queries over one table: predicates, sort keys, paging, and the planner.

A :class:`Query` is plain data, built outside the actor (see
:mod:`store.querylang`). :func:`run` plans it against a :class:`Table`: an
equality (or ``in``) on an indexed column narrows the candidates to that
index's buckets instead of scanning. Buckets are kept in insertion order, so
when the only filter is such an index lookup and the order is the table's
insertion order, the page is a slice of the bucket (or of a few buckets merged)
and the total is the buckets' size: no row outside the page is looked at. With
no filter at all and one sort key, the page is a walk of that column's ordered
index (:mod:`store.ordered`). With one sort key and an index lookup as the only
filter, the page is a walk of the ordered index keeping the rows the lookup
matched, when the matches are common enough that a page is found early (a few
rare matches are just sorted); the walk gives up past as many entries as there
are matches and the rows are sorted after all. Sorting is stable, nulls last in
both directions, ties broken by insertion order.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import chain, islice
from typing import Any, Literal

import orjson

from store.ordered import ordered_index
from store.schema import Kind
from store.table import Row, Table, fold

Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "contains"]
OPERATORS: tuple[Op, ...] = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains")


@dataclass(frozen=True, slots=True)
class Predicate:
    """``path`` (a column, then keys into its JSON) compared by ``op`` with ``value``."""

    path: tuple[str, ...]
    op: Op
    value: Any


@dataclass(frozen=True, slots=True)
class SortKey:
    column: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    predicates: tuple[Predicate, ...] = ()
    sort: tuple[SortKey, ...] = ()
    page: int = 1
    per_page: int = 20


@dataclass(slots=True)
class Result:
    """One page of rows plus the number of rows that matched in all."""

    rows: list[Row]
    total: int
    examined: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# A page this small relative to the candidates is taken with a heap, not a full sort.
_HEAP_FRACTION = 8
# A filtered sort walks the ordered index when the walk expected for a page (the page over the share of
# rows that match) is at most this fraction of the matches the sort would look at instead.
_FILTERED_WALK_FRACTION = 4


def run(table: Table, query: Query) -> Result:
    """Execute ``query`` against ``table``."""
    sort = query.sort or (SortKey(table.spec.default_sort),)
    offset = (query.page - 1) * query.per_page
    limit = query.per_page
    indexed, rest = _choose_index(table, query.predicates)
    insertion_order = (
        len(sort) == 1
        and not sort[0].descending
        and sort[0].column == table.spec.default_sort
        and table.in_default_order
    )

    end = offset + limit
    # While an import is staged, its rows sit in the table unseen: the shortcuts below would count them.
    shortcuts = not table.staged
    if shortcuts and indexed is None and not rest and insertion_order:
        page = list(islice(table.rows.values(), offset, end))
        examined = min(len(table), end)
        table.rows_examined += examined
        return Result(page, len(table), examined)
    if shortcuts and indexed is not None and not rest and insertion_order:
        return _walk(table, indexed, offset, end)
    if shortcuts and indexed is None and not rest and len(sort) == 1 and _orderable(table, sort[0].column):
        # The whole table by one column: walk that column's ordered index (built now if this is its first use).
        page, examined = ordered_index(table, sort[0].column).page(sort[0].descending, offset, end)
        table.rows_examined += examined
        return Result(page, len(table), examined)
    if shortcuts and indexed is None and not rest:
        groups = _two_key_plan(table, sort, offset, end)
        if groups is not None:
            return _two_key_page(table, sort, groups)
    walked = 0
    if (
        shortcuts
        and indexed is not None
        and not rest
        and len(sort) == 1
        and _orderable(table, sort[0].column)
        and end * len(table) * _FILTERED_WALK_FRACTION <= indexed.total * indexed.total
    ):
        if len(indexed.keys) == 1:  # one key: walk that key's own order (its group's ordered index)
            group = (indexed.column, next(iter(indexed.keys)))
            page, examined = ordered_index(table, sort[0].column, group).page(sort[0].descending, offset, end)
            table.rows_examined += examined
            return Result(page, indexed.total, examined)
        # Common matches in one column's order: walk that order keeping the matches, until the page is full.
        position, wanted, key = table.position[indexed.column], indexed.keys, _index_key(table, indexed.column)
        walk = ordered_index(table, sort[0].column).filtered_page(
            sort[0].descending, offset, end, lambda row: key(row[position]) in wanted, indexed.total
        )
        if walk is not None:
            page, examined = walk
            table.rows_examined += examined
            return Result(page, indexed.total, examined)
        walked = indexed.total  # an unlucky order: the matches lie deep in it; sort them after all

    if indexed is None:
        candidates: Iterable[Row] = table.rows.values()
        examined = len(table)
    else:
        rows = table.rows
        found = [rows[key] for key in chain.from_iterable(indexed.buckets)]
        if len(indexed.buckets) > 1:
            found.sort(key=_seq)
        candidates = found
        examined = indexed.total
    matches = _filter(table, candidates, rest)
    examined += walked
    table.rows_examined += examined
    page = _order(table, matches, sort, end)[offset:end]
    return Result(page, len(matches), examined)


def walked_indexes(table: Table, query: Query) -> list[tuple[str, tuple[str, Any] | None]]:
    """The ordered indexes :func:`run` would walk for ``query`` (built or not): each one's column and group."""
    sort = query.sort or (SortKey(table.spec.default_sort),)
    if table.staged:
        return []
    insertion_order = not sort[0].descending and sort[0].column == table.spec.default_sort and table.in_default_order
    if len(sort) == 1 and insertion_order:  # pages in insertion order walk no ordered index, whatever the filters
        return []
    indexed, rest = _choose_index(table, query.predicates)
    if rest:
        return []
    end = query.page * query.per_page
    if indexed is None and len(sort) == 2:
        groups = _two_key_plan(table, sort, end - query.per_page, end)
        return [] if groups is None else [(sort[1].column, (sort[0].column, g.key)) for g in groups if g.walk]
    if len(sort) != 1 or not _orderable(table, sort[0].column):
        return []
    if indexed is None:
        return [(sort[0].column, None)]
    if end * len(table) * _FILTERED_WALK_FRACTION > indexed.total * indexed.total:
        return []
    return [(sort[0].column, ((indexed.column, next(iter(indexed.keys))) if len(indexed.keys) == 1 else None))]


@dataclass(frozen=True, slots=True)
class _Group:
    """The part of a two-key page one key of the first column gives: its rows ``skip:skip+take`` by the second."""

    key: Any
    skip: int
    take: int
    walk: bool
    """Whether the group's own ordered index is walked (a common key) or its few rows are sorted."""


def _two_key_plan(table: Table, sort: tuple[SortKey, ...], offset: int, end: int) -> list[_Group] | None:
    """How a page of the whole table sorted by two columns comes out of the first one's index buckets.

    For a first column with an index (``status``) and a plain second one: the buckets in the first column's
    order (nulls last), each bucket's rows in the second column's order, whole buckets before the page
    skipped by their size. ``None`` when that does not apply.
    """
    if len(sort) != 2:
        return None
    first, second = sort
    buckets = table.indexes.get(first.column)
    if buckets is None or not _orderable(table, second.column) or len(buckets) * _HEAP_FRACTION > len(table):
        return None
    keys = sorted((key for key in buckets if key is not None), reverse=first.descending)
    if None in buckets:
        keys.append(None)
    groups: list[_Group] = []
    skip, remaining = offset, end - offset
    for key in keys:
        size = len(buckets[key])
        if skip >= size:
            skip -= size
            continue
        take = min(size - skip, remaining)
        walk = (skip + take) * len(table) * _FILTERED_WALK_FRACTION <= size * size
        groups.append(_Group(key, skip, take, walk))
        remaining -= take
        skip = 0
        if not remaining:
            break
    return groups


def _two_key_page(table: Table, sort: tuple[SortKey, ...], groups: list[_Group]) -> Result:
    first, second = sort
    page: list[Row] = []
    examined = 0
    for group in groups:
        end = group.skip + group.take
        if group.walk:
            index = ordered_index(table, second.column, (first.column, group.key))
            rows, looked = index.page(second.descending, group.skip, end)
        else:
            bucket = table.indexes[first.column][group.key]
            rows = _order(table, [table.rows[key] for key in bucket], (second,), end)[group.skip : end]
            looked = len(bucket)
        page.extend(rows)
        examined += looked
    table.rows_examined += examined
    return Result(page, len(table), examined)


def select(table: Table, predicates: tuple[Predicate, ...]) -> list[Row]:
    """Every row matching ``predicates``, in insertion order, using an index where one answers."""
    indexed, rest = _choose_index(table, predicates)
    if indexed is None:
        return _filter(table, table.rows.values(), rest)
    return _filter(table, table.rows_in_order(chain.from_iterable(indexed.buckets)), rest)


def matches(table: Table, row: Row, predicates: Iterable[Predicate]) -> bool:
    return all(_test(table, row, predicate) for predicate in predicates)


@dataclass(frozen=True, slots=True)
class _IndexHit:
    """What an index answered for one predicate: buckets of keys, each in insertion order, disjoint."""

    buckets: tuple[Sequence[Any], ...]
    total: int
    column: str
    keys: frozenset[Any]
    """The index keys of the buckets: a row is in them exactly when its column's index key is one of these."""


def _choose_index(table: Table, predicates: tuple[Predicate, ...]) -> tuple[_IndexHit | None, tuple[Predicate, ...]]:
    """The smallest answer an index gives for one predicate, and the predicates left."""
    best: _IndexHit | None = None
    best_predicate: Predicate | None = None
    for predicate in predicates:
        if len(predicate.path) != 1 or predicate.op not in ("eq", "in"):
            continue
        hit = _index_keys(table, predicate)
        if hit is not None and (best is None or hit.total < best.total):
            best, best_predicate = hit, predicate
    rest = tuple(p for p in predicates if p is not best_predicate)
    return best, rest


def _index_keys(table: Table, predicate: Predicate) -> _IndexHit | None:
    column = predicate.path[0]
    values = (predicate.value,) if predicate.op == "eq" else predicate.value
    folded = column in table.folded
    buckets: dict[Any, Sequence[Any]] = {}
    for value in values:
        found = None if value is None else table.lookup(column, value)
        if found is None:
            return None
        if found:
            # ``in`` may name one value twice, or two that fold alike: each bucket counts once.
            buckets[fold(value) if folded else value] = found
    total = sum(len(bucket) for bucket in buckets.values())
    return _IndexHit(tuple(buckets.values()), total, column, frozenset(buckets))


def _index_key(table: Table, column: str) -> Callable[[Any], Any]:
    """How ``column``'s index keys a value (folded for a case-insensitive column)."""
    if column in table.folded:
        return lambda value: None if value is None else fold(value)
    return lambda value: value


def _walk(table: Table, indexed: _IndexHit, offset: int, end: int) -> Result:
    """One page of index hits in insertion order: a slice of a bucket, or of buckets merged by ``seq``."""
    rows = table.rows
    if len(indexed.buckets) == 1:
        keys: Iterable[Any] = indexed.buckets[0][offset:end]
    else:
        merged = heapq.merge(*indexed.buckets, key=lambda key: rows[key][0])
        keys = islice(merged, offset, end)
    page = [rows[key] for key in keys]
    examined = len(page)
    table.rows_examined += examined
    return Result(page, indexed.total, examined)


def _filter(table: Table, rows: Iterable[Row], predicates: tuple[Predicate, ...]) -> list[Row]:
    if table.staged:
        rows = [row for row in rows if table.is_visible(row)]
    if not predicates:
        return list(rows)
    tests = [_compile(table, predicate) for predicate in predicates]
    return [row for row in rows if all(test(row) for test in tests)]


def _test(table: Table, row: Row, predicate: Predicate) -> bool:
    return _compile(table, predicate)(row)


def _compile(table: Table, predicate: Predicate) -> Callable[[Row], bool]:
    position = table.position[predicate.path[0]]
    nested = predicate.path[1:]
    folded = predicate.path[0] in table.folded
    compare = _comparison(predicate.op, predicate.value, folded)

    if not nested:
        return lambda row: compare(row[position])

    def test(row: Row) -> bool:
        raw = row[position]
        value: Any = None if raw is None else orjson.loads(raw)
        for key in nested:
            value = value.get(key) if isinstance(value, dict) else None
        return compare(value)

    return test


def _comparison(op: str, target: Any, folded: bool) -> Callable[[Any], bool]:
    if op == "ne":
        if target is None:
            return lambda value: value is not None
        if folded:
            target = fold(target)
            return lambda value: value is None or fold(value) != target
        return lambda value: (
            value is None or value != target or (type(value) is not type(target) and not _numeric(value, target))
        )
    if op == "eq":
        if target is None:
            return lambda value: value is None
        if folded:
            target = fold(target)
            return lambda value: value is not None and fold(value) == target
        return lambda value: (
            value is not None and value == target and (type(value) is type(target) or _numeric(value, target))
        )
    if op == "in":
        # Each option matches exactly as equality would (types respected; lists and objects never match).
        options = [_comparison("eq", item, folded) for item in target if item is not None]
        return lambda value: any(option(value) for option in options)
    if op == "contains":
        needle = str(target).casefold()
        return lambda value: isinstance(value, str) and needle in value.casefold()
    return _ordering(op, target)


def _ordering(op: str, target: Any) -> Callable[[Any], bool]:
    def safe(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
        def run_check(value: Any) -> bool:
            if value is None or isinstance(value, bool) != isinstance(target, bool):
                return False
            try:
                return check(value)
            except TypeError:
                return False

        return run_check

    if op == "gt":
        return safe(lambda value: value > target)
    if op == "gte":
        return safe(lambda value: value >= target)
    if op == "lt":
        return safe(lambda value: value < target)
    return safe(lambda value: value <= target)


def _numeric(value: Any, target: Any) -> bool:
    numbers = (int, float, Decimal)
    return (
        isinstance(value, numbers)
        and isinstance(target, numbers)
        and not isinstance(value, bool)
        and not isinstance(target, bool)
    )


def _order(table: Table, rows: list[Row], sort: tuple[SortKey, ...], needed: int) -> list[Row]:
    """``rows`` (already in insertion order) ordered by ``sort``; only the first ``needed`` are exact."""
    if (
        len(sort) == 1
        and sort[0].column == table.spec.default_sort
        and not sort[0].descending
        and table.in_default_order
    ):
        return rows
    if len(sort) == 1 and needed * _HEAP_FRACTION < len(rows):
        key = _sort_key(table, sort[0])
        pick = heapq.nlargest if sort[0].descending else heapq.nsmallest
        return pick(needed, rows, key=key)
    ordered = list(rows)
    for sort_key in reversed(sort):
        ordered.sort(key=_sort_key(table, sort_key), reverse=sort_key.descending)
    return ordered


def _sort_key(table: Table, sort_key: SortKey) -> Callable[[Row], tuple[bool, Any]]:
    position = table.position[sort_key.column]
    folded = sort_key.column in table.folded
    # Nulls last either way: they get the smallest flag when descending, the largest when ascending.
    if sort_key.descending:
        if folded:
            return lambda row: (False, "") if row[position] is None else (True, fold(row[position]))
        return lambda row: (False, 0) if row[position] is None else (True, row[position])
    if folded:
        return lambda row: (True, "") if row[position] is None else (False, fold(row[position]))
    return lambda row: (True, 0) if row[position] is None else (False, row[position])


def _orderable(table: Table, column: str) -> bool:
    """Whether ``column`` may have an ordered index: a plain column (JSON sorts as bytes, nobody walks that)."""
    declared = table.spec.column(column)
    return declared is not None and declared.kind is not Kind.JSON


def _seq(row: Row) -> int:
    return row[0]  # type: ignore[no-any-return]
