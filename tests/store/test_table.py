"""One table: encoding values, rows, the unique and secondary indexes, tags and insertion order."""

from __future__ import annotations

from typing import Any

import pytest

from store import Column, Conflict, InvalidValue, Kind, TableSpec
from store.table import Table

from .conftest import CHILD, PARENT, uid


def parent_row(table: Table, n: int, email: str | None = None, **values: Any) -> tuple[Any, ...]:
    encoded = table.encode({"id": uid(n), "email": email or f"p{n}@example.com", "name": f"P{n}", **values})
    encoded.setdefault("created_at", n)
    encoded.setdefault("updated_at", n)
    return table.new_row(encoded)


def child_row(table: Table, n: int, parent: int, status: str = "pending", **values: Any) -> tuple[Any, ...]:
    encoded = table.encode(
        {"id": uid(n), "parent_id": uid(parent), "label": f"c{n}", "status": status, "amount": "1", **values}
    )
    encoded.setdefault("created_at", n)
    encoded.setdefault("updated_at", n)
    return table.new_row(encoded)


def added(table: Table, row: tuple[Any, ...]) -> tuple[Any, ...]:
    table.check_unique(row)
    table.add(row)
    return row


@pytest.fixture
def parents() -> Table:
    return Table(PARENT)


@pytest.fixture
def children() -> Table:
    return Table(CHILD)


# -- encoding ----------------------------------------------------------------


def test_unknown_columns_are_refused_by_name(parents: Table) -> None:
    with pytest.raises(InvalidValue) as info:
        parents.encode({"nickname": "x"})
    assert (info.value.table, info.value.field) == ("parent", "nickname")
    assert "no such column" in info.value.message


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("quantity", "abc", "expected a whole number"),  # int() would say "invalid literal for int() with base 10"
        ("quantity", 1.5, "expected a whole number"),
        ("parent_id", "42", "expected a UUID"),  # UUID() would say "badly formed hexadecimal UUID string"
        ("amount", "1.234", "more than 2 decimal places"),
        ("amount", "cheap", "expected a decimal number"),  # Decimal() would say "[<class 'decimal.ConversionSyntax'>]"
        ("status", "lost", "must be one of pending, paid, shipped, cancelled"),
        ("metadata", {"key": "\ud800"}, "a lone surrogate"),  # orjson: "str is not valid UTF-8"
        ("metadata", {"big": 2**70}, "an integer past 64 bits"),
        ("due", "yesterday", "expected a date (YYYY-MM-DD) or an ISO 8601 datetime"),
    ],
)
def test_a_value_a_column_cannot_take_is_refused_in_plain_words(
    children: Table, column: str, value: object, reason: str
) -> None:
    with pytest.raises(InvalidValue) as info:
        children.encode({column: value})

    assert info.value.field == column
    assert reason in info.value.reason
    assert "Error" not in info.value.reason
    assert "<class" not in info.value.reason


def test_null_is_refused_for_required_columns_and_kept_for_nullable_ones(parents: Table) -> None:
    with pytest.raises(InvalidValue, match="may not be null") as info:
        parents.encode({"name": None})
    assert info.value.field == "name"
    assert parents.encode({"age": None}) == {"age": None}


def test_null_for_an_auto_timestamp_means_let_the_store_fill_it(parents: Table) -> None:
    assert parents.encode({"created_at": None, "updated_at": None}) == {}


@pytest.mark.parametrize(
    ("values", "field"),
    [({"age": "old"}, "age"), ({"id": "nope"}, "id"), ({"active": "perhaps"}, "active")],
)
def test_values_that_do_not_fit_their_column_name_the_column(
    parents: Table, values: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidValue) as info:
        parents.encode(values)
    assert info.value.field == field


@pytest.mark.parametrize("amount", ["1.001", "lots", float("inf"), [1]])
def test_bad_money_is_an_invalid_value(children: Table, amount: object) -> None:
    with pytest.raises(InvalidValue) as info:
        children.encode({"amount": amount})
    assert info.value.field == "amount"


def test_a_new_row_needs_every_required_column(parents: Table) -> None:
    with pytest.raises(InvalidValue, match="is required") as info:
        parents.new_row(parents.encode({"id": uid(1), "email": "a@example.com"}))
    assert info.value.field == "name"


def test_rows_carry_insertion_number_and_version(parents: Table) -> None:
    first = added(parents, parent_row(parents, 1))
    second = added(parents, parent_row(parents, 2))
    assert (first[0], first[1]) == (0, 1)
    assert (second[0], second[1]) == (1, 1)
    changed = parents.changed_row(first, {"name": "Renamed"})
    assert (changed[0], changed[1]) == (0, 2)
    assert parents.value(changed, "name") == "Renamed"
    assert parents.value(first, "name") == "P1"


def test_present_hides_hidden_columns_and_shows_nulls(parents: Table) -> None:
    row = added(parents, parent_row(parents, 1, secret="hunter2"))
    data = parents.present(row)
    assert "secret" not in data
    assert data["age"] is None
    assert data["id"] == str(uid(1))
    assert data["created_at"] == "1970-01-01T00:00:00.000001Z"


def test_tags_change_with_every_write_and_are_never_reused(parents: Table) -> None:
    row = added(parents, parent_row(parents, 1))
    tags = {parents.tag(row)}
    changed = parents.changed_row(row, {"name": "x"})
    parents.replace(row, changed)
    tags.add(parents.tag(changed))
    parents.remove(changed)
    again = added(parents, parent_row(parents, 1))
    tags.add(parents.tag(again))
    assert len(tags) == 3


# -- unique index ------------------------------------------------------------


def test_duplicate_primary_key_is_a_conflict_on_the_key(parents: Table) -> None:
    added(parents, parent_row(parents, 1))
    with pytest.raises(Conflict) as info:
        parents.check_unique(parent_row(parents, 1, email="other@example.com"))
    assert info.value.field == "id"
    assert str(uid(1)) in info.value.message


def test_unique_email_is_case_insensitive(parents: Table) -> None:
    added(parents, parent_row(parents, 1, email="Ada@Example.com"))
    with pytest.raises(Conflict) as info:
        parents.check_unique(parent_row(parents, 2, email="ada@EXAMPLE.COM"))
    assert (info.value.table, info.value.field) == ("parent", "email")


def test_a_row_may_keep_or_recase_its_own_unique_value(parents: Table) -> None:
    row = added(parents, parent_row(parents, 1, email="ada@example.com"))
    recased = parents.changed_row(row, parents.encode({"email": "ADA@example.com"}))
    parents.check_unique(recased, previous=row)
    parents.replace(row, recased)
    assert parents.lookup("email", "ada@EXAMPLE.com") == (uid(1).int,)
    assert parents.present(recased)["email"] == "ADA@example.com"


def test_email_is_reusable_after_delete(parents: Table) -> None:
    row = added(parents, parent_row(parents, 1, email="ada@example.com"))
    parents.remove(row)
    assert parents.lookup("email", "ada@example.com") == ()
    added(parents, parent_row(parents, 2, email="Ada@example.com"))
    assert parents.lookup("email", "ada@example.com") == (uid(2).int,)


def test_email_is_reusable_after_its_holder_changes_it(parents: Table) -> None:
    row = added(parents, parent_row(parents, 1, email="ada@example.com"))
    changed = parents.changed_row(row, {"email": "grace@example.com"})
    parents.check_unique(changed, previous=row)
    parents.replace(row, changed)
    assert parents.unique["email"] == {"grace@example.com": uid(1).int}
    added(parents, parent_row(parents, 2, email="ada@example.com"))
    with pytest.raises(Conflict):
        parents.check_unique(parent_row(parents, 3, email="GRACE@example.com"))


def test_null_unique_values_never_collide() -> None:
    spec = TableSpec(
        "t", (Column("id", Kind.INT), Column("code", Kind.STR, nullable=True, unique=True)), default_sort="id"
    )
    table = Table(spec)
    for n in (1, 2):
        added(table, table.new_row({"id": n, "code": None}))
    assert table.unique["code"] == {}
    first = table.rows[1]
    coded = table.changed_row(first, {"code": "A"})
    table.replace(first, coded)
    assert table.unique["code"] == {"A": 1}
    table.replace(coded, table.changed_row(coded, {"code": None}))
    assert table.unique["code"] == {}
    table.remove(table.rows[2])
    assert len(table) == 1


# -- secondary indexes -------------------------------------------------------


def test_foreign_key_and_indexed_columns_get_buckets(children: Table) -> None:
    for n, (parent, status) in enumerate([(1, "paid"), (1, "pending"), (2, "paid")], start=10):
        added(children, child_row(children, n, parent, status))
    assert set(children.indexes) == {"parent_id", "status"}
    assert children.lookup("parent_id", uid(1).int) == (uid(10).int, uid(11).int)
    assert children.lookup("status", "paid") == (uid(10).int, uid(12).int)
    assert children.lookup("status", "shipped") == ()


def test_buckets_follow_updates_of_the_indexed_field_and_vanish_when_empty(children: Table) -> None:
    row = added(children, child_row(children, 10, parent=1, status="paid"))
    moved = children.changed_row(row, children.encode({"parent_id": uid(2), "status": "shipped"}))
    children.replace(row, moved)
    assert children.indexes["parent_id"] == {uid(2).int: (uid(10).int,)}
    assert children.indexes["status"] == {"shipped": (uid(10).int,)}
    children.remove(moved)
    assert children.indexes == {"parent_id": {}, "status": {}}


def test_removing_one_of_several_keeps_the_bucket(children: Table) -> None:
    first = added(children, child_row(children, 10, parent=1))
    added(children, child_row(children, 11, parent=1))
    children.remove(first)
    assert children.lookup("parent_id", uid(1).int) == (uid(11).int,)


def test_an_update_that_leaves_the_indexed_value_alone_keeps_its_bucket(children: Table) -> None:
    row = added(children, child_row(children, 10, parent=1, status="paid"))
    children.replace(row, children.changed_row(row, {"label": "renamed"}))
    assert children.indexes["status"] == {"paid": (uid(10).int,)}


def test_case_insensitive_indexed_columns_are_looked_up_case_insensitively() -> None:
    spec = TableSpec(
        "tagged",
        (Column("id", Kind.INT), Column("tag", Kind.STR, indexed=True, case_insensitive=True)),
        default_sort="id",
    )
    table = Table(spec)
    first = added(table, table.new_row({"id": 1, "tag": "Red"}))
    added(table, table.new_row({"id": 2, "tag": "red"}))
    assert table.lookup("tag", "RED") == (1, 2)
    table.replace(first, table.changed_row(first, {"tag": "RED"}))
    assert table.indexes["tag"] == {"red": (1, 2)}
    table.replace(table.rows[1], table.changed_row(table.rows[1], {"tag": "Blue"}))
    assert table.indexes["tag"] == {"red": (2,), "blue": (1,)}


def test_lookup_answers_by_primary_key_unique_or_index_and_declines_otherwise(children: Table) -> None:
    added(children, child_row(children, 10, parent=1))
    assert children.lookup("id", uid(10).int) == (uid(10).int,)
    assert children.lookup("id", uid(99).int) == ()
    assert children.lookup("label", "c10") is None


def test_rows_in_order_sorts_keys_by_insertion(children: Table) -> None:
    for n in (30, 10, 20):
        added(children, child_row(children, n, parent=1))
    ordered = children.rows_in_order({uid(10).int, uid(20).int, uid(30).int})
    assert [children.value(row, "label") for row in ordered] == ["c30", "c10", "c20"]


# -- insertion order versus default sort ------------------------------------


def test_rows_added_in_default_sort_order_keep_the_table_in_order(parents: Table) -> None:
    for n in (1, 2, 2, 3):
        added(parents, parent_row(parents, len(parents) + 1, created_at=n))
    assert parents.in_default_order


def test_an_earlier_timestamp_after_a_later_one_breaks_the_order(parents: Table) -> None:
    added(parents, parent_row(parents, 1, created_at=5))
    added(parents, parent_row(parents, 2, created_at=4))
    assert not parents.in_default_order


def test_changing_the_default_sort_value_breaks_the_order(parents: Table) -> None:
    row = added(parents, parent_row(parents, 1, created_at=5))
    parents.replace(row, parents.changed_row(row, {"name": "same time"}))
    assert parents.in_default_order
    current = parents.rows[uid(1).int]
    parents.replace(current, parents.changed_row(current, {"created_at": 1}))
    assert not parents.in_default_order


def test_emptying_the_table_restores_the_order(parents: Table) -> None:
    added(parents, parent_row(parents, 1, created_at=5))
    second = added(parents, parent_row(parents, 2, created_at=4))
    parents.remove(parents.rows[uid(1).int])
    assert not parents.in_default_order
    parents.remove(second)
    assert parents.in_default_order
    added(parents, parent_row(parents, 3, created_at=1))
    assert parents.in_default_order


def test_a_null_default_sort_value_breaks_the_order_wherever_it_comes() -> None:
    spec = TableSpec("ranked", (Column("id", Kind.INT), Column("rank", Kind.INT, nullable=True)), default_sort="rank")
    null_first = Table(spec)
    added(null_first, null_first.new_row({"id": 1, "rank": None}))
    assert null_first.in_default_order
    added(null_first, null_first.new_row({"id": 2, "rank": 5}))
    assert not null_first.in_default_order

    null_last = Table(spec)
    added(null_last, null_last.new_row({"id": 1, "rank": 5}))
    added(null_last, null_last.new_row({"id": 2, "rank": None}))
    assert not null_last.in_default_order
