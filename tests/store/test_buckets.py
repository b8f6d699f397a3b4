"""Index buckets are lists in insertion order: large ones, re-added rows, and purges through them."""

from __future__ import annotations

from store import Database, Predicate, Query
from store.table import Table
from tests.store.conftest import CHILD, Rows, assert_indexes_consistent, uid


def child(table: Table, n: int, status: str) -> tuple[object, ...]:
    values = {"id": uid(n), "parent_id": uid(1), "label": f"c{n}", "status": status, "amount": "1.00"}
    encoded = table.encode(values)
    encoded["created_at"] = encoded["updated_at"] = n
    row = table.new_row(encoded)
    table.add(row)
    return row


def test_large_buckets_stay_in_insertion_order_through_removals_and_moves() -> None:
    table = Table(CHILD)
    rows = [child(table, n, "paid") for n in range(1, 101)]
    table.remove(rows[49])
    moved = table.changed_row(rows[10], table.encode({"status": "pending"}))
    table.replace(rows[10], moved)
    table.replace(moved, table.changed_row(moved, table.encode({"status": "paid"})))

    paid = table.lookup("status", "paid")
    assert paid is not None
    assert list(paid) == [uid(n).int for n in range(1, 101) if n != 50]
    assert table.lookup("status", "pending") == ()


def test_re_adding_an_older_row_puts_it_back_in_its_place() -> None:
    table = Table(CHILD)
    rows = [child(table, n, "paid") for n in range(1, 6)]
    table.remove(rows[1])
    table.add(rows[1])
    assert table.lookup("status", "paid") == [uid(n).int for n in range(1, 6)]


def test_purging_through_an_index_removes_the_matching_rows_only(db: Database, rows: Rows) -> None:
    parent = rows.parent()
    made = [rows.child(parent["id"], status=("paid", "pending", "shipped")[n % 3]) for n in range(9)]
    removed = db.purge("child", (Predicate(("status",), "in", ("paid", "shipped")),))
    assert removed == 6
    assert [child["id"] for child in made if child["status"] == "pending"] == [
        item["id"] for item in db.query("child", Query()).items
    ]
    assert_indexes_consistent(db)


def test_an_in_filter_naming_a_key_twice_finds_its_row_once(db: Database, rows: Rows) -> None:
    first = rows.parent(email="ada@example.com")
    rows.parent()
    table = db.table("parent")
    for predicate in (
        Predicate(("id",), "in", (uid(1).int, uid(1).int)),
        Predicate(("email",), "in", ("ada@example.com", "ADA@example.com")),
    ):
        page = db.query("parent", Query((predicate,)))
        assert [item["id"] for item in page.items] == [first["id"]]
        assert page.total == 1
    assert table.lookup("id", uid(1).int) == (uid(1).int,)
