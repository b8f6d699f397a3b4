"""Index buckets keep insertion order: small ones (tuples), large ones (lists), re-added rows, purges through them."""

from __future__ import annotations

import random
import sys

from store import Database, Predicate, Query
from store.table import SMALL_BUCKET, Table
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
    assert table.lookup("status", "paid") == tuple(uid(n).int for n in range(1, 6))


def test_a_bucket_keeps_insertion_order_as_it_grows_past_a_tuple_and_shrinks_back() -> None:
    table = Table(CHILD)
    rng = random.Random(3)
    rows = {n: child(table, n, "paid") for n in range(1, 2 * SMALL_BUCKET + 1)}
    for _ in range(300):  # rows leave, come back (in their old place) and move between buckets
        n = rng.choice(list(rows))
        row = rows[n]
        if rng.random() < 0.5:
            table.remove(row)
            table.add(row)
        else:
            status = "pending" if table.value(row, "status") == "paid" else "paid"
            rows[n] = table.changed_row(row, table.encode({"status": status}))
            table.replace(row, rows[n])
        for status in ("paid", "pending"):
            expected = [uid(n).int for n in sorted(rows) if table.value(rows[n], "status") == status]
            assert list(table.lookup("status", status) or ()) == expected
    assert table.lookup("parent_id", uid(1).int) == [uid(n).int for n in sorted(rows)]  # 64 keys: a list


def test_a_small_bucket_takes_less_than_a_list_grown_by_appends() -> None:
    table = Table(CHILD)
    for n in range(1, 6):
        child(table, n, "paid")
    bucket = table.indexes["status"]["paid"]
    grown: list[object] = []
    for key in bucket:
        grown.append(key)
    assert isinstance(bucket, tuple)
    assert sys.getsizeof(bucket) <= sys.getsizeof(grown) - 40  # 80 bytes against 120 (in two allocations)


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
