"""Sharing equal values between rows (store.pool) and what the table does with it."""

from __future__ import annotations

import gc
import sys
from typing import Any
from uuid import UUID

from store import Database
from store.pool import Pool
from store.table import Table
from tests.store.conftest import CHILD, PARENT, Rows, uid


def fresh(text: str) -> str:
    """An equal string that is a different object (literals and small strings may be shared already)."""
    return "".join(list(text))


def test_equal_values_come_back_as_one_object() -> None:
    pool = Pool()
    first = pool.share(fresh("London, United Kingdom"))
    second = pool.share(fresh("London, United Kingdom"))
    assert first == second
    assert first is second
    assert len(pool) == 1


def test_a_sweep_forgets_only_values_nothing_else_holds() -> None:
    pool = Pool()
    kept = [pool.share(fresh(f"kept {n}")) for n in range(3)]
    for n in range(5):
        pool.share(fresh(f"dropped {n}"))
    assert pool.sweep() == 5
    assert len(pool) == 3
    assert pool.share(fresh("kept 1")) is kept[1]
    del kept
    assert pool.sweep() == 3
    assert len(pool) == 0


def test_a_trim_forgets_the_values_one_holder_has_and_keeps_sharing_the_others() -> None:
    pool = Pool()
    single = pool.share(fresh("held once"))
    shared = [pool.share(fresh("held twice")) for _ in range(2)]
    pool.share(fresh("held by nothing"))
    assert pool.trim() == 2
    assert len(pool) == 1
    assert pool.share(fresh("held twice")) is shared[0]
    again = pool.share(fresh("held once"))
    assert again == single
    assert again is not single  # the one holder keeps its object; the next equal value starts a new one
    assert pool.share(fresh("held once")) is again


def test_trimming_a_database_s_pools_keeps_every_row_and_the_sharing_between_rows(db: Database, rows: Rows) -> None:
    parent = rows.parent()
    for n in range(4):
        rows.child(parent["id"], label=fresh("Blue Widget"), address={"city": f"City {n % 3}"})
    table = db.table("child")
    before = list(table.rows.values())
    # The addresses of cities 1 and 2 and the parent's name (one row each); the amount, a small int, is shared anyway.
    assert db.trim_pools() == 4
    assert len(db.table("parent").pools["name"]) == 0
    assert list(table.rows.values()) == before  # the very rows, unchanged
    assert len(table.pools["address"]) == 1
    assert len(table.pools["label"]) == 1
    stored = list(table.rows.values())
    label, address = table.position["label"], table.position["address"]
    assert stored[0][label] is stored[3][label]
    assert stored[0][address] is stored[3][address]


def test_a_pool_sweeps_itself_as_it_grows_so_dead_values_stay_bounded() -> None:
    pool = Pool()
    for n in range(50_000):
        pool.share(fresh(f"value {n}"))  # each dropped at once by the caller
    assert len(pool) <= 4097


def test_rows_share_repeated_strings_and_json_but_not_unique_ones(db: Database, rows: Rows) -> None:
    parent = rows.parent()
    address = {"city": "Paris", "zip": "75001"}
    for n in range(3):
        rows.child(parent["id"], label=fresh("Blue Widget"), address=dict(address), metadata={"n": n % 2})
    table = db.table("child")
    stored = list(table.rows.values())
    label, address_at, metadata = (table.position[name] for name in ("label", "address", "metadata"))
    assert stored[0][label] is stored[1][label] is stored[2][label]
    assert stored[0][address_at] is stored[2][address_at]
    assert stored[0][metadata] is stored[2][metadata]
    assert stored[0][metadata] is not stored[1][metadata]
    assert "email" not in db.table("parent").pools  # unique: every value distinct, sharing would only cost
    assert "id" not in table.pools


def test_a_foreign_key_holds_the_referenced_rows_own_key_object(db: Database, rows: Rows) -> None:
    parent = rows.parent()
    rows.child(parent["id"])
    parents, children = db.table("parent"), db.table("child")
    (parent_row,) = parents.rows.values()
    (child_row,) = children.rows.values()
    assert child_row[children.position["parent_id"]] is parent_row[parents.pk_position]


def test_equal_timestamps_in_one_row_are_one_object() -> None:
    table = Table(CHILD)
    moment = 1_700_000_000_000_000
    row = table.new_row(
        table.encode(
            {
                "id": uid(1),
                "parent_id": uid(2),
                "label": "x",
                "status": "paid",
                "amount": "1.00",
                "created_at": moment,
                "updated_at": int(str(moment)),
                "due": int(str(moment)),
            }
        )
    )
    created, updated, due = (row[table.position[name]] for name in ("created_at", "updated_at", "due"))
    assert created is updated is due


def test_deleted_rows_give_their_pooled_values_back(db: Database, rows: Rows) -> None:
    parent = rows.parent()
    children = [rows.child(parent["id"], label=f"one-off label {n}") for n in range(10)]
    table = db.table("child")
    for child in children:
        db.delete("child", child["id"])
    assert table.sweep_pools() >= 10
    assert all(len(pool) == 0 for pool in table.pools.values())


def test_json_values_are_stored_at_their_own_size() -> None:
    table = Table(CHILD)
    encoded: Any = table.encode({"metadata": {"k": "v"}})["metadata"]
    assert encoded == b'{"k":"v"}'
    gc.collect()
    # orjson's own result would sit in a block of several kilobytes; the stored copy is exact.
    assert sys.getsizeof(encoded) < 64


def test_parent_spec_pools_its_plain_strings() -> None:
    assert set(Table(PARENT).pools) == {"name", "secret"}


def test_equal_amounts_of_money_are_one_object(db: Database, rows: Rows) -> None:
    parent = rows.parent()
    first, second = (rows.child(parent["id"], amount="39.99") for _ in range(2))
    table = db.table("child")

    amounts = [table.value(table.rows[UUID(str(child["id"])).int], "amount") for child in (first, second)]

    assert amounts[0] == 3999
    assert amounts[0] is amounts[1]


def test_a_sweep_forgets_small_amounts_python_shares_anyway(db: Database, rows: Rows) -> None:
    parent = rows.parent()
    rows.child(parent["id"], amount="2.50")  # 250 cents: one of CPython's cached small ints

    db.table("child").sweep_pools()

    assert len(db.table("child").pools["amount"]) == 0
