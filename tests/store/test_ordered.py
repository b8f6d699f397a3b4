"""Ordered indexes: a sorted page walked from the index is exactly the page today's full sort gives.

The decisive test drives random tables through inserts, updates that move rows,
deletes, staged transactions and rebuilds, and after each step compares every
page of every single-column order, both directions, with :func:`store.query._order`
over the visible rows (the heap / stable-sort path the planner takes otherwise).
"""

from __future__ import annotations

import asyncio
import gc
import random
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from store import Auto, Column, Database, Kind, NotFound, Query, SortKey, StoreActor, StoreClient, TableSpec
from store import ordered as ordered_module
from store import query as q
from store.table import Row, Table

from .conftest import START, Clock, uid

THING = TableSpec(
    "thing",
    (
        Column("id", Kind.UUID),
        Column("tag", Kind.STR, nullable=True, case_insensitive=True),
        Column("name", Kind.STR, nullable=True),
        Column("rank", Kind.INT, nullable=True),
        Column("price", Kind.DECIMAL, scale=2, nullable=True),
        Column("due", Kind.DATETIME, nullable=True),
        Column("flag", Kind.BOOL, nullable=True),
        Column("kind", Kind.ENUM, choices=("a", "b", "c"), indexed=True),
        Column("data", Kind.JSON, nullable=True),
        Column("created_at", Kind.DATETIME, auto=Auto.ON_CREATE),
    ),
)
SORTABLE = ("tag", "name", "rank", "price", "due", "flag", "kind", "id", "created_at")


def new_db() -> Database:
    return Database((THING,), clock=Clock())


def maybe(rng: random.Random, value: Any) -> Any:
    return None if rng.random() < 0.2 else value


def values(rng: random.Random) -> dict[str, Any]:
    return {
        "tag": maybe(rng, rng.choice(["Ada", "ada", "ADA", "bob", "Bob", "Çé", "çÉ", "zed", "", "straße", "STRASSE"])),
        "name": maybe(rng, rng.choice(["x", "X", "y", "Y", "z"])),
        "rank": maybe(rng, rng.randint(-3, 3)),
        "price": maybe(rng, rng.choice(["0.00", "1.99", "2.00", "19.90", "100.00", "1.99"])),
        "due": maybe(rng, (START + timedelta(days=rng.randint(0, 4))).isoformat()),
        "flag": maybe(rng, rng.choice([True, False])),
        "kind": rng.choice(["a", "b", "c"]),
        "data": maybe(rng, {"n": rng.randint(0, 3)}),
    }


class Expected:
    """The pages today's paths give for one order: a stable full sort, which the heap path must agree with."""

    def __init__(self, table: Table, sort: SortKey) -> None:
        self.table = table
        self.sort = sort
        self.visible = [row for row in table.rows.values() if table.is_visible(row)]
        self.stable = sorted(self.visible, key=q._sort_key(table, sort), reverse=sort.descending)

    def page(self, page: int, per_page: int) -> list[Row]:
        offset = (page - 1) * per_page
        end = offset + per_page
        heap_or_sort = q._order(self.table, self.visible, (self.sort,), end)[offset:end]
        assert heap_or_sort == self.stable[offset:end]
        return heap_or_sort


def expected(table: Table, sort: SortKey, page: int, per_page: int) -> list[Row]:
    return Expected(table, sort).page(page, per_page)


def check_every_order(table: Table, rng: random.Random) -> None:
    visible = len(table)
    for column in SORTABLE:
        for descending in (False, True):
            sort = SortKey(column, descending)
            # Reads change no row, so what the pages should be is worked out once for all of them.
            order = Expected(table, sort)
            per_page = rng.choice([1, 3, 7, 20])
            pages = max(1, -(-visible // per_page)) + 1  # one page past the end too
            for page in range(1, pages + 1):
                result = q.run(table, Query(sort=(sort,), page=page, per_page=per_page))
                assert result.rows == order.page(page, per_page), (column, descending, page, per_page)
                assert result.total == visible


@pytest.mark.parametrize(("seed", "small_allowances"), [(1, False), (2, True), (3, True), (4, False)])
def test_walk_matches_the_full_sort_through_writes(
    seed: int, small_allowances: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if small_allowances:  # rebuild often, so walks meet fresh runs, long deltas and stale entries alike
        monkeypatch.setattr(ordered_module, "_DELTA_ALLOWANCE", 3)
        monkeypatch.setattr(ordered_module, "_STALE_ALLOWANCE", 2)
    rng = random.Random(seed)
    db = new_db()
    table = db.tables["thing"]
    numbers = iter(range(1, 1_000_000))
    live: list[UUID] = []
    for _ in range(40):
        key = uid(next(numbers))
        db.insert("thing", {"id": key, **values(rng)})
        live.append(key)
    check_every_order(table, rng)
    assert set(table.ordered) == set(SORTABLE)  # data (JSON) is never walked

    for _step in range(30):
        for _ in range(rng.randint(1, 12)):
            action = rng.random()
            if action < 0.35 or not live:
                key = uid(next(numbers))
                db.insert("thing", {"id": key, **values(rng)})
                live.append(key)
            elif action < 0.7:
                changes = {name: value for name, value in values(rng).items() if rng.random() < 0.5}
                db.update("thing", rng.choice(live), changes)
            elif action < 0.8:  # a value leaves and comes back: the row must still be listed once
                key = rng.choice(live)
                before = {name: db.get("thing", key).data[name] for name in ("tag", "rank", "price")}
                db.update("thing", key, {"tag": "moved", "rank": 99, "price": "999.99"})
                db.update("thing", key, before)
            elif action < 0.9:
                key = live.pop(rng.randrange(len(live)))
                db.delete("thing", key)
            else:  # deleted and inserted again under the same key: a new seq, the old entries stale
                key = live.pop(rng.randrange(len(live)))
                db.delete("thing", key)
                db.insert("thing", {"id": key, **values(rng)})
                live.append(key)
        if rng.random() < 0.25:
            transaction = db.begin()
            imported = [uid(next(numbers)) for _ in range(5)]
            db.stage(transaction, "thing", [{"id": key, **values(rng)} for key in imported])
            assert table.staged
            before = table.rows_examined
            check_every_order(table, rng)  # falls back to the full sort, which leaves staged rows out
            if rng.random() < 0.5:
                db.commit(transaction)
                live.extend(imported)
            else:
                db.abort(transaction, 100)
            assert table.rows_examined - before >= len(table)
        check_every_order(table, rng)
    if small_allowances:
        assert max(index.builds for index in table.ordered.values()) > 2


def test_nothing_is_built_until_a_query_sorts_the_whole_table_by_one_column() -> None:
    db = new_db()
    table = db.tables["thing"]
    rng = random.Random(7)
    for n in range(1, 50):
        db.insert("thing", {"id": uid(n), **values(rng)})
    db.query("thing", Query())
    db.query("thing", Query(sort=(SortKey("created_at"),)))  # insertion order: a slice
    db.query("thing", Query((q.Predicate(("kind",), "eq", "a"),), (SortKey("rank"),)))  # filtered: sorted
    db.query("thing", Query((q.Predicate(("rank",), "gt", 0),), (SortKey("rank"),)))
    db.query("thing", Query(sort=(SortKey("rank"), SortKey("tag"))))  # two keys: sorted
    db.query("thing", Query(sort=(SortKey("data"),)))  # JSON: sorted
    assert table.ordered == {}

    db.query("thing", Query(sort=(SortKey("rank", descending=True),)))
    assert set(table.ordered) == {"rank"}
    index = table.ordered["rank"]
    assert index.built
    assert index.builds == 1
    db.query("thing", Query(sort=(SortKey("rank"),), page=2, per_page=5))
    assert index.builds == 1


def test_a_first_page_looks_at_about_a_page_of_rows() -> None:
    db = new_db()
    table = db.tables["thing"]
    rng = random.Random(11)
    db.load([("thing", [{"id": uid(n), **values(rng)} for n in range(1, 3001)])])
    db.query("thing", Query(sort=(SortKey("price", descending=True),)))  # builds the index
    for n in range(1, 200, 7):  # a few writes: deltas and stale entries to step over
        db.update("thing", uid(n), {"price": "5.00"})
        db.delete("thing", uid(n + 1))
    for column in ("price", "tag"):
        for descending in (False, True):
            before = table.rows_examined
            result = db.query("thing", Query(sort=(SortKey(column, descending),), per_page=20))
            assert len(result.items) == 20
            assert table.rows_examined - before <= 60, (column, descending)


def test_ties_keep_insertion_order_and_nulls_come_last_both_ways() -> None:
    db = new_db()
    table = db.tables["thing"]
    for n, tag in enumerate(["b", None, "A", "B", None, "a", "c"], start=1):
        db.insert("thing", {"id": uid(n), "tag": tag, "kind": "a"})

    def tags(descending: bool) -> list[Any]:
        return [item["tag"] for item in db.query("thing", Query(sort=(SortKey("tag", descending),))).items]

    assert tags(False) == ["A", "a", "b", "B", "c", None, None]
    assert tags(True) == ["c", "b", "B", "A", "a", None, None]
    db.update("thing", uid(2), {"tag": "a"})  # a null becomes a value: leaves the nulls, joins the a's by seq
    db.update("thing", uid(1), {"tag": None})
    assert tags(False) == ["a", "A", "a", "B", "c", None, None]
    assert tags(True) == ["c", "B", "a", "A", "a", None, None]
    assert table.ordered["tag"].builds == 1


def test_too_many_writes_drop_the_entries_and_the_next_walk_rebuilds() -> None:
    db = new_db()
    table = db.tables["thing"]
    rng = random.Random(5)
    db.load([("thing", [{"id": uid(n), **values(rng)} for n in range(1, 101)])])
    db.query("thing", Query(sort=(SortKey("rank"),)))
    index = table.ordered["rank"]
    for n in range(1, 96):  # stale entries: past 64 + a quarter of the run
        db.delete("thing", uid(n))
    assert not index.built
    assert len(index) == 0
    for n in range(1000, 1300):  # writes while dropped cost nothing
        db.insert("thing", {"id": uid(n), **values(rng)})
    assert len(index) == 0
    result = q.run(table, Query(sort=(SortKey("rank"),), per_page=500))
    assert index.built
    assert index.builds == 2
    assert len(index) == len(table)
    assert result.rows == expected(table, SortKey("rank"), 1, 500)
    for n in range(2000, 2400):  # additions: past 256 + an eighth of the run
        db.insert("thing", {"id": uid(n), **values(rng)})
    assert not index.built


def entries(index: ordered_module.OrderedIndex) -> list[Row]:
    return [*index.values.run, *index.values.delta, *index.nulls.run, *index.nulls.delta]


def test_an_update_that_keeps_the_sorted_value_leaves_the_index_holding_only_current_rows() -> None:
    db = new_db()
    table = db.tables["thing"]
    rng = random.Random(12)
    db.load([("thing", [{"id": uid(n), **values(rng)} for n in range(1, 301)])])
    db.query("thing", Query(sort=(SortKey("tag"),)))
    db.query("thing", Query(sort=(SortKey("price"),)))
    db.insert("thing", {"id": uid(301), **values(rng)})  # one row in a delta too
    for n in range(1, 302):  # every row rewritten, neither sorted column changed: new tuples everywhere
        db.update("thing", uid(n), {"name": rng.choice(["x", "y"]), "rank": n})
    for column in ("tag", "price"):
        index = table.ordered[column]
        assert (index.stale, index.builds) == (0, 1), column
        held = entries(index)
        assert len(held) == len(table), column  # each row once: an old tuple would be kept alive by its entry
        assert all(table.rows[row[2]] is row for row in held), column
    db.update("thing", uid(5), {"tag": "other", "price": "0.01"})  # a changed value: the old entry goes stale
    assert table.ordered["tag"].stale == table.ordered["price"].stale == 1
    check_every_order(table, rng)


def test_an_update_of_a_row_deep_in_the_delta_counts_a_stale_entry_instead_of_scanning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ordered_module, "DELTA_SWAP_REACH", 4)
    db = new_db()
    table = db.tables["thing"]
    db.load([("thing", [{"id": uid(n), "kind": "a", "rank": n} for n in range(1, 101)])])
    db.query("thing", Query(sort=(SortKey("rank"),)))
    index = table.ordered["rank"]
    for n in range(101, 111):  # ten new rows in the delta, oldest first
        db.insert("thing", {"id": uid(n), "kind": "a", "rank": n})
    db.update("thing", uid(110), {"kind": "b"})  # among the newest four: swapped where it stands
    assert (index.stale, index.pending) == (0, 10)
    db.update("thing", uid(101), {"kind": "b"})  # past the reach: its old tuple is left as a stale entry
    assert (index.stale, index.pending) == (1, 11)
    assert sum(1 for row in entries(index) if table.rows.get(row[2]) is not row) == 1
    check_every_order(table, random.Random(3))


def test_entries_left_stale_by_changed_values_stay_within_the_delta_allowance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ordered_module, "_DELTA_ALLOWANCE", 20)
    db = new_db()
    table = db.tables["thing"]
    db.load([("thing", [{"id": uid(n), "kind": "a", "rank": n} for n in range(1, 801)])])
    db.query("thing", Query(sort=(SortKey("rank"),)))
    index = table.ordered["rank"]
    most = 0
    for write in range(1, 2001):  # each one moves a row: its old tuple stays until the index is dropped
        db.update("thing", uid(write % 800 + 1), {"rank": -write})
        current = sum(1 for row in entries(index) if table.rows.get(row[2]) is not row)
        most = max(most, current)
    assert 0 < most <= 20 + 800 // 8 + 1  # old tuples kept: at most the deltas' allowance
    assert index.builds == 1
    check_every_order(table, random.Random(1))


def test_a_build_leaves_the_collector_as_it_found_it() -> None:
    db = new_db()
    db.insert("thing", {"id": uid(1), "kind": "a", "rank": 1})
    collecting = gc.isenabled()
    gc.disable()
    try:
        db.query("thing", Query(sort=(SortKey("rank"),)))
        assert not gc.isenabled()
    finally:
        if collecting:
            gc.enable()
    db.query("thing", Query(sort=(SortKey("tag"),)))
    assert gc.isenabled() == collecting


# -- a sort combined with an index lookup ---------------------------------------

GADGET = TableSpec(
    "gadget",
    (
        Column("id", Kind.UUID),
        Column("tag", Kind.STR, nullable=True, case_insensitive=True, indexed=True),
        Column("kind", Kind.ENUM, choices=("a", "b", "c"), indexed=True),
        Column("rank", Kind.INT, nullable=True),
        Column("price", Kind.DECIMAL, scale=2, nullable=True),
        Column("created_at", Kind.DATETIME, auto=Auto.ON_CREATE),
    ),
)
LOOKUPS = (
    q.Predicate(("kind",), "eq", "a"),
    q.Predicate(("kind",), "eq", "c"),
    q.Predicate(("kind",), "in", ["a", "b", "a"]),
    q.Predicate(("tag",), "eq", "ADA"),
    q.Predicate(("tag",), "in", ["ada", "Bob", "nobody"]),
    q.Predicate(("id",), "eq", uid(3)),
)


def gadget(rng: random.Random) -> dict[str, Any]:
    return {
        "tag": maybe(rng, rng.choice(["Ada", "ada", "ADA", "bob", "Bob", "zed", "straße", "STRASSE"])),
        "kind": rng.choice(["a", "a", "a", "b", "c"]),
        "rank": maybe(rng, rng.randint(-3, 3)),
        "price": maybe(rng, rng.choice(["0.00", "1.99", "2.00", "19.90", "100.00"])),
    }


def check_every_filtered_order(table: Table, rng: random.Random) -> None:
    visible = [row for row in table.rows.values() if table.is_visible(row)]
    for predicate in LOOKUPS:
        matching = [row for row in visible if q.matches(table, row, (predicate,))]
        for column in ("rank", "price", "tag", "created_at"):
            for descending in (False, True):
                sort = SortKey(column, descending)
                ordered = sorted(matching, key=q._sort_key(table, sort), reverse=descending)
                per_page = rng.choice([1, 3, 7, 20])
                for page in range(1, max(1, -(-len(matching) // per_page)) + 2):
                    offset = (page - 1) * per_page
                    result = q.run(table, Query((predicate,), (sort,), page, per_page))
                    assert result.rows == ordered[offset : offset + per_page], (predicate, sort, page, per_page)
                    assert result.total == len(matching)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_a_filtered_walk_matches_the_full_sort_through_writes(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(q, "_FILTERED_WALK_FRACTION", 0)  # walk whenever it may, however few the matches
    monkeypatch.setattr(ordered_module, "_DELTA_ALLOWANCE", 5)
    monkeypatch.setattr(ordered_module, "_STALE_ALLOWANCE", 3)
    outcomes: list[bool] = []
    real = ordered_module.OrderedIndex.filtered_page

    def spy(self: ordered_module.OrderedIndex, *args: Any) -> Any:
        found = real(self, *args)
        outcomes.append(found is not None)
        return found

    monkeypatch.setattr(ordered_module.OrderedIndex, "filtered_page", spy)
    rng = random.Random(seed)
    db = Database((GADGET,), clock=Clock())
    table = db.tables["gadget"]
    numbers = iter(range(1, 1_000_000))
    live: list[UUID] = []
    for _ in range(60):
        key = uid(next(numbers))
        db.insert("gadget", {"id": key, **gadget(rng)})
        live.append(key)
    check_every_filtered_order(table, rng)
    for _step in range(12):
        for _ in range(rng.randint(1, 15)):
            action = rng.random()
            if action < 0.35 or not live:
                key = uid(next(numbers))
                db.insert("gadget", {"id": key, **gadget(rng)})
                live.append(key)
            elif action < 0.75:  # moves rows between buckets and along the order
                changes = {name: value for name, value in gadget(rng).items() if rng.random() < 0.5}
                db.update("gadget", rng.choice(live), changes)
            else:
                db.delete("gadget", live.pop(rng.randrange(len(live))))
        if rng.random() < 0.3:
            transaction = db.begin()
            db.stage(transaction, "gadget", [{"id": uid(next(numbers)), **gadget(rng)} for _ in range(4)])
            check_every_filtered_order(table, rng)  # staged rows: the plain sort, which leaves them out
            db.abort(transaction, 100)
        check_every_filtered_order(table, rng)
    assert True in outcomes  # pages walked ...
    assert False in outcomes  # ... and walks given up past their budget, then sorted


def test_a_common_match_sorted_is_a_short_walk_and_a_rare_one_is_sorted() -> None:
    db = Database((GADGET,), clock=Clock())
    table = db.tables["gadget"]
    rng = random.Random(12)
    rows = [{"id": uid(n), **gadget(rng)} for n in range(1, 3001)]
    rows[0]["tag"] = "unique-ish"
    db.load([("gadget", rows)])
    common = Query((q.Predicate(("kind",), "eq", "a"),), (SortKey("price", descending=True),))
    db.query("gadget", common)  # builds the price index
    before = table.rows_examined
    page = db.query("gadget", common)
    assert len(page.items) == 20
    assert page.total == sum(1 for row in rows if row["kind"] == "a")
    assert table.rows_examined - before == 20  # a walk of kind=a's own price order: the page, not ~1,800 matches
    rare = Query((q.Predicate(("tag",), "eq", "UNIQUE-ISH"),), (SortKey("rank"),))
    built = set(table.ordered)
    assert [item["id"] for item in db.query("gadget", rare).items] == [str(uid(1))]
    assert set(table.ordered) == built  # a single match is sorted, no rank index built for it


def test_a_common_key_gets_its_own_order_kept_through_rows_joining_and_leaving_it() -> None:
    db = Database((GADGET,), clock=Clock())
    table = db.tables["gadget"]
    rng = random.Random(13)
    db.load([("gadget", [{"id": uid(n), **gadget(rng)} for n in range(1, 2001)])])
    by_price = (SortKey("price", descending=True),)
    for kind in ("a", "b", "c"):
        db.query("gadget", Query((q.Predicate(("kind",), "eq", kind),), by_price))
    groups = [index for name, index in table.ordered.items() if isinstance(name, tuple)]
    assert sorted(index.group for index in groups) == [("kind", "a"), ("kind", "b"), ("kind", "c")]
    assert sum(len(index) for index in groups) == len(table)  # each row in one group's order
    assert sum(index.size for index in groups) <= 24 * len(table) + 3 * 6 * 80

    for n in range(1, 400, 3):  # rows move between groups, along the order, and back
        db.update("gadget", uid(n), {"kind": "c", "price": "50.00"})
        db.update("gadget", uid(n + 1), {"kind": rng.choice("ab")})
    db.update("gadget", uid(1), {"kind": "a"})
    db.update("gadget", uid(1), {"kind": "c"})
    for kind in ("a", "b", "c"):
        lookup = (q.Predicate(("kind",), "eq", kind),)
        ordered = sorted(q.select(table, lookup), key=q._sort_key(table, by_price[0]), reverse=True)
        for page in (1, 2, 7):
            assert q.run(table, Query(lookup, by_price, page)).rows == ordered[(page - 1) * 20 : page * 20], kind


def random_writes(
    db: Database,
    name: str,
    make: Callable[[random.Random], dict[str, Any]],
    live: list[UUID],
    count: int,
    rng: random.Random,
) -> None:
    """``count`` random inserts, updates (rows moving along every order), deletes, and deletes inserted again."""
    for _ in range(count):
        action = rng.random()
        if action < 0.35 or not live:
            key = uid(10_000_000 + rng.randrange(1 << 40))
            db.insert(name, {"id": key, **make(rng)})
            live.append(key)
        elif action < 0.75:
            db.update(name, rng.choice(live), make(rng))
        elif action < 0.9:
            db.delete(name, live.pop(rng.randrange(len(live))))
        else:  # gone and back under the same key: a new seq
            key = live.pop(rng.randrange(len(live)))
            db.delete(name, key)
            db.insert(name, {"id": key, **make(rng)})
            live.append(key)


def check_two_key_orders(table: Table, rng: random.Random) -> None:
    visible = [row for row in table.rows.values() if table.is_visible(row)]
    for first in ("kind", "tag"):
        for second in ("price", "rank", "created_at"):
            for descending in ((False, False), (True, False), (False, True), (True, True)):
                sort = (SortKey(first, descending[0]), SortKey(second, descending[1]))
                ordered = q._order(table, list(visible), sort, len(visible))
                per_page = rng.choice([1, 3, 7, 20])
                for page in range(1, max(1, -(-len(visible) // per_page)) + 2):
                    result = q.run(table, Query(sort=sort, page=page, per_page=per_page))
                    offset = (page - 1) * per_page
                    assert result.rows == ordered[offset : offset + per_page], (sort, page, per_page)
                    assert result.total == len(visible)


@pytest.mark.parametrize(("seed", "walk_always"), [(21, True), (22, False), (23, True)])
def test_two_key_sorts_match_the_full_sort_through_writes(
    seed: int, walk_always: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if walk_always:  # every group walked through its own index, however small
        monkeypatch.setattr(q, "_FILTERED_WALK_FRACTION", 0)
    monkeypatch.setattr(q, "_HEAP_FRACTION", 1)  # the tag's many keys still count as few
    rng = random.Random(seed)
    db = Database((GADGET,), clock=Clock())
    table = db.tables["gadget"]
    live = [uid(n) for n in range(1, 81)]
    db.load([("gadget", [{"id": key, **gadget(rng)} for key in live])])
    check_two_key_orders(table, rng)
    for _step in range(6):
        random_writes(db, "gadget", gadget, live, rng.randint(1, 15), rng)  # rows move between groups too
        check_two_key_orders(table, rng)
    if walk_always:
        assert any(isinstance(name, tuple) for name in table.ordered)  # groups' own orders were walked


def test_a_two_key_page_looks_at_a_page_of_a_common_key_or_at_one_key_s_rows_deeper() -> None:
    db = Database((GADGET,), clock=Clock())
    table = db.tables["gadget"]
    rng = random.Random(24)
    db.load([("gadget", [{"id": uid(n), **gadget(rng)} for n in range(1, 4001)])])
    by_kind_then_price = (SortKey("kind", descending=True), SortKey("price"))
    sizes = {kind: len(bucket) for kind, bucket in table.indexes["kind"].items()}
    for page, most in ((1, 20), (60, sizes["b"])):  # page 60 lies in kind b: its rows sorted, not all 4,000
        query = Query(sort=by_kind_then_price, page=page)
        db.query("gadget", query)  # builds what the page walks
        before = table.rows_examined
        found = db.query("gadget", query)
        assert len(found.items) == 20
        assert found.total == len(table)
        assert table.rows_examined - before <= most, page


# -- building in steps, and what an index costs ---------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_build_in_steps_with_writes_between_them_matches_the_full_sort(seed: int) -> None:
    rng = random.Random(seed)
    db = new_db()
    table = db.tables["thing"]
    live = [uid(n) for n in range(1, 301)]
    db.load([("thing", [{"id": key, **values(rng)} for key in live])])
    for column in ("tag", "price", "rank"):
        index = ordered_module.ordered_index(table, column)
        steps = index.steps(step=rng.choice([1, 7, 50]))
        for _ in steps:
            random_writes(db, "thing", values, live, rng.randint(0, 3), rng)
        assert index.built or index.builds == 1  # (many writes may have dropped it at once)
    check_every_order(table, rng)


def test_a_read_during_a_build_finishes_that_build_rather_than_starting_another() -> None:
    db = new_db()
    table = db.tables["thing"]
    rng = random.Random(4)
    db.load([("thing", [{"id": uid(n), **values(rng)} for n in range(1, 101)])])
    index = ordered_module.ordered_index(table, "rank")
    steps = index.steps(step=10)
    next(steps)
    next(steps)
    assert not index.built
    assert index.steps() is steps  # a second caller shares the build in progress

    result = q.run(table, Query(sort=(SortKey("rank"),), per_page=200))

    assert index.built
    assert index.builds == 1
    assert next(steps, None) is None
    assert list(index.steps()) == []
    assert result.rows == expected(table, SortKey("rank"), 1, 200)


def test_an_index_takes_at_most_8_bytes_a_row() -> None:
    db = new_db()
    table = db.tables["thing"]
    rng = random.Random(6)
    db.load([("thing", [{"id": uid(n), **values(rng)} for n in range(1, 5001)])])
    for column in ("rank", "price", "tag"):
        db.query("thing", Query(sort=(SortKey(column),)))
        index = table.ordered[column]
        assert len(index) == len(table)
        assert index.size <= 8 * len(table) + 2 * 64, column  # and two lists' headers (values and nulls)


def test_past_two_billion_inserts_an_index_still_walks_in_order_at_8_bytes_a_row() -> None:
    db = new_db()
    table = db.tables["thing"]
    rng = random.Random(7)
    db.load([("thing", [{"id": uid(n), **values(rng)} for n in range(1, 201)])])
    table.set_order_state((2**31 - 100, *table.order_state()[1:]))  # the next 100 rows fit 4 bytes, then not
    db.load([("thing", [{"id": uid(n), **values(rng)} for n in range(201, 601)])])
    assert max(row[0] for row in table.rows.values()) > 2**31
    check_every_order(table, rng)
    for column in ("rank", "price", "tag"):
        db.query("thing", Query(sort=(SortKey(column),)))
        index = table.ordered[column]
        assert len(index) == len(table)
        assert index.size <= 8 * len(table) + 2 * 64, column
    table.ordered.clear()
    index = ordered_module.ordered_index(table, "rank")
    for _ in index.steps(50):  # chunks of 50 rows, merged
        pass
    result = q.run(table, Query(sort=(SortKey("rank"),), per_page=len(table)))
    assert result.rows == expected(table, SortKey("rank"), 1, len(table))


BUILD_AFTER_A_LARGE_FREE = """
from store import Query, SortKey
from tests.store.test_ordered import new_db, uid

def resident():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS"))

db = new_db()
db.load([("thing", [{"id": uid(n), "kind": "a", "rank": n * 7919 % 100_003} for n in range(1, 200_001)])])
bytearray(32 << 20)  # freed at once, as a seed frees its buffers: glibc then keeps blocks this large in its heap
before = resident()
db.query("thing", Query(sort=(SortKey("rank"),)))
print(resident() - before, db.tables["thing"].ordered["rank"].size)
"""


def test_building_an_index_keeps_about_its_own_size_resident_not_its_sorted_chunks_too() -> None:
    # In a fresh interpreter (the heap's history decides where freed memory lands); Linux: /proc.
    finished = subprocess.run(
        [sys.executable, "-c", BUILD_AFTER_A_LARGE_FREE],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    grown, size = map(int, finished.stdout.split())
    assert grown <= 1.15 * size  # the sorted chunks, freed under the merged run, left resident: 1.3x and more


def test_only_a_large_build_pays_for_handing_memory_back(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[int] = []
    monkeypatch.setattr(ordered_module, "release_free_memory", lambda: trims.append(1))
    monkeypatch.setattr(ordered_module, "TRIM_FROM", 1_000)
    db = new_db()
    table = db.tables["thing"]
    db.load([("thing", [{"id": uid(n), "kind": "a", "rank": n % 7} for n in range(1, 1000)])])
    db.query("thing", Query(sort=(SortKey("rank"),)))
    assert trims == []
    db.load([("thing", [{"id": uid(1000), "kind": "b", "rank": 3}])])
    table.ordered.clear()
    db.query("thing", Query(sort=(SortKey("rank"),)))
    assert trims == [1]


def test_the_planner_says_beforehand_which_index_a_query_walks() -> None:
    db = new_db()
    table = db.tables["thing"]
    rng = random.Random(9)
    db.load([("thing", [{"id": uid(n), **values(rng)} for n in range(1, 401)])])
    queries = [
        Query(),
        Query(sort=(SortKey("created_at"),)),
        Query(sort=(SortKey("created_at", descending=True),)),
        Query(sort=(SortKey("rank"),)),
        Query(sort=(SortKey("data"),)),
        Query(sort=(SortKey("rank"), SortKey("tag"))),
        Query(sort=(SortKey("kind"), SortKey("rank", descending=True)), page=3),
        Query((q.Predicate(("kind",), "eq", "a"),), (SortKey("price", descending=True),)),
        Query((q.Predicate(("kind",), "eq", "a"),), (SortKey("price"),), page=30),
        Query((q.Predicate(("rank",), "gt", 0),), (SortKey("rank"),)),
        Query((q.Predicate(("kind",), "in", ("a", "b")),), (SortKey("tag"),)),
    ]
    for query in queries:
        table.ordered.clear()
        predicted = q.walked_indexes(table, query)
        q.run(table, query)
        assert [(index.column, index.group) for index in table.ordered.values()] == predicted, query
        assert db.unbuilt_indexes("thing", query) == []


async def test_the_client_builds_an_index_in_steps_letting_others_run_between_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ordered_module, "STEP", 50)
    monkeypatch.setattr(ordered_module.OrderedIndex.steps, "__defaults__", (50,))
    db = new_db()
    rng = random.Random(8)
    db.load([("thing", [{"id": uid(n), **values(rng)} for n in range(1, 1001)])])
    actor = StoreActor(db, queue_size=4)
    actor.start()
    client = StoreClient(actor)
    turns = 0
    stop = asyncio.Event()

    async def other_work() -> None:
        nonlocal turns
        while not stop.is_set():
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    try:
        await asyncio.sleep(0)
        before = turns
        page = await client.find("thing", Query(sort=(SortKey("price", descending=True),), per_page=5))
        assert turns - before >= 1000 // 50  # a turn for others after each step at least
        assert db.tables["thing"].ordered["price"].builds == 1
        with pytest.raises(NotFound):  # nothing to build for a table that is not there: the read says so
            await client.find("nothing", Query(sort=(SortKey("price"),)))
        assert [item["id"] for item in page.items] == [
            str(UUID(int=row[2])) for row in expected(db.tables["thing"], SortKey("price", True), 1, 5)
        ]
    finally:
        stop.set()
        await other
        await actor.close()
