"""Staged transactions, bulk inserts and snapshots: how imports and exports see the store."""

from __future__ import annotations

from typing import Any

import pytest

from store import (
    BatchRejected,
    Conflict,
    Database,
    MissingReference,
    NotFound,
    Query,
    QueryParser,
    StoreActor,
    StoreClient,
)

from .conftest import CHILD, Rows, assert_indexes_consistent, uid


def parents(first: int, count: int) -> list[dict[str, Any]]:
    return [{"id": uid(n), "email": f"s{n}@example.com", "name": f"S{n}"} for n in range(first, first + count)]


def children(parent: int, first: int, count: int, status: str = "paid") -> list[dict[str, Any]]:
    return [
        {"id": uid(n), "parent_id": uid(parent), "label": f"c{n}", "status": status, "amount": "2.50"}
        for n in range(first, first + count)
    ]


def visible_total(db: Database, table: str, query: Query | None = None) -> int:
    return db.query(table, query or Query()).total


def test_staged_rows_are_invisible_until_commit_then_all_appear_at_once(db: Database, rows: Rows) -> None:
    rows.parent()
    transaction = db.begin()

    db.stage(transaction, "parent", parents(100, 3))
    db.stage(transaction, "child", children(100, 200, 4))

    assert db.counts() == {"parent": 1, "child": 0, "note": 0}
    assert visible_total(db, "parent") == 1
    assert visible_total(db, "child", QueryParser(CHILD).parse([("status", "paid")], None)) == 0
    with pytest.raises(NotFound):
        db.get("parent", uid(100))
    with pytest.raises(NotFound):
        db.children("parent", uid(100), "child", "parent_id", Query())
    assert len(db.snapshot(("parent", "child"))["child"]) == 0

    assert db.commit(transaction) == 7

    assert db.counts() == {"parent": 4, "child": 4, "note": 0}
    assert db.get("parent", uid(100)).data["name"] == "S100"
    assert db.children("parent", uid(100), "child", "parent_id", Query()).total == 4
    assert visible_total(db, "child", QueryParser(CHILD).parse([("status", "paid")], None)) == 4
    assert_indexes_consistent(db)


def test_others_cannot_reference_or_delete_around_a_staged_row(db: Database, rows: Rows) -> None:
    outsider = rows.parent()
    transaction = db.begin()
    db.stage(transaction, "parent", parents(100, 1))
    db.stage(transaction, "child", children(int(outsider["id"].replace("-", ""), 16), 300, 1))

    with pytest.raises(MissingReference):
        db.insert("child", children(100, 400, 1)[0])
    with pytest.raises(Conflict, match="import in progress"):
        db.delete("parent", outsider["id"], cascade=True)
    with pytest.raises(NotFound):
        db.update("parent", uid(100), {"name": "x"})
    with pytest.raises(NotFound):
        db.delete("parent", uid(100))


def test_a_bad_row_in_a_staged_slice_rejects_that_slice_only(db: Database) -> None:
    transaction = db.begin()
    db.stage(transaction, "parent", parents(100, 2))
    bad = [*parents(200, 2), {"id": uid(300), "email": "s100@example.com", "name": "duplicate"}]

    with pytest.raises(BatchRejected) as rejected:
        db.stage(transaction, "parent", bad)

    assert (rejected.value.table, rejected.value.index) == ("parent", 2)
    assert db.commit(transaction) == 2
    assert db.counts()["parent"] == 2
    assert_indexes_consistent(db)


def test_abort_removes_the_staged_rows_in_slices_and_leaves_nothing(db: Database, rows: Rows) -> None:
    rows.parent()
    before = db.snapshot(("parent", "child"))
    transaction = db.begin()
    db.stage(transaction, "parent", parents(100, 5))
    db.stage(transaction, "child", children(100, 200, 5))

    remaining = [db.abort(transaction, 4)]
    while remaining[-1]:
        remaining.append(db.abort(transaction, 4))

    assert remaining == [6, 2, 0]
    after = db.snapshot(("parent", "child"))
    assert [len(after[name]) for name in after] == [len(before[name]) for name in before]
    assert all(not table.staged for table in db.tables.values())
    with pytest.raises(NotFound):
        db.commit(transaction)
    assert_indexes_consistent(db)


def test_insert_each_keeps_the_good_rows_and_names_the_bad(db: Database) -> None:
    batch = [*parents(1, 2), {"id": uid(9), "email": "s1@EXAMPLE.com", "name": "dup"}, *parents(3, 1)]

    refused = db.insert_each("parent", batch)

    assert [index for index, _ in refused] == [2]
    assert "email" in refused[0][1]
    assert db.counts()["parent"] == 3


def test_a_snapshot_stays_as_it_was_while_writes_go_on(db: Database, rows: Rows) -> None:
    first = rows.parent(name="before")
    snapshot = db.snapshot(("parent",), reveal=True)["parent"]

    db.update("parent", first["id"], {"name": "after", "secret": "s3cret"})
    rows.parent()

    presented = snapshot.present(0, 10)
    assert len(snapshot) == 1
    assert presented[0]["name"] == "before"
    assert "secret" in presented[0]
    assert "secret" not in db.snapshot(("parent",))["parent"].present(0, 1)[0]


async def test_the_client_drives_a_transaction_through_the_actor(db: Database) -> None:
    actor = StoreActor(db)
    actor.start()
    client = StoreClient(actor)
    transaction = await client.begin()
    assert await client.stage(transaction, "parent", parents(1, 2)) == 2
    assert (await client.counts())["parent"] == 0
    assert await client.commit(transaction) == 2
    other = await client.begin()
    await client.stage(other, "parent", parents(10, 1))
    assert await client.abort(other, 100) == 0
    assert await client.insert_each("parent", parents(20, 1)) == []
    snapshot = await client.snapshot(("parent",))
    assert len(snapshot["parent"]) == 3
    await actor.close()
