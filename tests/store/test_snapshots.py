"""Named snapshots: tables put back exactly, tags included, in one command, and what a restore must never undo."""

from __future__ import annotations

from typing import Any

import pytest

from store import (
    Conflict,
    Database,
    InsufficientStorage,
    InvalidValue,
    NotFound,
    Query,
    SortKey,
    StoreActor,
    StoreClient,
)
from store import commands as c
from store.snapshots import Prepared, discarding, preparing
from store.supervisor import Supervisor

from .conftest import SPECS, Clock, Rows, assert_indexes_consistent, plain, uid

ALL = ("parent", "child", "note")


def state(db: Database) -> dict[str, list[tuple[Any, str]]]:
    """Every visible row of every table, as JSON-ready data with its tag, in the tables' own order."""
    found: dict[str, list[tuple[Any, str]]] = {}
    for name, snapshot in db.snapshot(ALL, reveal=True).items():
        table = db.table(name)
        found[name] = [(plain(table.present(row, reveal=True)), table.tag(row)) for row in snapshot.rows]
    return found


@pytest.fixture
def family(db: Database, rows: Rows) -> dict[str, Any]:
    """Two parents, three children, two notes."""
    first, second = rows.parent(age=40), rows.parent(email="Mixed@Example.com")
    kids = [rows.child(first["id"], status="paid"), rows.child(first["id"]), rows.child(second["id"], quantity=3)]
    notes = [rows.note(kids[0]["id"]), rows.note(kids[2]["id"])]
    return {"parents": [first, second], "children": kids, "notes": notes}


def test_a_restore_brings_back_deleted_changed_and_added_rows_exactly(
    db: Database, rows: Rows, family: dict[str, Any]
) -> None:
    taken = c.TakeSnapshot("baseline", ALL).apply(db)
    before = state(db)
    first, second = family["parents"]

    db.update("parent", first["id"], {"name": "Renamed", "email": "other@example.com"})
    db.update("child", family["children"][1]["id"], {"status": "shipped"})
    db.delete("parent", second["id"], cascade=True)
    rows.parent(email="mixed@example.com")  # the deleted parent's email, taken by someone new
    assert state(db) != before

    restored = c.RestoreSnapshot("baseline").apply(db)

    assert state(db) == before
    assert restored == taken
    assert taken.rows == {"parent": 2, "child": 3, "note": 2}
    assert db.counts() == taken.rows
    assert_indexes_consistent(db)
    with pytest.raises(Conflict):  # the unique keys are the snapshot's again
        rows.parent(email="MIXED@example.com")
    rows.parent(email="other@example.com")  # freed: only the change had taken it


def test_a_snapshot_stays_usable_after_a_restore_and_later_writes_never_reach_it(
    db: Database, rows: Rows, family: dict[str, Any]
) -> None:
    c.TakeSnapshot("baseline", ALL).apply(db)
    before = state(db)
    for round_ in range(3):
        db.update("child", family["children"][0]["id"], {"label": f"round {round_}"})
        db.delete("note", family["notes"][0]["id"])
        rows.child(family["parents"][1]["id"])
        c.RestoreSnapshot("baseline").apply(db)
        assert state(db) == before
        assert_indexes_consistent(db)


def test_restored_rows_get_their_old_tags_and_no_tag_is_ever_given_to_two_contents(
    db: Database, family: dict[str, Any]
) -> None:
    child = family["children"][0]["id"]
    original = db.get("child", child, ("parent",)).tag
    c.TakeSnapshot("baseline", ALL).apply(db)
    contents: dict[str, Any] = {}

    def record() -> None:
        snapshot = db.get("child", child, ("parent",))
        assert contents.setdefault(snapshot.tag, plain(snapshot.data)) == plain(snapshot.data)

    record()
    db.update("child", child, {"label": "first change"})
    record()
    c.RestoreSnapshot("baseline").apply(db)
    assert db.get("child", child, ("parent",)).tag == original
    db.update("child", child, {"label": "a different change"})  # same number of writes as "first change"
    record()
    db.update("child", child, {"label": "and another"})
    record()
    assert len(contents) == 4


def test_rows_made_after_a_restore_never_reuse_a_number_or_a_time_seen_before(
    db: Database, rows: Rows, family: dict[str, Any], clock: Clock
) -> None:
    c.TakeSnapshot("baseline", ALL).apply(db)
    added = rows.parent()
    added_tag = db.get("parent", added["id"]).tag
    clock.now = clock.now.replace(year=2023)  # the wall clock steps back meanwhile

    c.RestoreSnapshot("baseline").apply(db)
    again = rows.parent()

    with pytest.raises(NotFound):
        db.get("parent", added["id"])
    assert int(db.get("parent", again["id"]).tag.split(".")[0], 16) > int(added_tag.split(".")[0], 16)
    assert again["created_at"] >= added["created_at"]


def test_an_ordered_index_is_rebuilt_for_the_restored_rows(db: Database, rows: Rows, family: dict[str, Any]) -> None:
    by_label = Query(sort=(SortKey("label", True),), per_page=100)
    before = plain(db.query("child", by_label).items)
    db.table("child").ordered.clear()  # so the next sorted listing builds one after the delete
    c.TakeSnapshot("baseline", ALL).apply(db)
    db.delete("child", family["children"][1]["id"])
    db.update("child", family["children"][0]["id"], {"label": "zzz"})
    rows.child(family["parents"][0]["id"], label="zzzz")
    assert len(db.query("child", by_label).items) == 3
    assert db.table("child").ordered  # that listing built one, without the deleted row

    c.RestoreSnapshot("baseline").apply(db)

    assert plain(db.query("child", by_label).items) == before


def test_pooled_values_of_restored_rows_stay_shared_with_new_ones(db: Database, family: dict[str, Any]) -> None:
    c.TakeSnapshot("baseline", ALL).apply(db)
    label = family["children"][0]["label"]
    db.delete("note", family["notes"][0]["id"])
    db.delete("child", family["children"][0]["id"])
    db.table("child").sweep_pools()  # the snapshot still holds the label: the pool keeps it

    c.RestoreSnapshot("baseline").apply(db)
    table = db.table("child")
    restored = table.value(table.rows[table.codecs["id"].encode(family["children"][0]["id"])], "label")
    copy = "".join(label)

    assert table.pools["label"].share(copy) is restored


def test_a_snapshot_leaves_out_staged_rows_and_a_restore_waits_for_the_import(
    db: Database, rows: Rows, family: dict[str, Any]
) -> None:
    transaction = db.begin()
    db.stage(transaction, "parent", [{"id": uid(500), "email": "staged@example.com", "name": "Staged"}])
    db.stage(
        transaction, "child", [{"id": uid(501), "parent_id": uid(500), "label": "s", "status": "paid", "amount": "1"}]
    )
    db.stage(
        transaction,
        "child",
        [{"id": uid(502), "parent_id": family["parents"][0]["id"], "label": "t", "status": "paid", "amount": "2"}],
    )
    visible = state(db)

    info = c.TakeSnapshot("during", ALL).apply(db)

    assert info.rows == {"parent": 2, "child": 3, "note": 2}
    with pytest.raises(Conflict, match="import"):
        c.RestoreSnapshot("during").apply(db)
    db.commit(transaction)
    assert db.counts()["child"] == 5
    c.RestoreSnapshot("during").apply(db)
    assert state(db) == visible
    assert_indexes_consistent(db)
    rows.parent(email="staged@example.com")  # the import's unique keys went with it


def test_uncovered_tables_keep_their_rows_except_those_that_would_dangle(
    db: Database, rows: Rows, family: dict[str, Any]
) -> None:
    kept, doomed = family["notes"]
    c.TakeSnapshot("no-notes", ("child", "parent")).apply(db)
    late_child = rows.child(family["parents"][0]["id"])
    late_note = rows.note(late_child["id"])
    db.delete("note", kept["id"])
    db.update("note", doomed["id"], {"text": "changed"})
    survivor = rows.note(family["children"][2]["id"])

    c.RestoreSnapshot("no-notes").apply(db)

    notes = {note["id"]: note for note, _ in state(db)["note"]}
    assert set(notes) == {doomed["id"], survivor["id"]}  # the deleted note stays deleted
    assert notes[doomed["id"]]["text"] == "changed"
    assert late_note["id"] not in notes  # its child is gone
    assert_indexes_consistent(db)


def test_a_snapshot_must_cover_what_its_tables_reference(db: Database) -> None:
    with pytest.raises(InvalidValue, match="references parent"):
        c.TakeSnapshot("half", ("child",)).apply(db)
    with pytest.raises(InvalidValue, match="at least one"):
        c.TakeSnapshot("none", ()).apply(db)
    with pytest.raises(NotFound):
        c.TakeSnapshot("typo", ("parents",)).apply(db)
    assert c.ListSnapshots().apply(db) == []


def test_names_are_unique_and_unknown_names_are_not_found(db: Database, rows: Rows, family: dict[str, Any]) -> None:
    first = c.TakeSnapshot("a", ALL).apply(db)
    rows.parent()
    second = c.TakeSnapshot("b", ("parent", "child")).apply(db)
    with pytest.raises(Conflict):
        c.TakeSnapshot("a", ALL).apply(db)

    assert c.ListSnapshots().apply(db) == [first, second]
    assert c.DescribeSnapshot("b").apply(db) == second
    assert second.rows == {"parent": 3, "child": 3}
    assert second.created_at > first.created_at
    assert first.memory_bytes > 0

    c.DropSnapshot("a").apply(db)
    for missing in (c.DescribeSnapshot("a"), c.RestoreSnapshot("a"), c.DropSnapshot("a")):
        with pytest.raises(NotFound):
            missing.apply(db)
    assert c.TakeSnapshot("a", ALL).apply(db).rows == {"parent": 3, "child": 3, "note": 2}


def test_a_snapshot_counts_against_the_memory_limit(db: Database, family: dict[str, Any]) -> None:
    db.accepting_growth = False
    with pytest.raises(InsufficientStorage):
        c.TakeSnapshot("full", ALL).apply(db)
    db.accepting_growth = True
    size = c.TakeSnapshot("probe", ALL).apply(db).memory_bytes

    db.memory_headroom = size  # room for less than one more
    with pytest.raises(InsufficientStorage):
        c.TakeSnapshot("too-big", ALL).apply(db)
    db.memory_headroom = 2 * size + 1
    c.TakeSnapshot("fits", ALL).apply(db)

    assert db.memory_headroom == size + 1  # until the next sample, what it took is spoken for
    assert [info.name for info in c.ListSnapshots().apply(db)] == ["probe", "fits"]


async def test_the_supervisor_tells_the_database_its_headroom(db: Database) -> None:
    supervisor = Supervisor(StoreActor(db), memory_limit_bytes=1000, read_memory=lambda: 600)
    supervisor.check_memory()
    assert db.memory_headroom == 400


async def test_replaying_the_encoded_writes_on_a_fresh_database_ends_in_the_same_state() -> None:
    # What a command log does at start-up: the restore names its snapshot, whose taking is logged before it.
    db = Database(SPECS, clock=Clock())
    actor = StoreActor(db)
    log: list[bytes] = []
    actor.watch(lambda command: log.append(command.encode()) if command.writes else None)
    actor.start()
    store = StoreClient(actor)
    parent = plain((await store.insert("parent", {"id": uid(1), "email": "a@example.com", "name": "A"})).data)
    await store.take_snapshot("baseline", ("parent", "child", "note"))
    await store.insert(
        "child", {"id": uid(2), "parent_id": parent["id"], "label": "x", "status": "paid", "amount": "1"}
    )
    await store.update("parent", parent["id"], {"name": "B"})
    await store.restore_snapshot("baseline")
    await store.insert("parent", {"id": uid(3), "email": "c@example.com", "name": "C"})
    await store.drop_snapshot("baseline")
    await actor.close()

    replayed = Database(SPECS, clock=Clock())
    for record in log:
        c.decode(record).apply(replayed)

    assert state(replayed) == state(db)
    assert replayed.snapshots.keys() == db.snapshots.keys() == set()


async def test_the_client_takes_lists_restores_and_drops(db: Database, family: dict[str, Any]) -> None:
    actor = StoreActor(db)
    actor.start()
    store = StoreClient(actor)
    taken = await store.take_snapshot("baseline", ("parent", "child", "note"))
    await store.delete("parent", family["parents"][0]["id"], cascade=True)

    assert await store.restore_snapshot("baseline") == taken
    assert await store.snapshots() == [taken]
    assert await store.describe_snapshot("baseline") == taken
    await store.drop_snapshot("baseline")
    assert await store.snapshots() == []
    await actor.close()


def test_a_prepared_build_is_swapped_in_once_and_the_old_structures_handed_back(
    db: Database, rows: Rows, family: dict[str, Any]
) -> None:
    c.TakeSnapshot("baseline", ALL).apply(db)
    before = state(db)
    prepared = Prepared(c.FindSnapshot("baseline").apply(db))
    steps = sum(1 for _ in preparing(prepared, step=2))  # built a couple of entries at a time
    rows.parent()
    old_rows = db.table("parent").rows
    assert prepared.tables is not None
    fresh_rows = prepared.tables["parent"].rows

    c.RestoreSnapshot("baseline", prepared).apply(db)

    assert steps > len(ALL)
    assert db.table("parent").rows is fresh_rows
    assert state(db) == before
    assert prepared.tables is None  # now the live tables' own: never swapped in twice
    assert prepared.discarded[0].rows is old_rows
    held = len(old_rows)
    assert sum(1 for _ in discarding(prepared, step=1)) >= held > 0  # freed an entry per step
    assert old_rows == {}
    assert prepared.discarded == []

    rows.parent()
    c.RestoreSnapshot("baseline", prepared).apply(db)  # spent: the command works it out itself (from the log)
    assert state(db) == before
    assert_indexes_consistent(db)


def test_a_build_prepared_from_a_snapshot_since_taken_again_is_not_used(
    db: Database, rows: Rows, family: dict[str, Any]
) -> None:
    c.TakeSnapshot("baseline", ALL).apply(db)
    prepared = Prepared(c.FindSnapshot("baseline").apply(db))
    for _ in preparing(prepared):
        pass
    rows.parent()
    c.DropSnapshot("baseline").apply(db)
    c.TakeSnapshot("baseline", ALL).apply(db)
    now = state(db)
    db.delete("parent", family["parents"][0]["id"], cascade=True)

    c.RestoreSnapshot("baseline", prepared).apply(db)

    assert state(db) == now
    assert_indexes_consistent(db)


def test_the_encoded_restore_names_the_snapshot_and_nothing_built_for_it(db: Database, family: dict[str, Any]) -> None:
    c.TakeSnapshot("baseline", ALL).apply(db)
    prepared = Prepared(c.FindSnapshot("baseline").apply(db))

    decoded = c.decode(c.RestoreSnapshot("baseline", prepared).encode())

    assert decoded == c.RestoreSnapshot("baseline")
    assert isinstance(decoded, c.RestoreSnapshot)
    assert decoded.prepared is None


def prepared_against(db: Database, name: str = "baseline", step: int = 2) -> Prepared:
    """A restore of ``name`` prepared as the client does: patches where they will do, the other tables built."""
    prepared = Prepared(c.FindSnapshot(name).apply(db))
    for _ in preparing(prepared, step=step, live=db, compare_step=step):
        pass
    return prepared


def found_by(db: Database, via: str) -> None:
    """Leave the tables' write logs against the snapshot as they are, or make the restore compare every row.

    Taking another snapshot starts the logs afresh against that one, so a
    restore of the first has to compare.
    """
    if via == "comparison":
        c.TakeSnapshot("later", ALL).apply(db)


@pytest.mark.parametrize("via", ["log", "comparison"])
def test_a_few_changed_and_added_rows_are_patched_in_place_exactly(
    db: Database, rows: Rows, family: dict[str, Any], via: str
) -> None:
    c.TakeSnapshot("baseline", ALL).apply(db)
    before = state(db)
    first, second = family["parents"]
    maps = {name: db.table(name).rows for name in ALL}
    # Two parents swap emails (each unique key changes hands), a bucket changes, rows are added here and there.
    db.update("parent", first["id"], {"email": "swap@example.com"})
    db.update("parent", second["id"], {"email": first["email"], "age": 7})
    db.update("parent", first["id"], {"email": "MIXED@example.com", "name": "Renamed"})
    db.update("child", family["children"][1]["id"], {"status": "shipped"})
    added = rows.child(rows.parent(email="new@example.com")["id"])
    rows.note(added["id"])
    db.delete("note", rows.note(family["children"][1]["id"])["id"])  # added since, then gone again
    found_by(db, via)

    prepared = prepared_against(db)
    assert set(prepared.patches) == set(ALL)
    assert prepared.tables == {}  # nothing built
    c.RestoreSnapshot("baseline", prepared).apply(db)

    assert state(db) == before
    assert {name: db.table(name).rows for name in ALL} == maps
    assert all(db.table(name).rows is maps[name] for name in ALL)  # the live maps themselves, patched
    assert prepared.discarded == []
    assert_indexes_consistent(db)
    with pytest.raises(Conflict):  # the unique keys are the snapshot's again
        rows.parent(email=first["email"].upper())
    rows.parent(email="new@example.com")  # freed: only an added parent had it
    db.update("parent", first["id"], {"name": "Again"})
    assert db.get("parent", first["id"]).tag not in {tag for _, tag in before["parent"]}  # versions carry on


@pytest.mark.parametrize("via", ["log", "comparison"])
def test_a_table_whose_snapshot_rows_were_deleted_is_built_and_the_others_patched(
    db: Database, rows: Rows, family: dict[str, Any], via: str
) -> None:
    c.TakeSnapshot("baseline", ALL).apply(db)
    before = state(db)
    db.delete("note", family["notes"][0]["id"])  # put back, it would land at the end of the map
    db.update("parent", family["parents"][0]["id"], {"name": "Renamed"})
    found_by(db, via)

    prepared = prepared_against(db)
    assert set(prepared.patches) == {"parent", "child"}
    assert prepared.tables is not None
    assert set(prepared.tables) == {"note"}
    c.RestoreSnapshot("baseline", prepared).apply(db)

    assert state(db) == before
    numbers = [row[0] for row in db.table("note").rows.values()]
    assert numbers == sorted(numbers)  # the deleted note is back in its place
    assert_indexes_consistent(db)


def test_more_changes_than_a_patch_may_hold_are_built(
    db: Database, rows: Rows, family: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("store.table.PATCH_LIMIT", 2)
    c.TakeSnapshot("baseline", ALL).apply(db)
    before = state(db)
    for child in family["children"]:
        db.update("child", child["id"], {"label": "changed"})
    for _ in range(3):
        rows.parent()

    prepared = prepared_against(db)
    assert set(prepared.patches) == {"note"}  # three children changed, three parents added: over the limit
    assert db.table("child").touched is None  # too many to log: compared, and built

    c.RestoreSnapshot("baseline", prepared).apply(db)
    assert state(db) == before
    assert_indexes_consistent(db)


def test_a_patch_a_write_made_out_of_date_is_refused_before_anything_changes(
    db: Database, rows: Rows, family: dict[str, Any]
) -> None:
    c.TakeSnapshot("baseline", ALL).apply(db)
    before = state(db)
    db.update("child", family["children"][0]["id"], {"label": "changed"})
    prepared = prepared_against(db)
    db.update("parent", family["parents"][1]["id"], {"name": "Later"})  # after the comparison
    now = state(db)

    with pytest.raises(Conflict):
        c.RestoreSnapshot("baseline", prepared).apply(db)

    assert state(db) == now
    c.RestoreSnapshot("baseline", prepared_against(db)).apply(db)
    assert state(db) == before


@pytest.mark.parametrize("compared", [1, 2])
def test_a_comparison_interrupted_by_a_write_gives_up_the_patch(
    db: Database, rows: Rows, family: dict[str, Any], compared: int
) -> None:
    c.TakeSnapshot("baseline", ALL).apply(db)
    before = state(db)
    found_by(db, "comparison")
    prepared = Prepared(c.FindSnapshot("baseline").apply(db))
    steps = preparing(prepared, step=1, live=db, compare_step=1)
    for _ in range(compared):  # the parents (two) are being compared, or have all been...
        next(steps)
    db.update("parent", family["parents"][1]["id"], {"name": "Meanwhile"})  # ...when one is written
    for _ in steps:
        pass

    assert "parent" not in prepared.patches  # built instead
    c.RestoreSnapshot("baseline", prepared).apply(db)
    assert state(db) == before


async def test_the_client_prepares_again_when_writes_outdate_its_patch_and_builds_at_last(
    db: Database, rows: Rows, family: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    actor = StoreActor(db)
    actor.start()
    store = StoreClient(actor)
    await store.take_snapshot("baseline", ALL)
    expected = state(db)
    await store.update("child", family["children"][0]["id"], {"label": "changed"})
    sent: list[c.Command[Any]] = []
    call = actor.call

    async def write_first(command: c.Command[Any]) -> Any:
        """A write lands between every restore's preparation and its command."""
        if isinstance(command, c.RestoreSnapshot):
            sent.append(command)
            db.update("child", family["children"][1]["id"], {"label": f"write {len(sent)}"})
        return await call(command)

    monkeypatch.setattr(actor, "call", write_first)
    await store.restore_snapshot("baseline")

    assert len(sent) == 3  # two patches outdated, then a build
    assert all(command.prepared is not None for command in sent)
    assert state(db) == expected
    assert_indexes_consistent(db)
    await actor.close()


@pytest.mark.parametrize("via", ["log", "comparison"])
def test_a_row_deleted_and_created_again_under_its_key_is_put_back_in_its_place(
    db: Database, rows: Rows, family: dict[str, Any], via: str
) -> None:
    c.TakeSnapshot("baseline", ALL).apply(db)
    before = state(db)
    first = family["notes"][0]
    db.delete("note", first["id"])
    rows.note(family["children"][2]["id"], id=first["id"])  # the same key, a new row at the end
    found_by(db, via)

    prepared = prepared_against(db)
    assert "note" not in prepared.patches  # patched, the old row would stay at the end
    c.RestoreSnapshot("baseline", prepared).apply(db)

    assert state(db) == before
    assert_indexes_consistent(db)


def test_a_dropped_snapshot_is_no_longer_what_writes_are_logged_against(db: Database, family: dict[str, Any]) -> None:
    c.TakeSnapshot("baseline", ALL).apply(db)
    assert all(db.table(name).baseline is not None for name in ALL)

    c.DropSnapshot("baseline").apply(db)

    assert all(db.table(name).baseline is None for name in ALL)  # its image (and memory) not kept by a log
    assert all(db.table(name).touched is None for name in ALL)


@pytest.mark.parametrize("prepare", [True, False])
def test_a_table_whose_rows_are_out_of_insertion_order_is_built_not_patched(
    db: Database, rows: Rows, family: dict[str, Any], prepare: bool
) -> None:
    c.TakeSnapshot("baseline", ALL).apply(db)
    before = state(db)
    table = db.table("note")
    older = next(iter(table.rows.values()))  # the first note: put back, it goes to the end of the map
    table.remove(older)
    table.add(older)
    assert not table.rows_in_seq_order

    prepared = prepared_against(db) if prepare else None
    assert prepared is None or "note" not in prepared.patches  # a bisection in its rows would go wrong
    c.RestoreSnapshot("baseline", prepared).apply(db)

    assert state(db) == before
    assert table.rows_in_seq_order  # built from the snapshot's lists, in order again
