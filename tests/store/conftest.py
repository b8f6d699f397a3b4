"""Shared fixtures for the store tests: small hand-built tables, a ticking clock, a database, row builders.

The specs here are written out by hand (not derived from the API's models) so the
store is tested on its own terms: ``parent`` has a unique case-insensitive email,
a nullable int, a hidden column and auto timestamps; ``child`` references it and
has an indexed enum, money with two decimal places, a JSON column with declared
fields and a free one; ``note`` references ``child``, so cascades go two levels.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
import pytest
from redis.asyncio import Redis

from store import Auto, Column, Database, ForeignKey, Kind, StoreActor, StoreClient, TableSpec
from store.redis.client import RedisStore
from store.table import SMALL_BUCKET, fold
from tests.utils.redis_server import RedisServer, running_redis

STATUSES = ("pending", "paid", "shipped", "cancelled")
START = datetime(2024, 1, 1, tzinfo=UTC)


def _timestamps() -> tuple[Column, Column]:
    return (
        Column("created_at", Kind.DATETIME, auto=Auto.ON_CREATE),
        Column("updated_at", Kind.DATETIME, auto=Auto.ON_WRITE),
    )


PARENT = TableSpec(
    "parent",
    (
        Column("id", Kind.UUID),
        Column("email", Kind.STR, unique=True, case_insensitive=True),
        Column("name", Kind.STR),
        Column("age", Kind.INT, nullable=True),
        Column("active", Kind.BOOL, nullable=True),
        Column("secret", Kind.STR, nullable=True, hidden=True),
        *_timestamps(),
    ),
)

CHILD = TableSpec(
    "child",
    (
        Column("id", Kind.UUID),
        Column("parent_id", Kind.UUID),
        Column("label", Kind.STR),
        Column("status", Kind.ENUM, indexed=True, choices=STATUSES),
        Column("amount", Kind.DECIMAL, scale=2),
        Column("quantity", Kind.INT, nullable=True),
        Column("address", Kind.JSON, nullable=True, children={"city": Kind.STR, "zip": Kind.STR, "floor": Kind.INT}),
        Column("metadata", Kind.JSON, nullable=True),
        Column("due", Kind.DATETIME, nullable=True),
        *_timestamps(),
    ),
    foreign_keys=(ForeignKey("parent_id", "parent", "parent"),),
)

NOTE = TableSpec(
    "note",
    (
        Column("id", Kind.UUID),
        Column("child_id", Kind.UUID),
        Column("text", Kind.STR),
        Column("created_at", Kind.DATETIME, auto=Auto.ON_CREATE),
    ),
    foreign_keys=(ForeignKey("child_id", "child", "child"),),
)

SPECS = (PARENT, CHILD, NOTE)


def uid(n: int) -> UUID:
    """A readable, deterministic UUID."""
    return UUID(int=n)


def plain(value: Any) -> Any:
    """JSON-ready store data (JSON columns are orjson fragments) as plain Python values."""
    return orjson.loads(orjson.dumps(value))


def assert_indexes_consistent(db: Database) -> None:
    """Every unique and secondary index says exactly what the rows say: buckets in insertion order, none empty."""
    for table in db.tables.values():
        for name, unique in table.unique.items():
            expected_unique = {}
            for pk, row in table.rows.items():
                value = table.value(row, name)
                if value is not None:
                    expected_unique[fold(value) if name in table.folded else value] = pk
            assert unique == expected_unique, f"{table.name}.{name} unique index"
        for name, buckets in table.indexes.items():
            expected: dict[Any, list[Any]] = {}
            for row in sorted(table.rows.values(), key=lambda row: row[0]):
                value = table.value(row, name)
                expected.setdefault(fold(value) if name in table.folded else value, []).append(row[table.pk_position])
            held = {value: list(bucket) for value, bucket in buckets.items()}
            assert held == expected, f"{table.name}.{name} index (buckets in insertion order)"
            # Small buckets are tuples (a list once a bucket has grown past that; it stays one).
            assert all(isinstance(bucket, list) for bucket in buckets.values() if len(bucket) > SMALL_BUCKET)


class Clock:
    """Reads as ``now`` and then moves ``step`` forward; tests may set ``now`` to jump."""

    def __init__(self, start: datetime = START, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        current = self.now
        self.now += self.step
        return current


class Rows:
    """Inserts rows with sensible defaults, so each test says only what matters to it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._numbers: Iterator[int] = itertools.count(1)

    def parent(self, **values: Any) -> dict[str, Any]:
        n = next(self._numbers)
        row = {"id": uid(n), "email": f"p{n}@example.com", "name": f"Parent {n}", **values}
        return plain(self.db.insert("parent", row).data)

    def child(self, parent_id: Any, **values: Any) -> dict[str, Any]:
        n = next(self._numbers)
        row = {"id": uid(n), "parent_id": parent_id, "label": f"child {n}", "status": "pending", "amount": "1.00"}
        return plain(self.db.insert("child", {**row, **values}).data)

    def note(self, child_id: Any, **values: Any) -> dict[str, Any]:
        n = next(self._numbers)
        row = {"id": uid(n), "child_id": child_id, "text": f"note {n}", **values}
        return plain(self.db.insert("note", row).data)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(clock: Clock) -> Database:
    return Database(SPECS, clock=clock)


@pytest.fixture
def rows(db: Database) -> Rows:
    return Rows(db)


# -- both backends behind the one client API ------------------------------------------------------

BACKENDS = ("embedded", "redis")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One ``redis-server`` for the session (a free loopback port, files in a temporary directory)."""
    with running_redis() as server:
        yield server


@pytest.fixture(params=BACKENDS)
async def any_store(request: pytest.FixtureRequest) -> AsyncIterator[StoreClient]:
    """A store client on each backend in turn: the embedded actor, then Redis (emptied first)."""
    if request.param == "embedded":
        actor = StoreActor(Database(SPECS, clock=Clock()), queue_size=16, put_timeout=5)
        actor.start()
        yield StoreClient(actor)
        await actor.close()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    connection = Redis.from_url(server.url)
    await connection.flushdb()
    store = RedisStore(connection, SPECS, clock=Clock())
    yield store
    await store.close()


async def assert_redis_indexes_consistent(store: RedisStore) -> None:
    """Every unique hash and equality set in Redis says exactly what the rows say, in insertion order."""
    snapshots = await store.snapshot(tuple(store.layouts))
    redis = store.redis
    for name, layout in store.layouts.items():
        rows = sorted(snapshots[name].rows, key=lambda row: row[0])
        table = layout.table
        for column in table.unique:
            expected = {
                layout.unique_field(column, table.value(row, column)): layout.pk_text(row[table.pk_position])
                for row in rows
                if table.value(row, column) is not None
            }
            held = {
                key.decode(): value.decode() for key, value in (await redis.hgetall(layout.unique_hash(column))).items()
            }
            assert held == expected, f"{name}.{column} unique hash"
        for column in table.indexes:
            buckets: dict[str, list[str]] = {}
            for row in rows:
                value = table.value(row, column)
                if value is not None:
                    buckets.setdefault(layout.index_key(column, value), []).append(
                        layout.pk_text(row[table.pk_position])
                    )
            found = {key.decode() for key in await redis.keys(f"{layout.index_prefix}{name}:{column}:*")}
            assert found == set(buckets), f"{name}.{column} index sets (none empty, none missing)"
            for key, members in buckets.items():
                assert [m.decode() for m in await redis.zrange(key, 0, -1)] == members, f"{key} in insertion order"
        for column in table.columns:
            if not await redis.exists(f"{store.prefix}ordered:{name}:{column.name}"):
                continue
            position = table.position[column.name]

            label = {row[0]: f"{row[0]:016d}:{layout.pk_text(row[table.pk_position])}" for row in rows}
            valued = [row for row in rows if row[position] is not None]
            expected_sets = {
                "asc": [label[row[0]] for row in sorted(valued, key=lambda row: (row[position], row[0]))],
                "desc": [label[row[0]] for row in sorted(valued, key=lambda row: (-row[position], row[0]))],
                "null": [label[row[0]] for row in rows if row[position] is None],
            }
            for kind, expected_members in expected_sets.items():
                key = f"{store.prefix}o:{name}:{column.name}:{kind}"
                found_members = [m.decode() for m in await redis.zrange(key, 0, -1)]
                assert found_members == expected_members, f"{key}: the rows in that order"
