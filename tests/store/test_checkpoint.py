"""Checkpoint and rollback: undoing a bulk load spread over many commands."""

from __future__ import annotations

import pytest

from store import BatchRejected, Database, StoreActor, StoreClient
from tests.store.conftest import Rows, assert_indexes_consistent, uid


def parents(first: int, count: int) -> list[dict[str, object]]:
    return [{"id": uid(n), "email": f"p{n}@example.com", "name": f"P{n}"} for n in range(first, first + count)]


def children(first: int, count: int, parent: int) -> list[dict[str, object]]:
    return [
        {"id": uid(n), "parent_id": uid(parent), "label": f"c{n}", "status": "paid", "amount": "1.00"}
        for n in range(first, first + count)
    ]


def test_rollback_removes_exactly_the_rows_inserted_since_the_mark(db: Database, rows: Rows) -> None:
    before = rows.parent()
    rows.child(before["id"])
    mark = db.checkpoint()
    db.load([("parent", parents(100, 5)), ("child", children(200, 7, 100))])
    db.load([("child", children(300, 3, 101))])

    assert db.rollback(mark) == 15

    assert db.counts() == {"parent": 1, "child": 1, "note": 0}
    assert db.get("parent", before["id"]).data["email"] == before["email"]
    assert_indexes_consistent(db)
    assert db.table("child").lookup("parent_id", uid(100).int) == ()


def test_a_failing_chunk_after_good_ones_can_be_rolled_back_whole(db: Database) -> None:
    mark = db.checkpoint()
    db.load([("parent", parents(1, 3))])
    with pytest.raises(BatchRejected):
        db.load([("child", [*children(10, 2, 1), *children(20, 1, 99)])])  # parent 99 does not exist
    assert db.counts()["parent"] == 3

    db.rollback(mark)

    assert db.counts() == {"parent": 0, "child": 0, "note": 0}
    assert_indexes_consistent(db)
    db.load([("parent", parents(1, 3))])  # the keys are free again
    assert db.counts()["parent"] == 3


def test_rollback_to_a_mark_with_nothing_since_removes_nothing(db: Database, rows: Rows) -> None:
    rows.parent()
    assert db.rollback(db.checkpoint()) == 0
    assert db.counts()["parent"] == 1


async def test_the_client_takes_a_checkpoint_and_rolls_back(db: Database) -> None:
    actor = StoreActor(db)
    actor.start()
    client = StoreClient(actor)
    mark = await client.checkpoint()
    await client.load([("parent", parents(1, 4))])
    assert await client.rollback(mark) == 4
    assert (await client.counts())["parent"] == 0
    await actor.close()
