"""The command log: framing, what is logged, fsync policies, recovery, damage, and disk failures."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import random
import stat
from pathlib import Path
from typing import Any

import pytest

from store import (
    BatchRejected,
    Conflict,
    CorruptLog,
    Database,
    MissingReference,
    NotFound,
    PersistenceFailed,
    Predicate,
    Query,
    StoreActor,
    StoreClient,
)
from store import log as log_module
from store.log import HEADER, FsyncPolicy, frame, read_segment, segments
from store.recovery import RecoverPolicy, Recovery, open_data_directory
from store.snapshotter import Snapshotter
from tests.server.test_jobs import wait_until

from .conftest import SPECS, STATUSES, Clock, uid


def state(db: Database) -> dict[str, Any]:
    """Everything that makes the database what it is: every row (tags included), staged keys, numbering."""
    return {
        name: (list(table.rows.items()), dict(table.staged), table.next_seq, table.in_default_order)
        for name, table in db.tables.items()
    } | {"transactions": db.open_transactions}


class Node:
    """A database with its data directory, opened (recovered) like the server does, behind an actor."""

    def __init__(
        self,
        directory: Path,
        fsync: FsyncPolicy = "always",
        policy: RecoverPolicy = "refuse",
        clock: Clock | None = None,
    ) -> None:
        self.db = Database(SPECS, clock=clock or Clock())
        self.recovery: Recovery = open_data_directory(directory, self.db, fsync, policy)
        self.actor = StoreActor(self.db, journal=self.recovery.log)
        self.store = StoreClient(self.actor)

    async def __aenter__(self) -> Node:
        self.actor.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.actor.close()


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "data"


def parent(n: int, **values: Any) -> dict[str, Any]:
    return {"id": uid(n), "email": f"p{n}@example.com", "name": f"P{n}", **values}


def child(n: int, parent_n: int, **values: Any) -> dict[str, Any]:
    return {"id": uid(n), "parent_id": uid(parent_n), "label": f"c{n}", "status": "pending", "amount": "1.50", **values}


async def recover(directory: Path, **options: Any) -> Node:
    """A node recovered from ``directory`` and closed again (its database and report stay readable)."""
    node = Node(directory, **options)
    await node.actor.close()
    return node


# -- framing -----------------------------------------------------------------


def test_a_record_is_length_checksum_time_and_command(tmp_path: Path) -> None:
    path = tmp_path / "00000001.log"
    path.write_bytes(frame(b'["counts",1,{}]', 42) + frame(b"x", -1))
    records, damage = read_segment(path)
    assert damage is None
    assert [(r.offset, r.now, r.command) for r in records] == [(0, 42, b'["counts",1,{}]'), (31, -1, b"x")]


async def test_writes_are_logged_and_reads_are_not_in_a_private_file(directory: Path) -> None:
    async with Node(directory) as node:
        await node.store.insert("parent", parent(1))
        await node.store.get("parent", uid(1))
        await node.store.find("parent", Query())
        with pytest.raises(Conflict):
            await node.store.insert("parent", parent(1))  # refused: changes nothing, so not logged
        with pytest.raises(NotFound):
            await node.store.update("parent", uid(9), {"name": "x"})
        path = node.recovery.log.path
    records, damage = read_segment(path)
    assert damage is None
    assert [record.command[:9] for record in records] == [b'["insert"']
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700


# -- recovery ----------------------------------------------------------------


async def test_a_restart_rebuilds_every_row_with_its_timestamps_and_tags(directory: Path) -> None:
    async with Node(directory, fsync="everysec") as node:
        first = await node.store.insert("parent", parent(1, age=30))
        await node.store.insert("child", child(2, 1, metadata={"tier": 2}))
        updated = await node.store.update("parent", uid(1), {"name": "renamed"}, (first.tag,))
        await node.store.insert("parent", parent(3))
        assert await node.store.delete("parent", uid(3)) == 1
        await node.store.insert("child", child(4, 1))
        await node.store.delete("child", uid(4))
        live = state(node.db)
    again = await recover(directory, clock=Clock())  # a clock far behind: replay must not consult it
    assert state(again.db) == live
    assert again.recovery.records == 7
    assert again.db.get("parent", uid(1)).tag == updated.tag


async def test_a_cascade_and_a_purge_replay_to_the_same_rows(directory: Path) -> None:
    async with Node(directory) as node:
        await node.store.load([("parent", [parent(1), parent(2)]), ("child", [child(3, 1), child(4, 2)])])
        await node.store.insert("note", {"id": uid(5), "child_id": uid(3), "text": "n"})
        assert await node.store.delete("parent", uid(1), cascade=True) == 3
        assert await node.store.purge("child", (Predicate(("status",), "eq", "pending"),)) == 1
        live = state(node.db)
    assert state((await recover(directory)).db) == live


async def test_an_import_that_never_committed_is_gone_after_recovery_and_stays_gone(directory: Path) -> None:
    async with Node(directory) as node:
        committed = await node.store.begin()
        await node.store.stage(committed, "parent", [parent(1)])
        await node.store.commit(committed)
        pending = await node.store.begin()
        await node.store.stage(pending, "parent", [parent(2), parent(3)])
    async with Node(directory) as node:
        assert node.recovery.aborted == 2
        assert await node.store.counts() == {"parent": 1, "child": 0, "note": 0}
        await node.store.insert("parent", parent(2))  # its email is free again
        live = state(node.db)
    assert state((await recover(directory)).db) == live


async def test_a_second_process_on_the_same_directory_is_refused(directory: Path) -> None:
    async with Node(directory):
        with pytest.raises(CorruptLog, match="in use"):
            Node(directory)


# -- damage ------------------------------------------------------------------


async def _three_parents(directory: Path) -> Path:
    async with Node(directory) as node:
        for n in (1, 2, 3):
            await node.store.insert("parent", parent(n))
        return node.recovery.log.path


@pytest.mark.parametrize("damage", ["cut short", "bad checksum", "zeros"])
async def test_a_torn_tail_is_cut_off_with_a_warning(
    directory: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = await _three_parents(directory)
    data = path.read_bytes()
    last = read_segment(path)[0][-1].offset
    if damage == "cut short":
        path.write_bytes(data[:-5])
    elif damage == "bad checksum":
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    else:
        path.write_bytes(data + bytes(4096))
    with caplog.at_level(logging.WARNING, "memdb.recovery"):
        node = await recover(directory)
    expected = 2 if damage != "zeros" else 3
    assert node.recovery.records == expected
    assert len(node.recovery.cut) == 1
    assert str(path) in caplog.text
    assert path.stat().st_size == (last if damage != "zeros" else len(data))
    assert (await recover(directory)).recovery.cut == []  # cut once, for good


async def test_corruption_in_the_middle_refuses_to_start_naming_file_and_offset(directory: Path) -> None:
    path = await _three_parents(directory)
    second = read_segment(path)[0][1].offset
    data = bytearray(path.read_bytes())
    data[second + HEADER.size + 12] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptLog, match=rf"{path} at byte {second}: checksum mismatch.*MEMDB_RECOVER=truncate"):
        Node(directory)
    truncated = await recover(directory, policy="truncate")
    assert truncated.recovery.records == 1
    assert truncated.db.counts()["parent"] == 1


async def test_damage_in_an_older_segment_sets_the_later_ones_aside_when_truncating(directory: Path) -> None:
    first = await _three_parents(directory)
    async with Node(directory) as node:
        await node.store.insert("parent", parent(4))
    data = bytearray(first.read_bytes())
    data[HEADER.size + 3] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(CorruptLog, match=str(first)):
        Node(directory)
    recovered = await recover(directory, policy="truncate")
    assert recovered.recovery.records == 0
    assert len([name for name in os.listdir(directory) if name.endswith(".discarded")]) == 1


# -- fsync policies and group commit -------------------------------------------


@pytest.mark.parametrize("fsync", ["always", "everysec", "no"])
async def test_every_policy_syncs_at_a_clean_close(directory: Path, fsync: FsyncPolicy) -> None:
    async with Node(directory, fsync=fsync) as node:
        await node.store.insert("parent", parent(1))
        log = node.recovery.log
    assert not log.dirty
    assert log.syncs >= 1


async def test_always_shares_one_fsync_among_the_writers_of_a_turn(directory: Path) -> None:
    async with Node(directory, fsync="always") as node:
        await asyncio.gather(*(node.store.insert("parent", parent(n)) for n in range(1, 101)))
        log = node.recovery.log
        assert not log.dirty  # every writer was answered after its record was synced
        assert 1 <= log.syncs < 100


async def test_everysec_syncs_in_the_background(directory: Path) -> None:
    async with Node(directory, fsync="everysec") as node:
        await node.store.insert("parent", parent(1))
        log = node.recovery.log

        async def synced() -> bool:
            return not log.dirty

        await wait_until(synced, "the once-a-second fsync", deadline=10)
        assert log.syncs == 1


# -- disk failures -----------------------------------------------------------


async def test_a_write_the_disk_refuses_is_not_applied_and_reads_go_on(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Node(directory) as node:
        await node.store.insert("parent", parent(1))
        real_write = os.write

        def full_disk(fd: int, data: bytes) -> int:
            if fd == node.recovery.log._fd:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, data)

        monkeypatch.setattr(log_module.os, "write", full_disk)
        with pytest.raises(PersistenceFailed, match="No space left on device; the write was not applied"):
            await node.store.insert("parent", parent(2))
        with pytest.raises(PersistenceFailed):
            await node.store.delete("parent", uid(1))
        assert await node.store.counts() == {"parent": 1, "child": 0, "note": 0}
        assert (await node.store.get("parent", uid(1))).data["name"] == "P1"
        assert node.recovery.log.last_error is not None
        monkeypatch.setattr(log_module.os, "write", real_write)
        await node.store.insert("parent", parent(3))  # the disk has room again
        assert node.recovery.log.last_error is None
        live = state(node.db)
    assert state((await recover(directory)).db) == live


async def test_a_short_write_is_completed(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with Node(directory) as node:
        real_write = os.write
        monkeypatch.setattr(log_module.os, "write", lambda fd, data: real_write(fd, data[:7]))
        await node.store.insert("parent", parent(1))
        monkeypatch.setattr(log_module.os, "write", real_write)
        live = state(node.db)
    assert state((await recover(directory)).db) == live


async def test_a_failed_fsync_answers_the_turn_with_an_error_and_refuses_later_writes(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Node(directory, fsync="always") as node:

        def failing_fsync(fd: int) -> None:
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(log_module.os, "fsync", failing_fsync)
        results = await asyncio.gather(
            node.store.insert("parent", parent(1)), node.store.counts(), return_exceptions=True
        )
        assert isinstance(results[0], PersistenceFailed)
        assert results[1] == {"parent": 1, "child": 0, "note": 0}
        assert node.recovery.log.broken is not None
        with pytest.raises(PersistenceFailed, match="fsync of the log failed"):
            await node.store.insert("parent", parent(2))
        assert (await node.store.counts())["parent"] == 1
        monkeypatch.undo()


# -- random histories -------------------------------------------------------------


async def test_a_long_random_history_replays_to_exactly_the_live_state(directory: Path) -> None:
    rng = random.Random(1313)
    parents: list[int] = []
    children: list[int] = []
    numbers = iter(range(1, 1_000_000))
    async with Node(directory, fsync="no") as node:
        store = node.store
        snapshots = Snapshotter(node.db, node.recovery.log, log_bytes_limit=1 << 30)
        for step in range(1500):
            if step % 400 == 399:
                await snapshots.take()  # with imports possibly open: they carry on after it
            choice = rng.random()
            try:
                if choice < 0.25 or not parents:
                    n = next(numbers)
                    email = f"p{rng.randrange(400)}@example.com"  # clashes happen, and are refused
                    await store.insert("parent", {"id": uid(n), "email": email, "name": f"P{n}", "age": n % 90})
                    parents.append(n)
                elif choice < 0.5:
                    n = next(numbers)
                    values = child(n, rng.choice(parents), status=rng.choice(STATUSES), metadata={"k": n % 3})
                    await store.insert("child", values)
                    children.append(n)
                elif choice < 0.65 and children:
                    await store.update("child", uid(rng.choice(children)), {"status": rng.choice(STATUSES)})
                elif choice < 0.72:
                    await store.update("parent", uid(rng.choice(parents)), {"email": f"p{rng.randrange(400)}@x.org"})
                elif choice < 0.8:
                    await store.delete("parent", uid(rng.choice(parents)), cascade=rng.random() < 0.5)
                elif choice < 0.85 and children:
                    await store.delete("child", uid(rng.choice(children)))
                elif choice < 0.9:
                    transaction = await store.begin()
                    n = next(numbers)
                    try:
                        await store.stage(transaction, "parent", [parent(n)])
                    except BatchRejected:
                        await store.abort(transaction, 10)  # what an import does with a refused slice
                        raise
                    if rng.random() < 0.7:
                        await store.commit(transaction)
                        parents.append(n)
                    else:
                        await store.abort(transaction, 10)
                elif choice < 0.95:
                    rows = [parent(next(numbers)) for _ in range(3)]
                    refused = await store.insert_each("parent", rows)
                    parents.extend(row["id"].int for i, row in enumerate(rows) if i not in dict(refused))
                else:
                    await store.purge("child", (Predicate(("status",), "eq", rng.choice(STATUSES)),))
            except (Conflict, NotFound, MissingReference, BatchRejected):
                pass  # refused writes belong in a history too: they must leave no trace in the log
        live = state(node.db)
        records = sum(len(read_segment(path)[0]) for _, path in segments(directory))
    again = await recover(directory)
    assert again.recovery.snapshot is not None
    assert again.recovery.records == records
    assert again.recovery.failed == 0
    assert state(again.db) == live


# -- odd records and failures around the edges -----------------------------------


async def test_a_record_with_a_good_checksum_but_no_known_command_refuses_to_start(directory: Path) -> None:
    path = await _three_parents(directory)
    path.write_bytes(path.read_bytes() + frame(b'["teleport", 1, {}]', 0))
    with pytest.raises(CorruptLog, match="no command this version knows"):
        await recover(directory)


async def test_a_logged_command_the_database_refuses_on_replay_is_reported(
    directory: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = await _three_parents(directory)
    first = read_segment(path)[0][0]
    path.write_bytes(path.read_bytes() + frame(first.command, first.now))  # not what memdb writes: a repeat
    with caplog.at_level(logging.ERROR, "memdb.recovery"):
        again = await recover(directory)
    assert again.recovery.failed == 1
    assert "replaying insert failed" in caplog.text


async def test_a_fresh_directory_is_empty_and_a_used_one_is_not(directory: Path) -> None:
    assert (await recover(directory)).recovery.empty
    await _three_parents(directory)
    assert not (await recover(directory)).recovery.empty


async def test_a_log_that_cannot_be_repaired_after_a_failed_write_refuses_later_writes(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Node(directory) as node:

        def refuse(*_: object) -> int:
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(log_module.os, "write", refuse)
        monkeypatch.setattr(log_module.os, "ftruncate", refuse)
        with pytest.raises(PersistenceFailed, match="Read-only file system"):
            await node.store.insert("parent", parent(1))
        monkeypatch.undo()
        log = node.recovery.log
        assert log.broken is not None
        with pytest.raises(PersistenceFailed, match="could not be repaired"):
            await node.store.insert("parent", parent(2))
        with pytest.raises(PersistenceFailed, match="could not be repaired"):
            log.rotate()
        assert await node.store.counts() == {"parent": 0, "child": 0, "note": 0}


async def test_a_command_that_kills_the_loop_mid_turn_answers_the_whole_turn(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class LoopKiller(BaseException):
        pass

    node = Node(directory, fsync="always")
    original_counts = node.db.counts

    def die() -> dict[str, int]:
        monkeypatch.setattr(node.db, "counts", original_counts)
        raise LoopKiller

    monkeypatch.setattr(node.db, "counts", die)
    write = asyncio.ensure_future(node.store.insert("parent", parent(1)))
    fatal = asyncio.ensure_future(node.store.counts())
    await asyncio.sleep(0)  # both queued before the loop takes its first turn
    node.actor.start()
    results = await asyncio.gather(write, fatal, return_exceptions=True)
    assert [type(result).__name__ for result in results] == ["ActorCrashed", "ActorCrashed"]
    await node.actor.close()
