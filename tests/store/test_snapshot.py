"""Snapshots: taken from one moment while writes go on, loaded at recovery before the rest of the log."""

from __future__ import annotations

import os
import pickle
import zlib
from pathlib import Path

import pytest

from store import CorruptLog, Database, PersistenceFailed, Predicate
from store.log import segments
from store.snapshot import HEADER, SnapshotError, load_snapshot, snapshots, verify_snapshot
from store.snapshotter import Snapshotter
from tests.server.test_jobs import wait_until

from .conftest import SPECS, uid
from .test_log import Node, child, parent, recover, state


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "data"


def snapshotter(node: Node, limit: int = 1 << 30, interval: float = 1.0) -> Snapshotter:
    return Snapshotter(node.db, node.recovery.log, limit, interval)


async def test_recovery_loads_the_snapshot_then_replays_only_what_came_after(directory: Path) -> None:
    async with Node(directory) as node:
        await node.store.load([("parent", [parent(1), parent(2)]), ("child", [child(3, 1, metadata={"a": 1})])])
        await node.store.update("parent", uid(2), {"name": "changed"})
        await node.store.insert("parent", parent(4))
        await node.store.delete("parent", uid(4))  # a gap in the numbering the snapshot must keep
        taken = await snapshotter(node).take()
        await node.store.insert("child", child(5, 2))
        await node.store.purge("child", (Predicate(("id",), "eq", uid(3).int),))
        live = state(node.db)
    assert taken.rows == 3
    assert [number for number, _ in segments(directory)] == [taken.segment]
    again = await recover(directory)
    assert again.recovery.snapshot == taken.path
    assert again.recovery.records == 2
    assert state(again.db) == live
    pooled = {id(row[again.db.tables["child"].position["status"]]) for row in again.db.tables["child"].rows.values()}
    assert len(pooled) == 1  # choices shared again, as in a live table


async def test_a_snapshot_is_private_and_replaces_the_older_one(directory: Path) -> None:
    async with Node(directory) as node:
        await node.store.insert("parent", parent(1))
        first = await snapshotter(node).take()
        await node.store.insert("parent", parent(2))
        second = await snapshotter(node).take()
    assert [path for _, path in snapshots(directory)] == [second.path]
    assert not first.path.exists()
    assert oct(os.stat(second.path).st_mode & 0o777) == oct(0o600)


async def test_an_import_staged_across_a_snapshot_commits_whole_after_recovery(directory: Path) -> None:
    async with Node(directory) as node:
        committed = await node.store.begin()
        await node.store.stage(committed, "parent", [parent(1)])
        dropped = await node.store.begin()
        await node.store.stage(dropped, "parent", [parent(2)])
        await snapshotter(node).take()
        await node.store.stage(committed, "parent", [parent(3)])
        await node.store.commit(committed)
    again = await recover(directory)
    assert again.db.counts()["parent"] == 2
    assert again.recovery.aborted == 1
    assert again.db.open_transactions == {}


async def test_a_damaged_snapshot_refuses_to_start_unless_truncating(directory: Path) -> None:
    async with Node(directory) as node:
        await node.store.insert("parent", parent(1))
        taken = await snapshotter(node).take()
        await node.store.insert("parent", parent(2))
    data = bytearray(taken.path.read_bytes())
    data[HEADER.size + 5] ^= 0xFF
    taken.path.write_bytes(bytes(data))
    with pytest.raises(CorruptLog, match=rf"corrupt snapshot: {taken.path} at byte 0"):
        await recover(directory)
    truncated = await recover(directory, policy="truncate")
    assert truncated.db.counts()["parent"] == 1  # what the log after it holds
    assert len(truncated.recovery.cut) == 1


async def test_a_snapshot_cut_short_or_a_leftover_temporary_file_is_recognised(directory: Path) -> None:
    async with Node(directory) as node:
        await node.store.insert("parent", parent(1))
        taken = await snapshotter(node).take()
    (directory / "snapshot-00000099.snap.tmp").write_bytes(b"half written")
    data = taken.path.read_bytes()
    taken.path.write_bytes(data[: len(data) - HEADER.size - 3])
    with pytest.raises(SnapshotError, match="cut short"):
        verify_snapshot(taken.path)
    taken.path.write_bytes(data)
    again = await recover(directory)
    assert again.db.counts()["parent"] == 1
    assert not (directory / "snapshot-00000099.snap.tmp").exists()


async def test_a_snapshot_naming_code_is_refused(directory: Path) -> None:
    os.makedirs(directory)
    path = directory / "snapshot-00000001.snap"
    records = b""
    for body in (pickle.dumps(os.system, protocol=5), b"end"):
        records += HEADER.pack(len(body), zlib.crc32(body)) + body
    path.write_bytes(records)
    with pytest.raises(SnapshotError, match="plain values only"):
        load_snapshot(path, Database(SPECS))
    with pytest.raises(CorruptLog, match="unreadable snapshot"):
        await recover(directory)


async def test_the_log_passing_its_limit_takes_a_snapshot_by_itself(directory: Path) -> None:
    async with Node(directory) as node:
        watcher = snapshotter(node, limit=2_000, interval=0.01)
        watcher.start()
        for n in range(1, 30):
            await node.store.insert("parent", parent(n))

        async def taken() -> bool:
            return watcher.taken >= 1

        await wait_until(taken, "a snapshot of the grown log", deadline=20)
        await watcher.stop()
        assert watcher.last is not None
        assert watcher.last.freed_bytes > 0
        assert min(number for number, _ in segments(directory)) >= watcher.last.segment  # the older ones went
        live = state(node.db)
    assert state((await recover(directory)).db) == live


async def test_a_snapshot_that_cannot_start_a_new_segment_fails_and_the_watcher_carries_on(
    directory: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with Node(directory) as node:
        await node.store.insert("parent", parent(1))
        watcher = snapshotter(node, limit=1, interval=0.01)
        real_open = os.open

        def full(path: object, *args: object) -> int:
            if str(path).endswith(".log"):
                raise OSError(28, "No space left on device")
            return real_open(path, *args)  # type: ignore[arg-type]

        monkeypatch.setattr("store.log.os.open", full)
        with pytest.raises(PersistenceFailed, match="new log segment could not be created"):
            await watcher.take()
        watcher.start()

        async def failed_again() -> bool:
            return "snapshot failed" in caplog.text

        await wait_until(failed_again, "the watcher to try and fail", deadline=20)
        await watcher.stop()
        monkeypatch.undo()
        assert watcher.failures >= 2
        assert [name for name in os.listdir(directory) if name.endswith(".tmp")] == []
        await node.store.insert("parent", parent(2))
        live = state(node.db)
    assert state((await recover(directory)).db) == live


async def test_segments_a_snapshot_made_obsolete_are_removed_at_recovery(directory: Path) -> None:
    async with Node(directory) as node:
        await node.store.insert("parent", parent(1))
        first_segment = node.recovery.log.path
        old = first_segment.read_bytes()
        await snapshotter(node).take()
    first_segment.write_bytes(old)  # as if the process died before deleting it
    again = await recover(directory)
    assert not first_segment.exists()
    assert again.db.counts()["parent"] == 1


def _framed(*bodies: bytes) -> bytes:
    return b"".join(HEADER.pack(len(body), zlib.crc32(body)) + body for body in bodies)


@pytest.mark.parametrize(
    ("content", "reason"),
    ids=["format", "rows", "fields", "torn"],
    argvalues=[
        (_framed(pickle.dumps({"format": 99}), b"end"), "not a snapshot of format 2"),
        (_framed(pickle.dumps({"format": 1, "tables": {"parent": {"rows": 2}}}), b"end"), "holds 0 rows, not 2"),
        (_framed(pickle.dumps({"format": 1}), b"end"), "KeyError"),
        (_framed(b"end") + b"\x01\x02", "header is cut short"),
    ],
)
def test_a_snapshot_that_is_not_what_this_version_writes_is_refused(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "snapshot-00000001.snap"
    path.write_bytes(content)
    with pytest.raises(SnapshotError, match=reason):
        load_snapshot(path, Database(SPECS))
