"""Named snapshots across restarts: a restore that was acknowledged survives whatever compactions came between."""

from __future__ import annotations

import pickle
import random
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from store import Auto, Column, Conflict, Database, Kind, MissingReference, NotFound, TableSpec
from store.commands import RestoreSnapshot
from store.snapshot import HEADER, SnapshotError, load_snapshot, write_snapshot
from store.snapshots import take
from store.snapshotter import Snapshotter

from .conftest import SPECS, STATUSES, uid
from .test_log import Node, child, parent, recover, state


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "data"


def compactor(node: Node) -> Snapshotter:
    return Snapshotter(node.db, node.recovery.log, 1 << 30)


async def test_a_restore_after_a_compaction_survives_a_crash(directory: Path) -> None:
    async with Node(directory) as node:
        await node.store.load([("parent", [parent(1), parent(2)]), ("child", [child(3, 1)])])
        await node.store.take_snapshot("baseline", ("parent", "child"))
        await compactor(node).take()
        await node.store.update("parent", parent(1)["id"], {"name": "changed"})
        await node.store.delete("parent", parent(2)["id"])
        await node.store.insert("parent", parent(4))
        await node.store.restore_snapshot("baseline")
        restored = state(node.db)
    again = await recover(directory)
    assert again.recovery.failed == 0
    assert state(again.db) == restored


async def test_the_first_change_after_a_restore_and_a_compaction_gets_the_same_tag_after_a_restart(
    directory: Path,
) -> None:
    async with Node(directory) as node:
        await node.store.insert("parent", parent(1))
        await node.store.take_snapshot("baseline", ("parent",))
        for n in range(3):
            await node.store.update("parent", uid(1), {"name": f"v{n}"})
        await node.store.restore_snapshot("baseline")  # versions 2-4 were given out: the next change skips them
        await compactor(node).take()
        await node.store.update("parent", uid(1), {"name": "after"})
        live = node.db.tables["parent"].rows[uid(1).int]
    again = await recover(directory)
    assert live[1] == 5  # the version a tag is made of: past every one given out before the restore
    assert again.db.tables["parent"].rows[uid(1).int] == live


def named(db: Database) -> list[tuple[str, int, dict[str, Any]]]:
    """Every named snapshot, oldest first, with everything a restore of it puts back."""
    return [
        (
            snapshot.name,
            snapshot.created_at,
            {
                name: (
                    image.keys,
                    image.rows,
                    image.unique,
                    {column: (b.values, b.keys, list(b.lengths)) for column, b in image.indexes.items()},
                    image.in_default_order,
                    image.last_default,
                )
                for name, image in snapshot.images.items()
            },
        )
        for snapshot in db.snapshots.values()
    ]


def everything(db: Database) -> tuple[Any, ...]:
    """The tables (rows with their tags), the counters the next write's tag depends on, and the named snapshots."""
    counters = {name: table.order_state() for name, table in db.tables.items()}
    return state(db), counters, named(db)


async def _random_history(node: Node, rng: random.Random, numbers: Iterator[int], steps: int) -> None:
    store, compactions = node.store, compactor(node)
    parents = list(node.db.tables["parent"].rows)
    children = list(node.db.tables["child"].rows)
    for _ in range(steps):
        choice = rng.random()
        name = f"s{rng.randrange(4)}"
        try:
            if choice < 0.2 or not parents:
                n = next(numbers)
                await store.insert("parent", parent(n, age=n % 90))
                parents.append(uid(n).int)
            elif choice < 0.4:
                n = next(numbers)
                await store.insert("child", child(n, rng.choice(parents), status=rng.choice(STATUSES)))
                children.append(uid(n).int)
            elif choice < 0.55 and children:
                await store.update("child", UUID(int=rng.choice(children)), {"status": rng.choice(STATUSES)})
            elif choice < 0.62:
                await store.update("parent", UUID(int=rng.choice(parents)), {"email": f"p{rng.randrange(300)}@x.org"})
            elif choice < 0.7:
                await store.delete("parent", UUID(int=rng.choice(parents)), cascade=True)
            elif choice < 0.78:
                await store.take_snapshot(name, rng.choice([("parent",), ("parent", "child")]))
            elif choice < 0.9:
                await store.restore_snapshot(name)
            elif choice < 0.94:
                await store.drop_snapshot(name)
            else:
                await compactions.take()
        except (Conflict, NotFound, MissingReference):
            pass  # refused writes leave no trace in the log


async def test_a_random_history_of_snapshots_restores_and_compactions_recovers_exactly(directory: Path) -> None:
    rng = random.Random(1616)
    numbers = iter(range(1, 1_000_000))
    async with Node(directory, fsync="no") as node:
        await _random_history(node, rng, numbers, 600)
        live = everything(node.db)
        assert node.db.snapshots, "the history should leave named snapshots to recover"
    for _ in range(2):  # recovered, then written to again (restores, compactions, tags) and recovered again
        again = Node(directory, fsync="no")
        assert again.recovery.failed == 0
        assert everything(again.db) == live
        async with again:
            await _random_history(again, rng, numbers, 300)
            live = everything(again.db)


async def test_rows_a_snapshot_shares_with_the_live_tables_are_written_once_and_shared_again(directory: Path) -> None:
    async with Node(directory) as node:
        await node.store.load([("parent", [parent(n) for n in range(1, 101)])])
        await node.store.take_snapshot("baseline", ("parent",))
        await node.store.update("parent", uid(1), {"name": "changed"})
        await node.store.delete("parent", uid(2))
        taken = await compactor(node).take()
    again = await recover(directory)
    live, image = again.db.tables["parent"], again.db.snapshots["baseline"].images["parent"]
    shared = [row for row in image.rows if live.rows.get(row[live.pk_position]) is row]
    assert len(shared) == 98  # all but the changed and the deleted row
    assert all(key is live.rows[key][live.pk_position] for key in image.keys if key in live.rows)
    emails, holders = image.unique["email"]
    position = live.position["email"]
    assert (
        sum(
            email is live.rows[holder][position]
            for email, holder in zip(emails, holders, strict=True)
            if holder in live.rows
        )
        == 99
    )  # each a live row's own string, not one more copy: all but the deleted row's
    assert taken.path.stat().st_size < 2 * sum(1 for _ in image.rows) * 200  # not a second copy of every row


async def test_a_format_1_file_without_named_snapshots_still_loads(directory: Path) -> None:
    async with Node(directory) as node:
        await node.store.insert("parent", parent(1))
        await node.store.update("parent", uid(1), {"name": "changed"})
        image = node.db.image()
        path = write_snapshot(directory, 99, image)
    header_length, _ = HEADER.unpack(path.read_bytes()[: HEADER.size])
    records = path.read_bytes()
    header = pickle.loads(records[HEADER.size : HEADER.size + header_length])
    header["format"] = 1
    del header["named"]
    header["tables"] = {name: info | {"order": info["order"][:3]} for name, info in header["tables"].items()}
    body = pickle.dumps(header, protocol=5)
    path.write_bytes(HEADER.pack(len(body), zlib.crc32(body)) + body + records[HEADER.size + header_length :])
    database = Database(SPECS)
    load_snapshot(path, database)
    assert database.snapshots == {}
    assert database.tables["parent"].order_state()[3] == 2  # the highest version its rows hold


def test_an_index_on_a_plain_column_comes_back_and_a_snapshot_cut_short_is_refused(tmp_path: Path) -> None:
    created = Column("created_at", Kind.DATETIME, auto=Auto.ON_CREATE)
    spec = TableSpec("item", (Column("id", Kind.INT), Column("size", Kind.INT, indexed=True), created))
    database = Database([spec])
    database.load([("item", [{"id": n, "size": n % 3} for n in range(10)])])
    take(database, "baseline", ("item",))
    database.update("item", 1, {"size": 7})
    path = write_snapshot(tmp_path, 1, database.image())
    loaded = Database([spec])
    load_snapshot(path, loaded)
    assert named(loaded) == named(database)

    header_length, _ = HEADER.unpack(path.read_bytes()[: HEADER.size])
    header = pickle.loads(path.read_bytes()[HEADER.size : HEADER.size + header_length])
    header["named"][0]["tables"]["item"]["rows"] = 11  # says more than its parts hold
    body = pickle.dumps(header, protocol=5)
    path.write_bytes(HEADER.pack(len(body), zlib.crc32(body)) + body + path.read_bytes()[HEADER.size + header_length :])
    with pytest.raises(SnapshotError, match="named snapshot baseline: item is not whole"):
        load_snapshot(path, Database([spec]))


async def test_a_file_written_with_unique_values_before_their_holders_still_loads(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import store.snapshot as snapshot_files

    newer = snapshot_files.named_records

    def held_first(image: Any) -> Iterator[tuple[str, str, str, str, list[Any]]]:
        """The order files were written in before holders came first."""
        waiting: list[tuple[str, str, str, str, list[Any]]] = []
        for record in newer(image):
            if record[3].endswith(".holders"):
                waiting.append(record)
                continue
            if waiting and not record[3].endswith(".held"):
                yield from waiting
                waiting.clear()
            yield record
        yield from waiting

    monkeypatch.setattr(snapshot_files, "named_records", held_first)
    async with Node(directory) as node:
        await node.store.load([("parent", [parent(n) for n in range(1, 11)])])
        await node.store.take_snapshot("baseline", ("parent",))
        expected = state(node.db)
        await node.store.delete("parent", uid(3))
        await compactor(node).take()
    again = await recover(directory)
    emails = again.db.snapshots["baseline"].images["parent"].unique["email"][0]
    RestoreSnapshot("baseline").apply(again.db)

    assert state(again.db) == expected
    assert len(emails) == 10  # read back as they were, unshared
