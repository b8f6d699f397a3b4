"""The database: reads, writes, version tags and the integrity rules that span tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from store import (
    BatchRejected,
    Column,
    Conflict,
    Database,
    ForeignKey,
    InsufficientStorage,
    InvalidValue,
    Kind,
    MissingReference,
    NotFound,
    PreconditionFailed,
    Query,
    QueryParser,
    TableSpec,
)
from store.table import EncodedRows, Table

from .conftest import CHILD, PARENT, SPECS, START, Clock, Rows, assert_indexes_consistent, plain, uid


def uid_int(text: str) -> int:
    return UUID(text).int


def snapshot_of(db: Database) -> dict[str, Any]:
    """Everything a client could observe, to show that a failed call changed nothing."""
    return {
        name: [(table.tag(row), plain(table.present(row))) for row in table.rows.values()]
        for name, table in db.tables.items()
    }


def child_labels(db: Database, parent_id: str) -> list[str]:
    page = db.children("parent", parent_id, "child", "parent_id", Query(per_page=100))
    return [item["label"] for item in page.items]


@pytest.fixture
def family(db: Database, rows: Rows) -> dict[str, Any]:
    """Two parents; the first has two children, one of which has two notes."""
    first = rows.parent(email="ada@example.com")
    second = rows.parent(email="grace@example.com")
    kid = rows.child(first["id"], label="kid")
    other = rows.child(first["id"], label="other")
    notes = [rows.note(kid["id"]), rows.note(kid["id"])]
    return {"first": first, "second": second, "kid": kid, "other": other, "notes": notes}


# -- construction and reads --------------------------------------------------


def test_a_foreign_key_to_an_unknown_table_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match=r"child\.parent_id references unknown table parent"):
        Database([CHILD])


def test_unknown_tables_are_not_found(db: Database) -> None:
    with pytest.raises(NotFound) as info:
        db.table("nothing")
    assert (info.value.table, info.value.key) == ("table", "nothing")
    with pytest.raises(NotFound):
        db.get("nothing", uid(1))


def test_get_returns_the_row_and_its_tag(db: Database, family: dict[str, Any]) -> None:
    snapshot = db.get("parent", family["first"]["id"])
    assert plain(snapshot.data) == family["first"]
    assert snapshot.tag == db.table("parent").tag(db.table("parent").rows[uid(1).int])


@pytest.mark.parametrize("key", [str(uid(404)), "not-a-uuid", 12, None])
def test_get_of_a_missing_or_malformed_key_is_not_found(db: Database, key: Any) -> None:
    with pytest.raises(NotFound) as info:
        db.get("parent", key)
    assert (info.value.table, info.value.key) == ("parent", key)


def test_get_embeds_the_referenced_row(db: Database, family: dict[str, Any]) -> None:
    data = plain(db.get("child", family["kid"]["id"], embed=("parent",)).data)
    assert data["parent"] == family["first"]
    assert "parent" not in plain(db.get("child", family["kid"]["id"]).data)


def test_query_embeds_the_referenced_row_in_every_item(db: Database, family: dict[str, Any]) -> None:
    page = db.query("child", Query(), embed=("parent",))
    assert [plain(item["parent"]) for item in page.items] == [family["first"], family["first"]]
    assert (page.total, page.page, page.per_page) == (2, 1, 20)


def test_children_lists_one_parents_rows_with_its_own_filters(db: Database, family: dict[str, Any]) -> None:
    assert child_labels(db, family["first"]["id"]) == ["kid", "other"]
    assert child_labels(db, family["second"]["id"]) == []
    query = QueryParser(CHILD).parse([("label__ne", "kid")], "label:desc")
    page = db.children("parent", family["first"]["id"], "child", "parent_id", query, embed=("parent",))
    assert [(item["label"], plain(item["parent"])["email"]) for item in page.items] == [("other", "ada@example.com")]


def test_children_of_a_missing_parent_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound) as info:
        db.children("parent", uid(404), "child", "parent_id", Query())
    assert info.value.table == "parent"


def test_parent_follows_a_foreign_key(db: Database, family: dict[str, Any]) -> None:
    snapshot = db.parent("child", family["kid"]["id"], "parent_id")
    assert plain(snapshot.data) == family["first"]
    assert snapshot.tag == db.get("parent", family["first"]["id"]).tag
    grand = db.parent("note", family["notes"][0]["id"], "child_id", embed=("parent",))
    assert plain(grand.data)["parent"] == family["first"]


def test_parent_through_a_field_that_is_no_foreign_key_is_refused(db: Database, family: dict[str, Any]) -> None:
    with pytest.raises(InvalidValue, match="is not a foreign key") as info:
        db.parent("child", family["kid"]["id"], "label")
    assert (info.value.table, info.value.field) == ("child", "label")


def test_parent_of_a_missing_row_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound) as info:
        db.parent("child", uid(404), "parent_id")
    assert info.value.table == "child"


def test_counts_gives_rows_per_table(db: Database, family: dict[str, Any]) -> None:
    assert db.counts() == {"parent": 2, "child": 2, "note": 2}


# -- insert ------------------------------------------------------------------


def test_insert_fills_timestamps_and_tags_the_new_row(db: Database, clock: Clock) -> None:
    clock.now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    snapshot = db.insert("parent", {"id": uid(1), "email": "a@example.com", "name": "A", "secret": "s"})
    data = plain(snapshot.data)
    assert data == {
        "id": str(uid(1)),
        "email": "a@example.com",
        "name": "A",
        "age": None,
        "active": None,
        "created_at": "2024-05-01T12:00:00.000000Z",
        "updated_at": "2024-05-01T12:00:00.000000Z",
    }
    assert snapshot.tag == db.get("parent", uid(1)).tag


def test_insert_keeps_timestamps_it_is_given(db: Database) -> None:
    given = datetime(2020, 2, 2, tzinfo=UTC)
    data = plain(db.insert("parent", {"id": uid(1), "email": "a@x.io", "name": "A", "created_at": given}).data)
    assert data["created_at"] == "2020-02-02T00:00:00.000000Z"
    assert data["updated_at"] == "2024-01-01T00:00:00.000000Z"


def test_auto_timestamps_never_run_backwards(db: Database, rows: Rows, clock: Clock) -> None:
    first = rows.parent()
    clock.now = START - timedelta(days=1)
    second = rows.parent()
    assert second["created_at"] == first["created_at"]
    assert [item["id"] for item in db.query("parent", Query()).items] == [first["id"], second["id"]]


def test_insert_with_a_missing_reference_is_refused_and_adds_nothing(db: Database, family: dict[str, Any]) -> None:
    before = snapshot_of(db)
    with pytest.raises(MissingReference) as info:
        db.insert("child", {"id": uid(99), "parent_id": uid(404), "label": "x", "status": "paid", "amount": 1})
    error = info.value
    assert (error.table, error.field, error.target, error.key) == ("child", "parent_id", "parent", str(uid(404)))
    assert snapshot_of(db) == before
    assert_indexes_consistent(db)


def test_insert_of_a_duplicate_email_is_a_conflict_and_adds_nothing(db: Database, family: dict[str, Any]) -> None:
    before = snapshot_of(db)
    with pytest.raises(Conflict) as info:
        db.insert("parent", {"id": uid(99), "email": "ADA@example.com", "name": "Copy"})
    assert (info.value.table, info.value.field) == ("parent", "email")
    assert snapshot_of(db) == before


def test_insert_of_a_bad_value_is_an_invalid_value(db: Database) -> None:
    with pytest.raises(InvalidValue) as info:
        db.insert("parent", {"id": uid(1), "email": "a@x.io", "name": "A", "age": "old"})
    assert (info.value.table, info.value.field) == ("parent", "age")
    assert db.counts()["parent"] == 0


# -- update and version tags -------------------------------------------------


def test_update_changes_values_bumps_the_tag_and_updated_at_only(db: Database, family: dict[str, Any]) -> None:
    before = db.get("parent", family["first"]["id"])
    after = db.update("parent", family["first"]["id"], {"name": "Ada L.", "age": 36})
    data = plain(after.data)
    assert (data["name"], data["age"]) == ("Ada L.", 36)
    assert data["created_at"] == family["first"]["created_at"]
    assert data["updated_at"] > family["first"]["updated_at"]
    assert after.tag != before.tag
    assert plain(db.get("parent", family["first"]["id"]).data) == data


def test_update_can_set_a_nullable_field_back_to_null(db: Database, rows: Rows) -> None:
    parent = rows.parent(age=30)
    assert plain(db.update("parent", parent["id"], {"age": None}).data)["age"] is None
    with pytest.raises(InvalidValue, match="may not be null"):
        db.update("parent", parent["id"], {"name": None})


def test_update_with_a_stale_tag_fails_and_changes_nothing(db: Database, family: dict[str, Any]) -> None:
    key = family["first"]["id"]
    stale = db.get("parent", key).tag
    db.update("parent", key, {"name": "first write"})
    before = snapshot_of(db)
    with pytest.raises(PreconditionFailed) as info:
        db.update("parent", key, {"name": "lost update"}, if_match=(stale,))
    assert (info.value.table, info.value.key) == ("parent", key)
    assert snapshot_of(db) == before


def test_update_with_a_matching_tag_or_star_succeeds(db: Database, family: dict[str, Any]) -> None:
    key = family["first"]["id"]
    current = db.get("parent", key).tag
    updated = db.update("parent", key, {"name": "one"}, if_match=("old-tag", current))
    assert plain(updated.data)["name"] == "one"
    assert plain(db.update("parent", key, {"name": "two"}, if_match=("*",)).data)["name"] == "two"
    with pytest.raises(PreconditionFailed):
        db.update("parent", key, {"name": "three"}, if_match=())


def test_a_tag_with_an_embedded_parent_changes_when_the_parent_changes(db: Database, family: dict[str, Any]) -> None:
    kid = family["kid"]["id"]
    embedded = db.get("child", kid, embed=("parent",)).tag
    bare = db.get("child", kid).tag
    db.update("parent", family["first"]["id"], {"name": "renamed"})
    assert db.get("child", kid).tag == bare
    assert db.get("child", kid, embed=("parent",)).tag != embedded
    with pytest.raises(PreconditionFailed):
        db.update("child", kid, {"label": "x"}, if_match=(embedded,), embed=("parent",))
    with pytest.raises(PreconditionFailed):
        db.delete("child", kid, cascade=True, if_match=(embedded,), embed=("parent",))
    assert db.get("child", kid).tag == bare


def test_update_of_a_missing_row_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound):
        db.update("parent", uid(404), {"name": "x"})


def test_the_primary_key_cannot_change(db: Database, family: dict[str, Any]) -> None:
    key = family["first"]["id"]
    with pytest.raises(InvalidValue, match="cannot be changed") as info:
        db.update("parent", key, {"id": uid(77)})
    assert info.value.field == "id"
    assert plain(db.update("parent", key, {"id": key, "name": "same id"}).data)["id"] == key


def test_update_to_a_taken_email_is_a_conflict_and_changes_nothing(db: Database, family: dict[str, Any]) -> None:
    before = snapshot_of(db)
    with pytest.raises(Conflict):
        db.update("parent", family["second"]["id"], {"email": "Ada@Example.com"})
    assert snapshot_of(db) == before


def test_email_is_reusable_after_delete_or_after_its_holder_changes_it(db: Database, rows: Rows) -> None:
    first = rows.parent(email="ada@example.com")
    db.update("parent", first["id"], {"email": "ada.lovelace@example.com"})
    second = rows.parent(email="ADA@example.com")
    db.delete("parent", second["id"])
    third = rows.parent(email="Ada@Example.com")
    with pytest.raises(Conflict):
        rows.parent(email="ada.LOVELACE@example.com")
    assert db.table("parent").lookup("email", "ada@example.com") == (uid_int(third["id"]),)
    assert_indexes_consistent(db)


def test_update_to_a_missing_reference_is_refused_and_changes_nothing(db: Database, family: dict[str, Any]) -> None:
    before = snapshot_of(db)
    with pytest.raises(MissingReference):
        db.update("child", family["kid"]["id"], {"parent_id": uid(404)})
    assert snapshot_of(db) == before
    assert_indexes_consistent(db)


def test_moving_a_child_moves_it_between_foreign_key_buckets(db: Database, family: dict[str, Any]) -> None:
    moved = db.update("child", family["kid"]["id"], {"parent_id": family["second"]["id"]}, embed=("parent",))
    assert plain(moved.data)["parent"]["email"] == "grace@example.com"
    assert child_labels(db, family["first"]["id"]) == ["other"]
    assert child_labels(db, family["second"]["id"]) == ["kid"]
    db.update("child", family["other"]["id"], {"parent_id": family["second"]["id"]})
    assert child_labels(db, family["first"]["id"]) == []
    assert uid_int(family["first"]["id"]) not in db.table("child").indexes["parent_id"]
    assert_indexes_consistent(db)
    db.delete("parent", family["first"]["id"])
    assert db.counts() == {"parent": 1, "child": 2, "note": 2}


def test_update_without_touching_the_foreign_key_does_not_recheck_it(db: Database, family: dict[str, Any]) -> None:
    updated = db.update("child", family["kid"]["id"], {"status": "shipped", "amount": "12.50"})
    assert (plain(updated.data)["status"], plain(updated.data)["amount"]) == ("shipped", "12.50")
    assert_indexes_consistent(db)


# -- delete and referential integrity ----------------------------------------


def test_deleting_a_referenced_parent_is_a_conflict_and_changes_nothing(db: Database, family: dict[str, Any]) -> None:
    before = snapshot_of(db)
    with pytest.raises(Conflict, match="referenced by 2 childs") as info:
        db.delete("parent", family["first"]["id"])
    assert (info.value.table, info.value.field) == ("parent", None)
    with pytest.raises(Conflict, match="referenced by 2 notes"):
        db.delete("child", family["kid"]["id"])
    db.delete("note", family["notes"][0]["id"])
    with pytest.raises(Conflict, match="referenced by 1 note;"):
        db.delete("child", family["kid"]["id"])
    assert snapshot_of(db)["parent"] == before["parent"]


def test_an_unreferenced_row_deletes_alone(db: Database, family: dict[str, Any]) -> None:
    assert db.delete("parent", family["second"]["id"]) == 1
    assert db.delete("child", family["other"]["id"]) == 1
    assert db.counts() == {"parent": 1, "child": 1, "note": 2}
    with pytest.raises(NotFound):
        db.get("parent", family["second"]["id"])
    with pytest.raises(NotFound):
        db.delete("parent", family["second"]["id"])


def test_cascade_deletes_the_parent_and_every_dependant_in_one_call(db: Database, family: dict[str, Any]) -> None:
    assert db.delete("parent", family["first"]["id"], cascade=True) == 5
    assert db.counts() == {"parent": 1, "child": 0, "note": 0}
    assert_indexes_consistent(db)
    assert db.table("child").indexes == {"parent_id": {}, "status": {}}
    assert db.table("note").indexes == {"child_id": {}}
    with pytest.raises(NotFound):
        db.get("note", family["notes"][1]["id"])
    rows = Rows(db)
    again = rows.parent(email="ada@example.com")
    assert rows.child(again["id"], label="fresh")["label"] == "fresh"


def test_delete_with_a_stale_tag_fails_and_changes_nothing(db: Database, family: dict[str, Any]) -> None:
    key = family["second"]["id"]
    stale = db.get("parent", key).tag
    db.update("parent", key, {"name": "changed"})
    before = snapshot_of(db)
    with pytest.raises(PreconditionFailed):
        db.delete("parent", key, if_match=(stale,))
    assert snapshot_of(db) == before
    assert db.delete("parent", key, if_match=(db.get("parent", key).tag,)) == 1
    assert db.delete("child", family["other"]["id"], if_match=("*",)) == 1


def test_a_nullable_foreign_key_may_be_null_and_then_has_no_parent() -> None:
    people = TableSpec("person", (Column("id", Kind.INT),), default_sort="id")
    pets = TableSpec(
        "pet",
        (Column("id", Kind.INT), Column("owner_id", Kind.INT, nullable=True)),
        foreign_keys=(ForeignKey("owner_id", "person", "owner"),),
        default_sort="id",
    )
    db = Database([people, pets])
    db.insert("person", {"id": 1})
    stray = db.insert("pet", {"id": 10, "owner_id": None}, embed=("owner",))
    assert stray.data == {"id": 10, "owner_id": None, "owner": None}
    db.insert("pet", {"id": 11, "owner_id": 1})
    with pytest.raises(NotFound) as info:
        db.parent("pet", 10, "owner_id")
    assert info.value.table == "person"
    assert db.parent("pet", 11, "owner_id").data == {"id": 1}
    assert db.delete("person", 1, cascade=True) == 2
    assert db.counts() == {"person": 0, "pet": 1}


def test_cascade_removes_a_row_reachable_by_two_paths_once_and_atomically() -> None:
    people = TableSpec("person", (Column("id", Kind.INT),), default_sort="id")
    loans = TableSpec(
        "loan",
        (Column("id", Kind.INT), Column("lender_id", Kind.INT), Column("borrower_id", Kind.INT)),
        foreign_keys=(ForeignKey("lender_id", "person", "lender"), ForeignKey("borrower_id", "person", "borrower")),
        default_sort="id",
    )
    db = Database([people, loans])
    db.insert("person", {"id": 1})
    db.insert("person", {"id": 2})
    db.insert("loan", {"id": 10, "lender_id": 1, "borrower_id": 1})
    db.insert("loan", {"id": 11, "lender_id": 1, "borrower_id": 2})
    db.insert("loan", {"id": 12, "lender_id": 2, "borrower_id": 2})
    assert db.delete("person", 1, cascade=True) == 3
    assert db.counts() == {"person": 1, "loan": 1}
    assert_indexes_consistent(db)


def test_cascade_through_a_self_reference_terminates() -> None:
    spec = TableSpec(
        "node",
        (Column("id", Kind.INT), Column("parent_id", Kind.INT, nullable=True)),
        foreign_keys=(ForeignKey("parent_id", "node", "parent"),),
        default_sort="id",
    )
    db = Database([spec])
    db.insert("node", {"id": 1, "parent_id": None})
    db.update("node", 1, {"parent_id": 1})
    db.insert("node", {"id": 2, "parent_id": 1})
    db.insert("node", {"id": 3, "parent_id": 2})
    db.insert("node", {"id": 4, "parent_id": None})
    with pytest.raises(Conflict):
        db.delete("node", 1)
    assert db.delete("node", 1, cascade=True) == 3
    assert db.counts() == {"node": 1}
    assert_indexes_consistent(db)


# -- load --------------------------------------------------------------------


def parent_records(*numbers: int) -> list[dict[str, Any]]:
    return [{"id": uid(n), "email": f"p{n}@example.com", "name": f"P{n}"} for n in numbers]


def child_records(parent: int, *numbers: int) -> list[dict[str, Any]]:
    return [
        {"id": uid(n), "parent_id": uid(parent), "label": f"c{n}", "status": "paid", "amount": "2.50"} for n in numbers
    ]


def test_load_inserts_every_batch_in_order(db: Database) -> None:
    loaded = db.load([("parent", parent_records(1, 2)), ("child", child_records(1, 10, 11)), ("parent", [])])
    assert loaded == {"parent": 2, "child": 2}
    assert child_labels(db, str(uid(1))) == ["c10", "c11"]
    created = {item["created_at"] for item in db.query("child", Query()).items}
    assert len(created) == 1
    assert_indexes_consistent(db)


@pytest.mark.parametrize(
    ("bad", "cause"),
    [
        ({"id": uid(113), "parent_id": uid(404), "label": "x", "status": "paid", "amount": 1}, MissingReference),
        ({"id": uid(113), "parent_id": uid(101), "label": "x", "status": "lost", "amount": 1}, InvalidValue),
        ({"id": uid(110), "parent_id": uid(101), "label": "x", "status": "paid", "amount": 1}, Conflict),
        ({"id": uid(113), "parent_id": uid(101), "status": "paid", "amount": 1}, InvalidValue),
    ],
)
def test_load_is_all_or_nothing(db: Database, rows: Rows, bad: dict[str, Any], cause: type[Exception]) -> None:
    kept = rows.parent(email="kept@example.com")
    rows.child(kept["id"])
    before = snapshot_of(db)
    batches = [
        ("parent", parent_records(101, 102)),
        ("child", [*child_records(101, 110, 111), bad, *child_records(102, 114)]),
        ("parent", parent_records(103)),
    ]
    with pytest.raises(BatchRejected) as info:
        db.load(batches)
    assert (info.value.table, info.value.index) == ("child", 2)
    assert isinstance(info.value.cause, cause)
    assert info.value.message.startswith("child[2]: ")
    assert snapshot_of(db) == before
    assert_indexes_consistent(db)
    assert db.load(batches[:1]) == {"parent": 2}


def encoded(table: Table, records: list[dict[str, Any]]) -> EncodedRows:
    """``records`` as another process would hand them over: already through the table's codecs."""
    return EncodedRows(table.encode(record) for record in records)


def test_an_encoded_batch_loads_like_the_values_it_was_encoded_from() -> None:
    by_values, by_encoding = Database(SPECS, clock=Clock()), Database(SPECS, clock=Clock())
    tagged = {"metadata": {"tags": ["a"]}, "due": "2024-05-01T00:00:00Z"}
    children = [{**child_records(1, 10)[0], **tagged}, {**child_records(1, 11)[0], **tagged}]

    by_values.load([("parent", parent_records(1, 2)), ("child", children)])
    by_encoding.load(
        [
            ("parent", encoded(Table(PARENT), parent_records(1, 2))),
            # Encoded apart, as two processes would: equal values arrive as different objects.
            ("child", encoded(Table(CHILD), children[:1])),
            ("child", encoded(Table(CHILD), children[1:])),
        ]
    )

    assert snapshot_of(by_encoding) == snapshot_of(by_values)
    assert_indexes_consistent(by_encoding)
    table = by_encoding.tables["child"]
    first, second = table.rows.values()
    assert table.value(first, "metadata") is table.value(second, "metadata")  # shared through the store's pool
    assert child_labels(by_encoding, str(uid(1))) == ["c10", "c11"]


def test_an_encoded_batch_is_still_checked_all_or_nothing(db: Database) -> None:
    batch = encoded(Table(CHILD), [*child_records(1, 10), *child_records(404, 11)])

    with pytest.raises(BatchRejected) as info:
        db.load([("parent", parent_records(1)), ("child", batch)])

    assert (info.value.index, type(info.value.cause)) == (1, MissingReference)
    assert db.counts() == {"parent": 0, "child": 0, "note": 0}


def test_load_into_an_unknown_table_rolls_back_what_came_before(db: Database) -> None:
    with pytest.raises(NotFound):
        db.load([("parent", parent_records(1)), ("nothing", [{}])])
    assert db.counts() == {"parent": 0, "child": 0, "note": 0}
    assert_indexes_consistent(db)


def test_load_rejects_duplicates_inside_the_batch(db: Database) -> None:
    records = parent_records(1, 2)
    records[1]["email"] = "P1@EXAMPLE.COM"
    with pytest.raises(BatchRejected) as info:
        db.load([("parent", records)])
    assert (info.value.table, info.value.index) == ("parent", 1)
    assert isinstance(info.value.cause, Conflict)
    assert db.counts()["parent"] == 0


# -- memory limit ------------------------------------------------------------


def test_at_the_memory_limit_writes_that_add_data_are_refused_but_others_go_on(
    db: Database, rows: Rows, family: dict[str, Any]
) -> None:
    db.accepting_growth = False
    with pytest.raises(InsufficientStorage):
        rows.parent()
    with pytest.raises(InsufficientStorage):
        db.load([("parent", parent_records(50))])
    with pytest.raises(InsufficientStorage):
        db.load([])
    assert plain(db.update("parent", family["second"]["id"], {"name": "still"}).data)["name"] == "still"
    assert db.delete("parent", family["second"]["id"]) == 1
    assert db.get("parent", family["first"]["id"]).data["email"] == "ada@example.com"
    db.accepting_growth = True
    assert rows.parent(email="new@example.com")["email"] == "new@example.com"


def test_load_stops_at_the_memory_limit_even_mid_batch(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = Database._prepare_insert

    def prepare_until_full(self: Database, *args: Any, **options: Any) -> Any:
        calls.append(args)
        if len(calls) == 2:
            self.accepting_growth = False
        return original(self, *args, **options)

    monkeypatch.setattr(Database, "_prepare_insert", prepare_until_full)
    with pytest.raises(InsufficientStorage):
        db.load([("parent", parent_records(1, 2, 3))])
    assert db.counts()["parent"] == 0


# -- specs -------------------------------------------------------------------


def test_specs_describe_their_columns_and_foreign_keys() -> None:
    email = PARENT.column("email")
    assert email is not None
    assert (email.unique, email.case_insensitive) == (True, True)
    assert PARENT.column("nothing") is None
    fk = CHILD.foreign_key("parent_id")
    assert fk is not None
    assert (fk.target, fk.name) == ("parent", "parent")
    assert CHILD.foreign_key("label") is None
