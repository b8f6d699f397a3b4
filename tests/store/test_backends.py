"""Both backends answer alike: one scenario run on the embedded actor and on Redis gives equal results.

Every answer (rows, tags, totals, the error class and its message) of a long
scenario of reads and writes is compared between the two backends, so any
difference in semantics shows up as a failing step. Redis-only properties
(staged imports invisible until committed, index sets kept exact, maxmemory and
lost connections as store errors, two clients on one Redis) follow.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from store import (
    BatchRejected,
    Conflict,
    Database,
    InsufficientStorage,
    NotFound,
    PreconditionFailed,
    Predicate,
    Query,
    QueryParser,
    SortKey,
    StoreActor,
    StoreClient,
    StoreError,
)
from store.errors import StoreUnavailable, Unsupported
from store.redis import connect
from store.redis.client import RedisStore
from store.redis.layout import Layout, key_text
from store.schema import Kind
from store.table import EncodedRows, Table
from tests.utils.redis_server import RedisServer, running_redis

from .conftest import CHILD, PARENT, SPECS, Clock, assert_redis_indexes_consistent, plain, uid

Scenario = Callable[[StoreClient], Awaitable[list[Any]]]


def parent(n: int, **values: Any) -> dict[str, Any]:
    return {"id": uid(n), "email": f"P{n}@example.com", "name": f"parent {n % 3}", "age": n % 4 or None, **values}


def child(n: int, owner: int, **values: Any) -> dict[str, Any]:
    statuses = ("pending", "paid", "shipped")
    return {
        "id": uid(n),
        "parent_id": uid(owner),
        "label": f"child {n % 5}",
        "status": statuses[n % 3],
        "amount": f"{n % 7}.25",
        "quantity": n % 2 or None,
        "address": {"city": f"city {n % 2}", "floor": n % 3},
        "due": None if n % 3 else datetime(2024, 6, 1 + n % 5, tzinfo=UTC),
        **values,
    }


async def scenario(store: StoreClient) -> list[Any]:
    """Many operations, each answer recorded as plain data (or the error's class and message)."""
    log: list[Any] = []

    async def step(name: str, action: Awaitable[Any]) -> Any:
        try:
            answer = await action
        except StoreError as error:
            log.append((name, type(error).__name__, error.message))
            return None
        if hasattr(answer, "tag"):
            log.append((name, plain(answer.data), answer.tag))
        elif hasattr(answer, "total"):
            log.append((name, plain(answer.items), answer.total, answer.page, answer.per_page))
        else:
            log.append((name, plain(answer)))
        return answer

    children = QueryParser(CHILD)
    parents = QueryParser(PARENT)

    async def sorted_pages(name: str) -> None:
        """Unfiltered pages sorted by one column: ordered indexes where the backend has them."""
        for sort in ("amount:desc", "amount", "due", "due:desc", "created_at:desc", "updated_at:desc"):
            for page in (1, 3, 5):
                query = children.parse([], sort, page, per_page=7)
                await step(f"{name}: {sort} page {page}", store.find("child", query, embed=("parent",)))
        await step(f"{name}: parents by update", store.find("parent", parents.parse([], "updated_at:desc")))

    await step("load", store.load([("parent", [parent(n) for n in range(1, 7)])]))
    await step("load children", store.load([("child", [child(10 + n, 1 + n % 4) for n in range(30)])]))
    await sorted_pages("sorted after load")
    await step("load refused", store.load([("parent", [parent(50)]), ("child", [child(51, 50), child(52, 99)])]))
    await step("duplicate email, other case", store.insert("parent", parent(60, email="p1@EXAMPLE.com")))
    await step("duplicate key", store.insert("parent", parent(1, email="new@example.com")))
    await step("bad value", store.insert("child", child(61, 1, status="lost")))
    await step("missing column", store.insert("parent", {"id": uid(62), "email": "x@example.com"}))
    await step("missing parent", store.insert("child", child(63, 404)))
    await step("insert embedded", store.insert("child", child(64, 2), embed=("parent",)))
    for filters, sort, page in (
        ([], None, 1),
        ([], None, 2),
        ([("status", "paid")], None, 1),
        ([("status__in", "paid,shipped")], None, 1),
        ([("status", "paid"), ("label", "child 1")], None, 1),
        ([("amount__gte", "3")], "amount:desc", 1),
        ([("address.city", "city 1")], "label,amount:desc", 1),
        ([("quantity", "null")], "quantity", 1),
        ([("label__contains", "D 3")], None, 1),
        ([("id", str(uid(12)))], None, 1),
        ([("parent_id", str(uid(2))), ("status__ne", "paid")], "created_at:desc", 1),
        ([("parent_id", str(uid(2))), ("status", "paid")], None, 1),
        ([("id__in", f"{uid(12)},{uid(14)},{uid(404)}")], None, 1),
        ([("status__in", "paid,cancelled"), ("id", str(uid(13)))], None, 1),
    ):
        query = children.parse(filters, sort, page, per_page=7)
        await step(f"find {filters} {sort} {page}", store.find("child", query, embed=("parent",)))
    await step("find by email", store.find("parent", parents.parse([("email", "p3@example.COM")], None)))
    await step(
        "find by emails",
        store.find("parent", parents.parse([("email__in", "p3@example.com,P4@x,p5@EXAMPLE.com")], None)),
    )
    await step("find sorted by name", store.find("parent", parents.parse([], "name,age:desc", per_page=4)))
    await step("children", store.children("parent", uid(1), "child", "parent_id", Query(per_page=50)))
    await step("children of none", store.children("parent", uid(404), "child", "parent_id", Query()))
    await step("parent of", store.parent("child", uid(11), "parent_id", embed=()))
    await step("parent bad field", store.parent("child", uid(11), "label"))
    got = await step("get embedded", store.get("child", uid(12), embed=("parent",)))
    await step("get guarded away", store.get("child", uid(12), guard=(Predicate(("status",), "eq", "shipped"),)))
    await step("get bad key", store.get("child", "not a uuid"))
    tag = got.tag if got else ""
    await step("update stale", store.update("child", uid(12), {"label": "x"}, if_match=("0.9-0.1",), embed=("parent",)))
    await step("update", store.update("child", uid(12), {"status": "shipped"}, if_match=(tag,), embed=("parent",)))
    await step("update same tag again", store.update("child", uid(12), {"label": "y"}, if_match=(tag,)))
    await step("move to other parent", store.update("child", uid(12), {"parent_id": uid(3)}, embed=("parent",)))
    await step("move to no parent", store.update("child", uid(12), {"parent_id": uid(404)}))
    await step("change key", store.update("child", uid(12), {"id": uid(13)}))
    await step("take an email", store.update("parent", uid(2), {"email": "P1@example.com"}))
    await step("change own email case", store.update("parent", uid(2), {"email": "p2@EXAMPLE.com"}))
    await step("free an email", store.update("parent", uid(3), {"email": "three@example.com"}))
    await step("reuse freed email", store.insert("parent", parent(70, email="p3@example.com")))
    await sorted_pages("sorted after updates")
    await step("after updates", store.find("child", children.parse([("status", "shipped")], None, per_page=50)))
    await step("delete referenced", store.delete("parent", uid(1)))
    await step("delete stale", store.delete("child", uid(11), if_match=("1.1",)))
    await step("delete cascade", store.delete("parent", uid(1), cascade=True, if_match=("*",)))
    await step("gone", store.get("parent", uid(1)))
    await step("purge blocked", store.purge("parent", (Predicate(("name",), "eq", "parent 0"),)))
    await step("purge", store.purge("child", (Predicate(("status",), "eq", "pending"),)))
    await step(
        "each",
        store.insert_each("parent", [parent(80), parent(81, email="p80@example.com"), parent(80), parent(82, age="x")]),
    )
    mark = await step("checkpoint", store.checkpoint())
    await step("insert after mark", store.insert("parent", parent(90)))
    await step("insert child after mark", store.insert("child", child(91, 90)))
    await step("rollback", store.rollback(mark or {}))
    await step("counts", store.counts())
    snapshot = await store.snapshot(("parent", "child"))
    log.append(("snapshot", {name: plain(table.present(0, len(table))) for name, table in snapshot.items()}))
    return log


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    connection = Redis.from_url(redis_server.url)
    await connection.flushdb()
    store = RedisStore(connection, SPECS, clock=Clock())
    yield store
    await store.close()


async def test_every_answer_of_a_long_scenario_is_the_same_on_both_backends(redis_store: RedisStore) -> None:
    actor = StoreActor(Database(SPECS, clock=Clock()))
    actor.start()
    try:
        expected = await scenario(StoreClient(actor))
    finally:
        await actor.close()
    answers = await scenario(redis_store)
    for want, got in zip(expected, answers, strict=True):
        assert got == want
    for column in ("amount", "due", "created_at", "updated_at"):  # those pages came from ordered sets
        assert await redis_store.redis.exists(f"memdb:ordered:child:{column}")
    await assert_redis_indexes_consistent(redis_store)


async def test_rows_given_out_of_order_are_listed_in_creation_order(any_store: StoreClient) -> None:
    """Rows with explicit creation times inserted out of order: the insertion-order shortcut must not apply."""
    times = (datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC))
    for n, created in enumerate(times, start=1):
        await any_store.insert("parent", parent(n, created_at=created))
    page = await any_store.find("parent", Query())
    assert [item["id"] for item in page.items] == [str(uid(2)), str(uid(3)), str(uid(1))]


async def test_a_staged_import_is_invisible_until_its_commit_shows_all_of_it(redis_store: RedisStore) -> None:
    await redis_store.insert("parent", parent(1))
    newest_first = Query(sort=(SortKey("created_at", descending=True),))
    assert (await redis_store.find("parent", newest_first)).total == 1  # builds the ordered sets
    transaction = await redis_store.begin()
    assert await redis_store.stage(transaction, "parent", [parent(2), parent(3)]) == 2
    assert await redis_store.stage(transaction, "child", [child(10, 2)]) == 1  # references a staged parent
    with pytest.raises(BatchRejected, match="parent\\[1\\]: a parent with this email already exists"):
        await redis_store.stage(transaction, "parent", [parent(4), parent(5, email="p1@example.com")])
    assert await redis_store.counts() == {"parent": 1, "child": 0, "note": 0}
    assert await redis_store.trim_pools() == 0  # Redis holds the rows: this process keeps no pools to trim
    with pytest.raises(NotFound):
        await redis_store.get("parent", uid(2))
    with pytest.raises(StoreError, match="already exists"):  # a staged row holds its key and unique values
        await redis_store.insert("parent", parent(2, email="other@example.com"))
    assert (await redis_store.find("parent", Query())).total == 1
    assert (await redis_store.find("parent", newest_first)).total == 1
    assert await redis_store.commit(transaction) == 3
    assert await redis_store.counts() == {"parent": 3, "child": 1, "note": 0}
    listed = await redis_store.find("parent", newest_first)
    assert [item["id"] for item in listed.items] == [str(uid(n)) for n in (2, 3, 1)]  # one load time, by insertion
    assert (await redis_store.get("child", uid(10), embed=("parent",))).data["parent"]["id"] == str(uid(2))
    with pytest.raises(NotFound):
        await redis_store.commit(transaction)
    await assert_redis_indexes_consistent(redis_store)


async def test_an_aborted_import_leaves_nothing(redis_store: RedisStore) -> None:
    transaction = await redis_store.begin()
    await redis_store.stage(transaction, "parent", [parent(n) for n in range(1, 6)])
    await redis_store.stage(transaction, "child", [child(10, 1)])
    assert await redis_store.abort(transaction, 4) == 2
    assert await redis_store.abort(transaction, 4) == 0
    with pytest.raises(NotFound):
        await redis_store.stage(transaction, "parent", [parent(7)])
    assert await redis_store.counts() == {"parent": 0, "child": 0, "note": 0}
    assert await redis_store.redis.keys("memdb:r:*") == []
    await assert_redis_indexes_consistent(redis_store)


async def test_pre_encoded_rows_load_as_the_codecs_would_have_encoded_them(redis_store: RedisStore) -> None:
    table = Table(PARENT)
    rows = EncodedRows([table.encode(parent(1)), table.encode(parent(2))])
    assert await redis_store.load([("parent", rows)]) == {"parent": 2}
    assert (await redis_store.get("parent", uid(2))).data["email"] == "P2@example.com"


async def test_two_clients_on_one_redis_let_exactly_one_conflicting_write_win(
    redis_store: RedisStore, redis_server: RedisServer
) -> None:
    other = RedisStore(Redis.from_url(redis_server.url), SPECS)
    clients = (redis_store, other)
    try:
        inserts = await asyncio.gather(
            *(clients[n % 2].insert("parent", parent(n, email="same@example.com")) for n in range(20)),
            return_exceptions=True,
        )
        winners = [answer for answer in inserts if not isinstance(answer, BaseException)]
        assert len(winners) == 1
        assert all(isinstance(answer, Conflict) for answer in inserts if answer not in winners)
        key, tag = winners[0].data["id"], winners[0].tag
        updates = await asyncio.gather(
            *(clients[n % 2].update("parent", key, {"name": f"writer {n}"}, if_match=(tag,)) for n in range(10)),
            return_exceptions=True,
        )
        assert sum(not isinstance(answer, BaseException) for answer in updates) == 1
        assert sum(isinstance(answer, PreconditionFailed) for answer in updates) == 9
    finally:
        await other.close()


async def test_a_full_redis_refuses_new_rows_as_insufficient_storage_but_deletes_go_on() -> None:
    with running_redis("--maxmemory", "2mb", "--maxmemory-policy", "noeviction") as server:
        store = RedisStore(Redis.from_url(server.url), SPECS)
        try:
            await store.insert("parent", parent(1))
            refusal = None
            for n in range(2, 1000):  # about 100 kB a load: Redis fills up long before the last one
                try:
                    await store.load([("parent", [parent(n * 1000 + k, name="x" * 400) for k in range(200)])])
                except InsufficientStorage as error:
                    refusal = error
                    break
            assert refusal is not None
            assert await store.delete("parent", uid(1)) == 1
        finally:
            await store.close()


async def test_a_lost_redis_is_reported_as_unavailable_and_the_client_reconnects() -> None:
    with running_redis() as server:
        store = RedisStore(Redis.from_url(server.url), SPECS)
        try:
            await store.insert("parent", parent(1))
            server.stop()
            with pytest.raises(StoreUnavailable, match="cannot be reached"):
                await store.get("parent", uid(1))
            assert not await store.ping()
            server.start()
            assert await store.ping()
            assert await store.counts() == {"parent": 0, "child": 0, "note": 0}  # no persistence in this test
        finally:
            await store.close()


async def test_sorting_by_other_columns_matches_a_stable_sort(any_store: StoreClient) -> None:
    await any_store.load([("parent", [parent(n) for n in range(1, 12)])])
    page = await any_store.find("parent", Query(sort=(SortKey("age", descending=True),), per_page=5, page=2))
    ages = [item["age"] for item in page.items]
    assert (page.total, ages) == (11, [2, 1, 1, 1, None])  # ages 1,2,3,None repeating; nulls last, ties by insertion
    assert [item["id"] for item in page.items] == [str(uid(n)) for n in (10, 1, 5, 9, 4)]


async def test_a_node_whose_clock_is_behind_never_writes_an_earlier_time(
    redis_store: RedisStore, redis_server: RedisServer
) -> None:
    behind = RedisStore(Redis.from_url(redis_server.url), SPECS, clock=Clock(datetime(2020, 1, 1, tzinfo=UTC)))
    try:
        first = await redis_store.insert("parent", parent(1))
        second = await behind.insert("parent", parent(2, name='a name with "quotes" and \\u0000'))
        assert second.data["created_at"] == first.data["created_at"]
        assert second.data["updated_at"] == first.data["updated_at"]
        assert (await redis_store.get("parent", uid(2))) == second
        changed = await behind.update("parent", uid(1), {"age": 5})
        assert changed.data["updated_at"] >= first.data["updated_at"]
        assert (await redis_store.get("parent", uid(1))) == changed
        listed = await behind.find("parent", Query())
        assert [item["id"] for item in listed.items] == [str(uid(1)), str(uid(2))]
    finally:
        await behind.close()


async def test_changes_count_writes_to_existing_rows_of_each_table_by_any_client(
    redis_store: RedisStore, redis_server: RedisServer
) -> None:
    other = RedisStore(Redis.from_url(redis_server.url), SPECS)
    try:
        await redis_store.insert("parent", parent(1))
        await redis_store.insert("child", child(10, 1))
        before = await redis_store.changes(("parent", "child"))
        assert before == (0, 0)  # new rows change nothing anyone cached
        await other.update("parent", uid(1), {"name": "renamed"})
        assert await redis_store.changes(("parent", "child")) == (1, 0)
        await other.delete("parent", uid(1), cascade=True)
        assert await redis_store.changes(("parent", "child")) == (2, 1)
    finally:
        await other.close()


async def test_a_write_whose_rows_changed_meanwhile_is_prepared_again_on_the_fresh_rows(
    redis_store: RedisStore, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another node writes between this node's read and its script: the script refuses, the write is redone."""
    other = RedisStore(Redis.from_url(redis_server.url), SPECS)
    await redis_store.load([("parent", [parent(1), parent(2)]), ("child", [child(10, 1), child(11, 2)])])
    reads = redis_store._parents
    pending: list[Callable[[], Awaitable[Any]]] = []

    async def interfered(*args: Any) -> Any:
        found = await reads(*args)
        if pending:
            await pending.pop()()
        return found

    monkeypatch.setattr(redis_store, "_parents", interfered)
    try:
        pending.append(lambda: other.update("parent", uid(1), {"name": "changed by another node"}))
        created = await redis_store.insert("child", child(12, 1), embed=("parent",))
        assert created.data["parent"]["name"] == "changed by another node"
        stored = await other.get("child", uid(12), embed=("parent",))
        assert (plain(created.data), created.tag) == (plain(stored.data), stored.tag)
        pending.append(lambda: other.update("child", uid(10), {"label": "changed by another node"}))
        updated = await redis_store.update("child", uid(10), {"quantity": 7})
        assert (updated.data["label"], updated.data["quantity"], updated.tag) == ("changed by another node", 7, "0.3")
        pending.append(lambda: other.update("child", uid(11), {"label": "changed again"}))
        assert await redis_store.delete("child", uid(11)) == 1
        assert not pending
    finally:
        await other.close()


async def test_a_purge_redone_when_a_matching_row_changed_meanwhile(
    redis_store: RedisStore, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = RedisStore(Redis.from_url(redis_server.url), SPECS)
    await redis_store.load([("parent", [parent(n) for n in range(1, 5)])])
    run = redis_store._run
    calls = 0

    async def interfered(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        found = await run(*args, **kwargs)
        calls += 1
        if calls == 1:
            await other.update("parent", uid(3), {"age": None})  # still matches, at another version
        return found

    monkeypatch.setattr(redis_store, "_run", interfered)
    try:
        assert await redis_store.purge("parent", (Predicate(("name",), "eq", "parent 0"),)) == 1
        assert calls == 2
        assert await redis_store.purge("parent", (Predicate(("name",), "eq", "nobody"),)) == 0
    finally:
        await other.close()


async def test_rows_an_import_holds_cannot_lose_their_parent_and_refused_slices_are_taken_back(
    redis_store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("store.redis.client.BATCH", 2)
    await redis_store.insert("parent", parent(1))
    transaction = await redis_store.begin()
    await redis_store.stage(transaction, "child", [child(10, 1)])
    with pytest.raises(Conflict, match="referenced by an import in progress"):
        await redis_store.delete("parent", uid(1), cascade=True)
    assert (await redis_store.find("child", Query((Predicate(("id",), "eq", uid(10)),)))).total == 0
    rows = [parent(2), parent(3), parent(4), parent(5, email="p1@example.com"), parent(6)]
    with pytest.raises(BatchRejected, match=r"parent\[3\]"):
        await redis_store.stage(transaction, "parent", rows)  # the first slice of two was staged, then taken back
    assert await redis_store.stage(transaction, "parent", [parent(2)]) == 1  # the transaction is still open
    assert await redis_store.commit(transaction) == 2
    assert await redis_store.counts() == {"parent": 2, "child": 1, "note": 0}
    with pytest.raises(NotFound):
        await redis_store.abort(transaction, 10)
    await assert_redis_indexes_consistent(redis_store)


async def test_watchers_see_every_write_the_redis_client_applies(redis_server: RedisServer) -> None:
    store = connect(redis_server.url, SPECS)
    seen: list[str] = []
    store.watch(lambda command: seen.append(command.op))
    try:
        await store.redis.flushdb()
        await store.insert("parent", parent(1))
        await store.update("parent", uid(1), {"age": 3})
        with pytest.raises(NotFound):
            await store.delete("parent", uid(2))
        assert seen == ["insert", "update", "delete"]
    finally:
        await store.close()


def test_index_keys_spell_each_kind_of_value_one_way() -> None:
    assert key_text(Kind.BOOL, True) == "true"
    assert key_text(Kind.BOOL, False) == "false"
    assert key_text(Kind.JSON, b'{"a":1}') == '{"a":1}'
    assert key_text(Kind.UUID, 255) == "0" * 30 + "ff"
    assert key_text(Kind.INT, -3) == "-3"


def test_a_packed_row_unpacks_to_the_same_tuple_with_integers_past_64_bits_and_nulls() -> None:
    layout = Layout("memdb:", Table(CHILD))
    table = layout.table
    for quantity, address in ((2**70, {"city": "x"}), (-(2**64), None), (None, None)):
        encoded = table.encode(child(10, 1, quantity=quantity, address=address))
        encoded.update(dict.fromkeys(table.auto_columns, 1_733_400_000_000_000))
        row = (7, 2, *table.new_row(encoded)[2:])
        packed, _ = layout.pack(row, ())
        assert layout.unpack(b"7", b"2", packed) == row


async def test_an_operation_only_the_embedded_store_has_is_refused_clearly_on_redis(redis_store: RedisStore) -> None:
    with pytest.raises(Unsupported, match="not available with the store on Redis"):
        await StoreClient.counts(redis_store)  # the embedded client's own method, as a new one would be
    refused = (
        redis_store.take_snapshot("clean", ("users",)),
        redis_store.restore_snapshot("clean"),
        redis_store.drop_snapshot("clean"),
        redis_store.snapshots(),
        redis_store.describe_snapshot("clean"),
    )
    for call in refused:  # named snapshots live in the embedded actor only
        with pytest.raises(Unsupported, match="not available with the store on Redis"):
            await call
    assert redis_store.recovering is False


async def test_an_if_match_on_an_embedded_tag_fails_if_the_old_parent_changed_before_the_write(
    redis_store: RedisStore, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tag checked includes the old parent's; moving the row elsewhere must not skip re-checking it."""
    other = RedisStore(Redis.from_url(redis_server.url), SPECS)
    await redis_store.load([("parent", [parent(1), parent(2)]), ("child", [child(10, 1)])])
    tag = (await redis_store.get("child", uid(10), embed=("parent",))).tag
    reads = redis_store._parents
    pending = [lambda: other.update("parent", uid(1), {"name": "changed by another node"})]

    async def interfered(*args: Any) -> Any:
        found = await reads(*args)
        if pending:
            await pending.pop()()
        return found

    monkeypatch.setattr(redis_store, "_parents", interfered)
    try:
        with pytest.raises(PreconditionFailed):
            await redis_store.update("child", uid(10), {"parent_id": uid(2)}, if_match=(tag,), embed=("parent",))
        assert (await other.get("child", uid(10))).data["parent_id"] == str(uid(1))
    finally:
        await other.close()


async def test_a_page_embeds_the_parent_a_row_names_now_and_that_of_rows_written_before_parents_were_kept(
    redis_store: RedisStore,
) -> None:
    await redis_store.load([("parent", [parent(1), parent(2)]), ("child", [child(10, 1), child(11, 1)])])
    await redis_store.update("child", uid(10), {"parent_id": uid(2)})
    # A row as an earlier version wrote it: no 'p:' fields, the parent only in its index entries.
    await redis_store.redis.hdel(f"memdb:r:child:{key_text(Kind.UUID, uid(11).int)}", "p:parent_id")
    page = await redis_store.find("child", Query(()), embed=("parent",))
    assert [(item["id"], item["parent"]["id"]) for item in page.items] == [
        (str(uid(10)), str(uid(2))),
        (str(uid(11)), str(uid(1))),
    ]
