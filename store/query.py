"""Queries over one table: predicates, sort keys, paging, and the planner.

A :class:`Query` is plain data, built outside the actor (see
:mod:`store.querylang`). :func:`run` plans it against a :class:`Table`: an
equality (or ``in``) on an indexed column narrows the candidates to that
index's buckets instead of scanning; when the only filter is such an index
lookup and the order is the table's insertion order, it walks rows in order and
stops once the page is full, taking the total from the index. Sorting is
stable, nulls last in both directions, ties broken by insertion order.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from typing import Any, Literal

import orjson

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
    if indexed is None and not rest and insertion_order:
        page = list(islice(table.rows.values(), offset, end))
        examined = min(len(table), end)
        table.rows_examined += examined
        return Result(page, len(table), examined)
    if indexed is not None and not rest and insertion_order and _walk_is_cheaper(len(table), len(indexed), end):
        return _walk(table, indexed, offset, limit)

    if indexed is None:
        candidates: Iterable[Row] = table.rows.values()
        examined = len(table)
        in_seq_order = True
    else:
        candidates = [table.rows[key] for key in indexed]
        examined = len(indexed)
        in_seq_order = False
    matches = _filter(table, candidates, rest)
    if not in_seq_order:
        matches.sort(key=_seq)
    table.rows_examined += examined
    page = _order(table, matches, sort, end)[offset:end]
    return Result(page, len(matches), examined)


def select(table: Table, predicates: tuple[Predicate, ...]) -> list[Row]:
    """Every row matching ``predicates``, in insertion order, using an index where one answers."""
    indexed, rest = _choose_index(table, predicates)
    if indexed is None:
        return _filter(table, table.rows.values(), rest)
    return _filter(table, table.rows_in_order(indexed), rest)


def matches(table: Table, row: Row, predicates: Iterable[Predicate]) -> bool:
    return all(_test(table, row, predicate) for predicate in predicates)


def _choose_index(table: Table, predicates: tuple[Predicate, ...]) -> tuple[set[Any] | None, tuple[Predicate, ...]]:
    """The smallest set of keys an index gives for one predicate, and the predicates left."""
    best: set[Any] | None = None
    best_predicate: Predicate | None = None
    for predicate in predicates:
        if len(predicate.path) != 1 or predicate.op not in ("eq", "in"):
            continue
        keys = _index_keys(table, predicate)
        if keys is not None and (best is None or len(keys) < len(best)):
            best, best_predicate = keys, predicate
    rest = tuple(p for p in predicates if p is not best_predicate)
    return best, rest


def _index_keys(table: Table, predicate: Predicate) -> set[Any] | None:
    column = predicate.path[0]
    if predicate.op == "eq":
        return None if predicate.value is None else table.lookup(column, predicate.value)
    union: set[Any] = set()
    for value in predicate.value:
        found = None if value is None else table.lookup(column, value)
        if found is None:
            return None
        union |= found
    return union


def _walk_is_cheaper(rows: int, matching: int, end: int) -> bool:
    """Walking the table until ``end`` matches beats materialising and sorting the bucket."""
    if matching == 0:
        return False
    expected_walk = end * rows / matching
    return expected_walk < matching * 4


def _walk(table: Table, keys: set[Any], offset: int, limit: int) -> Result:
    page: list[Row] = []
    seen = examined = 0
    end = offset + limit
    pk = table.pk_position
    for row in table.rows.values():
        if seen >= end:
            break
        examined += 1
        if row[pk] in keys:
            if seen >= offset:
                page.append(row)
            seen += 1
    table.rows_examined += examined
    return Result(page, len(keys), examined)


def _filter(table: Table, rows: Iterable[Row], predicates: tuple[Predicate, ...]) -> list[Row]:
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


def _seq(row: Row) -> int:
    return row[0]  # type: ignore[no-any-return]
