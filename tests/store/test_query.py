"""Queries: every operator, null semantics, JSON dot paths, sorting, paging, and the index planner."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from store import Column, Database, Kind, Predicate, Query, QueryParser, SortKey, TableSpec
from store import query as q

from .conftest import CHILD, PARENT, SPECS, Clock, Rows, plain, uid

CHILDREN = QueryParser(CHILD)
PARENTS = QueryParser(PARENT)


def find(db: Database, *filters: tuple[str, str], sort: str | None = None, page: int = 1, per_page: int = 20) -> Any:
    return db.query("child", CHILDREN.parse(filters, sort, page, per_page))


def labels(db: Database, *filters: tuple[str, str], sort: str | None = None, **paging: int) -> list[str]:
    return [item["label"] for item in find(db, *filters, sort=sort, **paging).items]


@pytest.fixture
def shop(db: Database, rows: Rows) -> dict[str, Any]:
    """Three parents and five children with every interesting kind of value (and of missing value)."""
    ada = rows.parent(email="Ada@Example.com", age=36, active=True)
    grace = rows.parent(email="grace@example.com")
    linus = rows.parent(email="linus@example.com", age=20, active=False)
    rows.child(
        ada["id"],
        label="Blue Widget",
        status="paid",
        amount="19.90",
        quantity=2,
        address={"city": "Paris", "zip": "75001", "floor": 3},
        metadata={"source": "web", "priority": 3, "gift": True, "tags": ["a", "b"], "nested": {"level": 2}},
    )
    rows.child(ada["id"], label="red gadget", status="pending", amount="9.99")
    rows.child(
        grace["id"],
        label="Green widget",
        status="shipped",
        amount="100.00",
        quantity=5,
        address={"city": "paris", "zip": "69001"},
        metadata={"source": "app", "priority": "3", "gift": 1},
    )
    rows.child(
        linus["id"],
        label="Gizmo",
        status="paid",
        amount="10.00",
        quantity=2,
        address={"city": "Berlin", "zip": "10115", "floor": None},
        metadata={"source": None, "priority": 3.0},
    )
    rows.child(
        grace["id"],
        label="widget",
        status="cancelled",
        amount="9.99",
        quantity=1,
        address={"city": "Lyon"},
        metadata={"priority": 10},
    )
    return {"ada": ada, "grace": grace, "linus": linus}


# -- operators ---------------------------------------------------------------


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [
        ("status", "paid", ["Blue Widget", "Gizmo"]),
        ("label", "Gizmo", ["Gizmo"]),
        ("label", "gizmo", []),
        ("quantity", "2", ["Blue Widget", "Gizmo"]),
        ("amount", "9.99", ["red gadget", "widget"]),
        ("amount", "9.990", ["red gadget", "widget"]),
        ("amount", "19.9", ["Blue Widget"]),
        ("amount", "19.901", []),
        ("status__ne", "paid", ["red gadget", "Green widget", "widget"]),
        ("label__ne", "Gizmo", ["Blue Widget", "red gadget", "Green widget", "widget"]),
        ("amount__ne", "9.99", ["Blue Widget", "Green widget", "Gizmo"]),
        ("quantity__gt", "1", ["Blue Widget", "Green widget", "Gizmo"]),
        ("quantity__gte", "2", ["Blue Widget", "Green widget", "Gizmo"]),
        ("quantity__lt", "5", ["Blue Widget", "Gizmo", "widget"]),
        ("quantity__lte", "1", ["widget"]),
        ("status__in", "paid,shipped", ["Blue Widget", "Green widget", "Gizmo"]),
        ("label__in", "Gizmo,widget,nothing", ["Gizmo", "widget"]),
        ("amount__in", "9.99,100", ["red gadget", "Green widget", "widget"]),
        ("quantity__in", "1,5,null", ["Green widget", "widget"]),
        ("label__contains", "WIDGET", ["Blue Widget", "Green widget", "widget"]),
        ("status__contains", "PA", ["Blue Widget", "Gizmo"]),
    ],
)
def test_each_operator_selects_the_right_rows(db: Database, parameter: str, value: str, expected: list[str]) -> None:
    assert labels(db, (parameter, value)) == expected


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [
        ("amount__gt", "9.99", ["Blue Widget", "Green widget", "Gizmo"]),
        ("amount__gte", "100", ["Green widget"]),
        ("amount__lt", "10", ["red gadget", "widget"]),
        ("amount__lte", "10.00", ["red gadget", "Gizmo", "widget"]),
        ("amount__gt", "9.995", ["Blue Widget", "Green widget", "Gizmo"]),
    ],
)
def test_money_compares_as_a_number_never_as_text(
    db: Database, parameter: str, value: str, expected: list[str]
) -> None:
    assert labels(db, (parameter, value)) == expected


def test_filters_combine_with_and(db: Database, shop: dict[str, Any]) -> None:
    ada = shop["ada"]["id"]
    assert labels(db, ("parent_id", ada), ("status__ne", "paid")) == ["red gadget"]
    assert labels(db, ("status", "paid"), ("amount__lt", "15")) == ["Gizmo"]
    assert labels(db, ("label__contains", "widget"), ("quantity__gte", "2"), ("amount__lt", "50")) == ["Blue Widget"]


def test_filtering_by_primary_key_or_foreign_key(db: Database, shop: dict[str, Any]) -> None:
    grace = shop["grace"]["id"]
    assert labels(db, ("parent_id", grace)) == ["Green widget", "widget"]
    green = find(db, ("parent_id", grace)).items[0]["id"]
    assert labels(db, ("id", green)) == ["Green widget"]
    assert labels(db, ("id", str(uid(999)))) == []
    assert labels(db, ("parent_id__in", f"{grace},{shop['linus']['id']}")) == ["Green widget", "Gizmo", "widget"]


# -- nulls (CONTRACT §5) -----------------------------------------------------


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [
        # quantity is null on "red gadget" only
        ("quantity__gt", "-100", ["Blue Widget", "Green widget", "Gizmo", "widget"]),
        ("quantity__gte", "-100", ["Blue Widget", "Green widget", "Gizmo", "widget"]),
        ("quantity__lt", "100", ["Blue Widget", "Green widget", "Gizmo", "widget"]),
        ("quantity__lte", "100", ["Blue Widget", "Green widget", "Gizmo", "widget"]),
        ("quantity__in", "1,2,5,null", ["Blue Widget", "Green widget", "Gizmo", "widget"]),
        ("quantity", "2", ["Blue Widget", "Gizmo"]),
        # address.floor is 3 on "Blue Widget", explicitly null on "Gizmo", missing or in a null object elsewhere
        ("address.floor__gt", "-1", ["Blue Widget"]),
        ("address.floor__gte", "-1", ["Blue Widget"]),
        ("address.floor__lt", "100", ["Blue Widget"]),
        ("address.floor__lte", "100", ["Blue Widget"]),
        ("address.floor__in", "3,null", ["Blue Widget"]),
        ("address.floor", "3", ["Blue Widget"]),
        ("address.city__contains", "", ["Blue Widget", "Green widget", "Gizmo", "widget"]),
        # metadata.source is "web" and "app", explicitly null on "Gizmo", missing or in a null object elsewhere
        ("metadata.source__contains", "", ["Blue Widget", "Green widget"]),
        ("metadata.source__gt", "a", ["Blue Widget", "Green widget"]),
        ("metadata.source__lte", "z", ["Blue Widget", "Green widget"]),
        ("metadata.source__in", "web,app,null", ["Blue Widget", "Green widget"]),
    ],
)
def test_a_null_or_missing_value_never_matches_comparisons_or_equality(
    db: Database, parameter: str, value: str, expected: list[str]
) -> None:
    assert labels(db, (parameter, value)) == expected


def test_a_null_or_missing_value_matches_ne(db: Database, shop: dict[str, Any]) -> None:
    assert labels(db, ("quantity__ne", "2")) == ["red gadget", "Green widget", "widget"]
    assert labels(db, ("address.floor__ne", "3")) == ["red gadget", "Green widget", "Gizmo", "widget"]
    assert labels(db, ("metadata.source__ne", "web")) == ["red gadget", "Green widget", "Gizmo", "widget"]


def test_equality_with_null_finds_null_and_missing_values(db: Database, shop: dict[str, Any]) -> None:
    assert labels(db, ("quantity", "null")) == ["red gadget"]
    assert labels(db, ("address.floor", "null")) == ["red gadget", "Green widget", "Gizmo", "widget"]
    assert labels(db, ("metadata.source", "null")) == ["red gadget", "Gizmo", "widget"]
    assert labels(db, ("metadata", "null")) == ["red gadget"]


def test_ne_null_finds_exactly_the_present_values(db: Database, shop: dict[str, Any]) -> None:
    assert labels(db, ("quantity__ne", "null")) == ["Blue Widget", "Green widget", "Gizmo", "widget"]
    assert labels(db, ("address.floor__ne", "null")) == ["Blue Widget"]
    assert labels(db, ("metadata__ne", "null")) == ["Blue Widget", "Green widget", "Gizmo", "widget"]


# -- JSON dot paths ----------------------------------------------------------


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [
        ("address.city", "Paris", ["Blue Widget"]),
        ("address.city__contains", "PAR", ["Blue Widget", "Green widget"]),
        ("address.zip", "75001", ["Blue Widget"]),
        ("address.floor__gte", "3", ["Blue Widget"]),
        ("metadata.source", "web", ["Blue Widget"]),
        ("metadata.nested.level", "2", ["Blue Widget"]),
        ("metadata.nested.level__gte", "2", ["Blue Widget"]),
        ("metadata.source.deeper", "web", []),
        ("metadata.gift", "true", ["Blue Widget"]),
        ("metadata.gift", "1", ["Green widget"]),
        ("metadata.gift__ne", "true", ["red gadget", "Green widget", "Gizmo", "widget"]),
        ("metadata.priority", "3", ["Blue Widget", "Gizmo"]),
        ("metadata.priority", '"3"', ["Green widget"]),
        ("metadata.priority__gt", "5", ["widget"]),
        ("metadata.priority__lte", "3", ["Blue Widget", "Gizmo"]),
        ("metadata.priority__contains", "3", ["Green widget"]),
        ("metadata.priority__in", "3,10", ["Blue Widget", "Gizmo", "widget"]),
        ("metadata.gift__in", "1", ["Green widget"]),
        ("metadata.gift__gt", "0", ["Green widget"]),
        ("metadata.tags__in", "a,b", []),
        ("metadata.tags", "a", []),
        ("metadata.missing", "x", []),
    ],
)
def test_dot_paths_reach_into_json_and_match_the_scalar_they_parse_as(
    db: Database, parameter: str, value: str, expected: list[str]
) -> None:
    assert labels(db, (parameter, value)) == expected


# -- case-insensitive email --------------------------------------------------


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [
        ("email", "ada@example.com", ["Ada@Example.com"]),
        ("email", "ADA@EXAMPLE.COM", ["Ada@Example.com"]),
        ("email__ne", "ADA@example.com", ["grace@example.com", "linus@example.com"]),
        ("email__in", "GRACE@example.com,nobody@example.com", ["grace@example.com"]),
        ("email__contains", "EXAMPLE", ["Ada@Example.com", "grace@example.com", "linus@example.com"]),
    ],
)
def test_email_matches_case_insensitively(db: Database, parameter: str, value: str, expected: list[str]) -> None:
    page = db.query("parent", PARENTS.parse([(parameter, value)], None))
    assert [item["email"] for item in page.items] == expected


def test_email_equality_is_case_insensitive_even_when_scanning(db: Database, shop: dict[str, Any]) -> None:
    table = db.table("parent")
    predicates = (Predicate(("email",), "eq", "GRACE@EXAMPLE.COM"), Predicate(("name",), "ne", "x"))
    assert [table.value(row, "email") for row in q.run(table, Query(predicates)).rows] == ["grace@example.com"]
    assert q.matches(table, table.rows[uid(2).int], predicates)
    assert not q.matches(table, table.rows[uid(1).int], predicates)


# -- sorting -----------------------------------------------------------------


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("quantity", ["widget", "Blue Widget", "Gizmo", "Green widget", "red gadget"]),
        ("quantity:asc", ["widget", "Blue Widget", "Gizmo", "Green widget", "red gadget"]),
        ("quantity:desc", ["Green widget", "Blue Widget", "Gizmo", "widget", "red gadget"]),
        ("amount", ["red gadget", "widget", "Gizmo", "Blue Widget", "Green widget"]),
        ("amount:desc", ["Green widget", "Blue Widget", "Gizmo", "red gadget", "widget"]),
        ("status,amount:desc", ["widget", "Blue Widget", "Gizmo", "red gadget", "Green widget"]),
        ("amount,quantity:desc", ["widget", "red gadget", "Gizmo", "Blue Widget", "Green widget"]),
        ("amount:desc,quantity", ["Green widget", "Blue Widget", "Gizmo", "widget", "red gadget"]),
        ("created_at:desc", ["widget", "Gizmo", "Green widget", "red gadget", "Blue Widget"]),
        ("created_at", ["Blue Widget", "red gadget", "Green widget", "Gizmo", "widget"]),
    ],
)
def test_multi_key_sort_is_stable_with_nulls_last_both_ways(db: Database, sort: str, expected: list[str]) -> None:
    assert labels(db, sort=sort) == expected


def test_email_sorts_case_insensitively(db: Database, rows: Rows) -> None:
    for email in ("carl@example.com", "Bob@example.com", "ada@example.com"):
        rows.parent(email=email)
    for sort, expected in [("email", ["ada", "Bob", "carl"]), ("email:desc", ["carl", "Bob", "ada"])]:
        page = db.query("parent", PARENTS.parse([], sort))
        assert [item["email"].split("@")[0] for item in page.items] == expected


def test_case_insensitive_sort_puts_nulls_last_both_ways(db: Database) -> None:
    spec = TableSpec(
        "tag",
        (Column("id", Kind.INT), Column("name", Kind.STR, nullable=True, case_insensitive=True)),
        default_sort="id",
    )
    tags = Database([spec])
    for n, name in enumerate(["b", None, "A", "c"]):
        tags.insert("tag", {"id": n, "name": name})
    parser = QueryParser(spec)
    ascending = tags.query("tag", parser.parse([], "name")).items
    descending = tags.query("tag", parser.parse([], "name:desc")).items
    assert [item["name"] for item in ascending] == ["A", "b", "c", None]
    assert [item["name"] for item in descending] == ["c", "b", "A", None]


@pytest.mark.parametrize("sort", ["quantity", "quantity:desc", "label:desc", "quantity,label:desc"])
@pytest.mark.parametrize("per_page", [1, 2, 7])
def test_pages_of_a_sort_join_up_to_the_whole_sorted_list(db: Database, rows: Rows, sort: str, per_page: int) -> None:
    parent = rows.parent()["id"]
    for n in range(40):
        rows.child(parent, label=f"c{n % 7}", quantity=None if n % 5 == 0 else n % 4)
    everything = plain(find(db, sort=sort, per_page=100).items)
    paged = []
    for page in range(1, 40 // per_page + 2):
        paged += plain(find(db, sort=sort, page=page, per_page=per_page).items)
    assert paged == everything
    assert everything == reference_sort(plain(find(db, per_page=100).items), sort)


def reference_sort(items: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    """Stable sorts from the last key to the first, each putting its nulls last in the order they had."""
    ordered = list(items)
    for part in reversed(sort.split(",")):
        field, _, direction = part.partition(":")
        present = [item for item in ordered if item[field] is not None]
        nulls = [item for item in ordered if item[field] is None]
        ordered = sorted(present, key=lambda item: item[field], reverse=direction == "desc") + nulls
    return ordered


def test_ties_keep_insertion_order_in_both_directions(db: Database, rows: Rows) -> None:
    parent = rows.parent()["id"]
    for n in range(12):
        rows.child(parent, label=f"c{n}", status="paid" if n % 2 else "pending")
    assert labels(db, sort="status", per_page=1) == ["c1"]
    assert labels(db, sort="status:desc", per_page=1) == ["c0"]
    assert labels(db, sort="status:desc", per_page=12) == [f"c{n}" for n in [0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11]]


def test_default_order_is_creation_time_even_when_rows_arrived_out_of_order(db: Database, rows: Rows) -> None:
    parent = rows.parent()["id"]
    for n, day in enumerate([3, 1, 2]):
        rows.child(parent, label=f"c{n}", status="paid", created_at=datetime(2024, 2, day, tzinfo=UTC))
    assert not db.table("child").in_default_order
    assert labels(db) == ["c1", "c2", "c0"]
    assert labels(db, ("status", "paid")) == ["c1", "c2", "c0"]
    assert labels(db, sort="created_at:desc") == ["c0", "c2", "c1"]


def test_a_nullable_default_sort_keeps_nulls_last_without_an_explicit_sort() -> None:
    spec = TableSpec("ranked", (Column("id", Kind.INT), Column("rank", Kind.INT, nullable=True)), default_sort="rank")
    ranked = Database([spec])
    for n, rank in enumerate([None, 1, 5]):
        ranked.insert("ranked", {"id": n, "rank": rank})
    assert [item["rank"] for item in ranked.query("ranked", Query()).items] == [1, 5, None]
    assert [item["rank"] for item in ranked.query("ranked", Query(sort=(SortKey("rank", True),))).items] == [5, 1, None]


# -- date ranges -------------------------------------------------------------


@pytest.fixture
def dated(db: Database, rows: Rows, clock: Clock) -> None:
    parent = rows.parent()["id"]
    moments = [
        datetime(2024, 1, 1, 10, tzinfo=UTC),
        datetime(2024, 1, 2, tzinfo=UTC),
        datetime(2024, 1, 2, 12, tzinfo=UTC),
        datetime(2024, 1, 3, tzinfo=UTC),
    ]
    for n, moment in enumerate(moments):
        clock.now = moment
        rows.child(parent, label=f"c{n}", due=None if n == 0 else moment)


@pytest.mark.usefixtures("dated")
@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ((("created_after", "2024-01-02"),), ["c2", "c3"]),
        ((("created_before", "2024-01-02"),), ["c0"]),
        ((("created_after", "2024-01-01"), ("created_before", "2024-01-03")), ["c0", "c1", "c2"]),
        ((("created_after", "2024-01-02T12:00:00Z"),), ["c3"]),
        ((("created_after", "2024-01-02T11:00:00-01:00"),), ["c3"]),
        ((("created_at__gte", "2024-01-02T12:00:00Z"),), ["c2", "c3"]),
        ((("created_at", "2024-01-02"),), ["c1"]),
        ((("due_before", "2030-01-01"),), ["c1", "c2", "c3"]),
        ((("due_after", "2000-01-01"),), ["c1", "c2", "c3"]),
        ((("due", "null"),), ["c0"]),
        ((("updated_before", "2024-01-02T00:00:00.000001"),), ["c0", "c1"]),
    ],
)
def test_date_ranges_are_strict_and_accept_dates_or_datetimes(
    db: Database, filters: tuple[tuple[str, str], ...], expected: list[str]
) -> None:
    assert labels(db, *filters) == expected


def test_updated_after_follows_writes(db: Database, rows: Rows, clock: Clock) -> None:
    parent = rows.parent()["id"]
    first = rows.child(parent, label="first")
    rows.child(parent, label="second")
    clock.now = datetime(2025, 1, 1, tzinfo=UTC)
    db.update("child", first["id"], {"quantity": 4})
    assert labels(db, ("updated_after", "2024-12-31")) == ["first"]
    assert labels(db, ("created_after", "2024-12-31")) == []


# -- paging ------------------------------------------------------------------


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize(
    "filters", [(), (("status", "paid"),), (("label__contains", "g"),), (("status__in", "paid,pending"),)]
)
@pytest.mark.parametrize("sort", [None, "amount", "created_at:desc"])
def test_a_page_past_the_end_is_empty_with_the_true_total(
    db: Database, filters: tuple[tuple[str, str], ...], sort: str | None
) -> None:
    whole = find(db, *filters, sort=sort, per_page=100)
    assert whole.total == len(whole.items) > 0
    last = find(db, *filters, sort=sort, page=whole.total, per_page=1)
    assert plain(last.items) == plain(whole.items[-1:])
    past = find(db, *filters, sort=sort, page=whole.total + 1, per_page=1)
    assert (past.items, past.total, past.page, past.per_page) == ([], whole.total, whole.total + 1, 1)


def test_pages_split_the_rows_in_order(db: Database, shop: dict[str, Any]) -> None:
    pages = [labels(db, page=page, per_page=2) for page in (1, 2, 3)]
    assert pages == [["Blue Widget", "red gadget"], ["Green widget", "Gizmo"], ["widget"]]
    assert find(db, per_page=2).total == 5


def test_an_empty_table_has_no_rows_and_zero_total(db: Database) -> None:
    for filters in [(), (("status", "paid"),), (("label", "x"),)]:
        page = find(db, *filters)
        assert (page.items, page.total) == ([], 0)


def test_json_values_come_back_as_the_stored_objects(db: Database, shop: dict[str, Any]) -> None:
    item = plain(find(db, ("label", "Blue Widget")).items[0])
    assert item["address"] == {"city": "Paris", "zip": "75001", "floor": 3}
    assert item["metadata"]["nested"] == {"level": 2}
    assert item["amount"] == "19.90"


# -- the planner: indexes instead of scans -----------------------------------

PARENTS_IN_BIG = 10_000
CHILDREN_PER_PARENT = 5


def big_parent(p: int) -> UUID:
    return uid(1_000_000 + p)


@pytest.fixture(scope="module")
def big() -> Database:
    """50,000 children of 10,000 parents, five each; every fifth child (the first of each parent) is paid."""
    database = Database(SPECS, clock=Clock())
    parents = [{"id": big_parent(p), "email": f"p{p}@example.com", "name": f"P{p}"} for p in range(PARENTS_IN_BIG)]
    children = [
        {
            "id": uid(n + 1),
            "parent_id": big_parent(n // CHILDREN_PER_PARENT),
            "label": f"c{n}",
            "status": "paid" if n % CHILDREN_PER_PARENT == 0 else "pending",
            "amount": "1.00",
        }
        for n in range(PARENTS_IN_BIG * CHILDREN_PER_PARENT)
    ]
    assert database.load([("parent", parents), ("child", children)]) == {"parent": 10_000, "child": 50_000}
    return database


def run_child_query(big: Database, *filters: tuple[str, str], **options: Any) -> q.Result:
    return q.run(big.table("child"), CHILDREN.parse(filters, options.pop("sort", None), **options))


def child_labels(result: q.Result, big: Database) -> list[str]:
    table = big.table("child")
    return [table.value(row, "label") for row in result.rows]


def test_an_indexed_equality_examines_far_fewer_rows_than_the_table_holds(big: Database) -> None:
    table = big.table("child")
    before = table.rows_examined
    result = run_child_query(big, ("status", "paid"))
    assert len(table) == 50_000
    assert result.total == 10_000
    assert child_labels(result, big) == [f"c{n}" for n in range(0, 100, 5)]
    assert result.examined < 1_000
    assert table.rows_examined - before == result.examined


def test_a_plain_listing_examines_only_the_page(big: Database) -> None:
    result = run_child_query(big, page=3, per_page=10)
    assert child_labels(result, big) == [f"c{n}" for n in range(20, 30)]
    assert (result.total, result.examined) == (50_000, 30)


def test_children_of_one_parent_examine_only_that_parents_rows(big: Database) -> None:
    table = big.table("child")
    before = table.rows_examined
    page = big.children("parent", big_parent(1234), "child", "parent_id", Query())
    assert [item["label"] for item in page.items] == [f"c{n}" for n in range(6170, 6175)]
    assert page.total == 5
    assert table.rows_examined - before == 5


def test_the_planner_picks_the_smallest_bucket(big: Database) -> None:
    result = run_child_query(big, ("status", "paid"), ("parent_id", str(big_parent(7))))
    assert child_labels(result, big) == ["c35"]
    assert result.examined == CHILDREN_PER_PARENT


@pytest.mark.parametrize(("page", "per_page"), [(50, 20), (400, 20), (500, 20), (1, 100), (99, 100)])
def test_deep_pages_are_still_right_when_walking_is_not_cheaper(big: Database, page: int, per_page: int) -> None:
    result = run_child_query(big, ("status", "paid"), page=page, per_page=per_page)
    first = (page - 1) * per_page
    assert result.total == 10_000
    assert child_labels(result, big) == [f"c{5 * n}" for n in range(first, first + per_page)]
    assert result.examined <= 10_000


def test_pages_past_the_end_of_an_index_bucket_are_empty(big: Database) -> None:
    result = run_child_query(big, ("status", "paid"), page=501, per_page=20)
    assert (result.rows, result.total) == ([], 10_000)


def test_an_indexed_filter_with_other_filters_and_a_sort(big: Database) -> None:
    result = run_child_query(big, ("status__in", "paid,shipped"), ("label__contains", "c1"), sort="label:desc")
    assert child_labels(result, big)[:3] == ["c19995", "c19990", "c19985"]
    matches = [n for n in range(0, 50_000, 5) if f"c{n}".startswith("c1") or "c1" in f"c{n}"]
    assert result.total == len(matches)
    assert result.examined == 10_000


def test_an_empty_bucket_answers_without_a_scan(big: Database) -> None:
    result = run_child_query(big, ("status", "shipped"))
    assert (result.rows, result.total, result.examined) == ([], 0, 0)


def test_index_lookups_that_include_null_fall_back_to_a_correct_scan(big: Database) -> None:
    table = big.table("child")
    parent = uid(1_000_003).int
    for predicate in (Predicate(("parent_id",), "in", (None, parent)), Predicate(("parent_id",), "eq", None)):
        result = q.run(table, Query((predicate,), (SortKey("label"),)))
        assert result.examined == 50_000
        assert child_labels(result, big) == ([] if predicate.op == "eq" else [f"c{n}" for n in range(15, 20)])
