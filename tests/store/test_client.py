"""The typed client: every store operation as one awaited call, errors as store errors, safe under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from store import (
    Conflict,
    Database,
    MissingReference,
    NotFound,
    PreconditionFailed,
    Query,
    QueryParser,
    StoreActor,
    StoreClient,
    StoreClosed,
    StoreRecovering,
)
from store.redis.client import RedisStore

from .conftest import CHILD, SPECS, Clock, assert_indexes_consistent, assert_redis_indexes_consistent, plain, uid


@pytest.fixture
def database() -> Database:
    return Database(SPECS, clock=Clock())


@pytest.fixture
async def embedded(database: Database) -> AsyncIterator[StoreClient]:
    actor = StoreActor(database, queue_size=16, put_timeout=5)
    actor.start()
    yield StoreClient(actor)
    await actor.close()


@pytest.fixture
def store(any_store: StoreClient) -> StoreClient:
    """Each test below runs on both backends (``any_store``) unless it asks for ``embedded``."""
    return any_store


def parent_values(n: int, **values: Any) -> dict[str, Any]:
    return {"id": uid(n), "email": f"p{n}@example.com", "name": f"P{n}", **values}


def child_values(n: int, parent: int, **values: Any) -> dict[str, Any]:
    return {"id": uid(n), "parent_id": uid(parent), "label": f"c{n}", "status": "pending", "amount": "5", **values}


async def test_every_operation_round_trips_through_the_client(store: StoreClient) -> None:
    assert await store.load([("parent", [parent_values(1), parent_values(2)])]) == {"parent": 2}
    created = await store.insert("child", child_values(10, 1, status="paid"), embed=("parent",))
    assert plain(created.data)["parent"]["email"] == "p1@example.com"
    assert plain(created.data)["amount"] == "5.00"

    fetched = await store.get("child", str(uid(10)), embed=("parent",))
    assert fetched == created

    query = QueryParser(CHILD).parse([("status", "paid")], "amount:desc")
    found = await store.find("child", query, embed=("parent",))
    assert ([plain(item)["label"] for item in found.items], found.total) == (["c10"], 1)

    children = await store.children("parent", uid(1), "child", "parent_id", Query())
    assert [item["label"] for item in children.items] == ["c10"]
    assert (await store.parent("child", uid(10), "parent_id")).data["email"] == "p1@example.com"

    moved = await store.update("child", uid(10), {"parent_id": uid(2)}, if_match=(created.tag,), embed=("parent",))
    assert plain(moved.data)["parent"]["email"] == "p2@example.com"
    assert moved.tag != created.tag

    assert await store.delete("parent", uid(2), cascade=True, if_match=("*",)) == 2
    assert await store.counts() == {"parent": 1, "child": 0, "note": 0}


async def test_store_errors_reach_the_caller_as_themselves(store: StoreClient) -> None:
    await store.insert("parent", parent_values(1))
    with pytest.raises(NotFound):
        await store.get("parent", uid(404))
    with pytest.raises(Conflict):
        await store.insert("parent", parent_values(2, email="P1@example.com"))
    with pytest.raises(MissingReference):
        await store.insert("child", child_values(10, 404))
    with pytest.raises(PreconditionFailed):
        await store.delete("parent", uid(1), if_match=("stale",))
    assert await store.counts() == {"parent": 1, "child": 0, "note": 0}


async def test_a_closed_store_refuses_calls(embedded: StoreClient) -> None:
    await embedded.actor.close()
    with pytest.raises(StoreClosed):
        await embedded.counts()


async def test_many_concurrent_inserts_all_land_with_consistent_indexes(store: StoreClient) -> None:
    await store.insert("parent", parent_values(1))
    await store.insert("parent", parent_values(2))
    many = 300
    snapshots = await asyncio.gather(
        *(
            store.insert("child", child_values(100 + n, 1 + n % 2, status="paid" if n % 3 else "shipped"))
            for n in range(many)
        )
    )
    assert len({snapshot.tag for snapshot in snapshots}) == many
    assert (await store.counts())["child"] == many
    assert (await store.find("child", Query())).total == many
    first = await store.children("parent", uid(1), "child", "parent_id", Query())
    second = await store.children("parent", uid(2), "child", "parent_id", Query())
    assert (first.total, second.total) == (many // 2, many // 2)
    shipped = await store.find("child", QueryParser(CHILD).parse([("status", "shipped")], None))
    assert shipped.total == many // 3
    if isinstance(store, RedisStore):
        await assert_redis_indexes_consistent(store)
    else:
        assert_indexes_consistent(store.actor.database)


async def test_concurrent_inserts_of_one_email_let_exactly_one_win(store: StoreClient) -> None:
    answers = await asyncio.gather(
        *(store.insert("parent", parent_values(n, email="Same@example.com")) for n in range(1, 21)),
        return_exceptions=True,
    )
    winners = [answer for answer in answers if not isinstance(answer, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(answer, Conflict) for answer in answers if answer not in winners)
    assert await store.counts() == {"parent": 1, "child": 0, "note": 0}


async def test_concurrent_updates_with_the_same_tag_let_exactly_one_win(store: StoreClient) -> None:
    tag = (await store.insert("parent", parent_values(1))).tag
    answers = await asyncio.gather(
        *(store.update("parent", uid(1), {"name": f"writer {n}"}, if_match=(tag,)) for n in range(10)),
        return_exceptions=True,
    )
    assert sum(not isinstance(answer, BaseException) for answer in answers) == 1
    assert sum(isinstance(answer, PreconditionFailed) for answer in answers) == 9
    assert (await store.get("parent", uid(1))).data["name"] == "writer 0"


async def test_a_client_held_recovering_refuses_every_call_until_released() -> None:
    actor = StoreActor(Database(SPECS))
    actor.start()
    client = StoreClient(actor)
    client.recovering = True
    with pytest.raises(StoreRecovering, match="recovering its data"):
        await client.counts()
    client.recovering = False
    assert await client.counts() == {"parent": 0, "child": 0, "note": 0}
    await actor.close()
