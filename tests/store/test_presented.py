"""Presented forms kept between pages: never stale, whatever changed the row, and within their budget."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from store import Database, Query, QueryParser, StoreActor, StoreClient
from store import commands as c
from store.presented import ENTRY_OVERHEAD, PresentedForms

from .conftest import CHILD, SPECS, Clock, Rows, plain, uid

EMBED = ("parent",)
PAID = QueryParser(CHILD).parse([("status", "paid")], None)
PAID_BY_AMOUNT = QueryParser(CHILD).parse([("status", "paid")], "amount:desc")
BY_LABEL = QueryParser(CHILD).parse([], "label:desc")
EVERY_CHILD = Query(per_page=100)


class Recording:
    """A presenter of JSON bytes whose items are plain dicts again, counting the forms it makes."""

    def __init__(self) -> None:
        self.made = 0

    def form(self, data: dict[str, Any]) -> bytes:
        self.made += 1
        return orjson.dumps(data)

    def item(self, form: bytes, parents: Sequence[tuple[str, bytes | None]]) -> dict[str, Any]:
        item: dict[str, Any] = orjson.loads(form)
        for name, parent in parents:
            item[name] = None if parent is None else orjson.loads(parent)
        return item


@pytest.fixture
def presenter() -> Recording:
    return Recording()


@pytest.fixture
def db(clock: Clock, presenter: Recording) -> Database:
    return Database(SPECS, clock=clock, forms=PresentedForms(presenter, 1 << 20))


def assert_pages_match(db: Database, query: Query = EVERY_CHILD, table: str = "child") -> list[dict[str, Any]]:
    """The presented page is exactly the page presented afresh (the plain path); return it."""
    embed = EMBED if table == "child" else ()
    presented = db.query(table, query, embed, presented=True)
    fresh = db.query(table, query, embed)
    assert presented.items == plain(fresh.items)
    assert (presented.total, presented.page, presented.per_page) == (fresh.total, fresh.page, fresh.per_page)
    return presented.items


def test_a_second_read_of_a_page_makes_no_form_and_answers_the_same(
    db: Database, rows: Rows, presenter: Recording
) -> None:
    parent = rows.parent()
    for _ in range(3):
        rows.child(parent["id"], status="paid")

    first = assert_pages_match(db, PAID)
    made = presenter.made
    assert made == 4  # three children and their parent, once

    again = db.query("child", PAID, EMBED, presented=True).items
    assert again == first
    assert presenter.made == made


def test_a_changed_row_is_presented_again_and_the_others_are_not(
    db: Database, rows: Rows, presenter: Recording
) -> None:
    parent = rows.parent()
    kids = [rows.child(parent["id"], status="paid") for _ in range(3)]
    assert_pages_match(db, PAID)
    made = presenter.made

    db.update("child", kids[1]["id"], {"label": "changed"})

    items = assert_pages_match(db, PAID)
    assert [item["label"] for item in items] == [kids[0]["label"], "changed", kids[2]["label"]]
    assert presenter.made == made + 1


def test_an_embedded_parent_is_always_its_current_version(db: Database, rows: Rows, presenter: Recording) -> None:
    first, second = rows.parent(), rows.parent()
    kid = rows.child(first["id"], status="paid")
    assert_pages_match(db, PAID)
    made = presenter.made

    db.update("parent", first["id"], {"name": "Renamed"})
    (item,) = assert_pages_match(db, PAID)
    assert item["parent"]["name"] == "Renamed"
    assert presenter.made == made + 1  # the parent only: the child's own form still holds

    db.update("child", kid["id"], {"parent_id": second["id"]})
    (item,) = assert_pages_match(db, PAID)
    assert item["parent"]["id"] == second["id"]


def test_a_page_is_said_to_be_made_of_the_same_only_while_its_rows_and_parents_are(
    db: Database, rows: Rows, clock: Clock
) -> None:
    parent = rows.parent()
    kids = [rows.child(parent["id"], status="paid") for _ in range(2)]

    def made_of(embed: tuple[str, ...] = EMBED) -> bytes | None:
        return db.query("child", PAID, embed, presented=True).made_of

    first = made_of()
    assert first is not None
    assert made_of() == first
    assert made_of(()) != first  # the same rows without their parents are other items
    db.update("parent", parent["id"], {"name": "Renamed"})
    renamed = made_of()
    assert renamed != first
    db.update("child", kids[0]["id"], {"label": "changed"})
    assert made_of() not in (first, renamed)
    assert db.query("child", PAID, EMBED).made_of is None  # dicts: not worked out

    other = Database(SPECS, clock=clock, forms=PresentedForms(Recording(), 1 << 20))  # the same tags, elsewhere
    other_rows = Rows(other)
    other_parent = other_rows.parent()
    for _ in range(2):
        other_rows.child(other_parent["id"], status="paid")
    assert other.query("child", PAID, EMBED, presented=True).made_of != first


def test_a_deleted_row_leaves_the_page_and_its_form_goes(db: Database, rows: Rows) -> None:
    parent = rows.parent()
    kids = [rows.child(parent["id"], status="paid") for _ in range(2)]
    assert_pages_match(db, PAID)
    forms = db.forms
    assert forms is not None
    assert len(forms) == 3

    db.delete("child", kids[0]["id"])

    assert len(forms) == 2
    assert [item["id"] for item in assert_pages_match(db, PAID)] == [kids[1]["id"]]


def test_a_restored_snapshot_is_presented_as_restored_never_as_it_was_changed(db: Database, rows: Rows) -> None:
    parent = rows.parent()
    kids = [rows.child(parent["id"], status="paid", label=f"before {n}") for n in range(3)]
    c.TakeSnapshot("baseline", ("parent", "child", "note")).apply(db)
    before = assert_pages_match(db, PAID)

    db.update("child", kids[0]["id"], {"label": "after"})
    db.update("parent", parent["id"], {"name": "After"})
    db.delete("child", kids[2]["id"])
    rows.child(parent["id"], status="paid", label="new")
    changed = assert_pages_match(db, PAID)
    assert changed != before

    c.RestoreSnapshot("baseline").apply(db)

    assert assert_pages_match(db, PAID) == before
    db.update("child", kids[0]["id"], {"label": "after the restore"})
    assert assert_pages_match(db, PAID)[0]["label"] == "after the restore"


def test_an_import_shows_only_once_committed_and_an_aborted_one_never(db: Database, rows: Rows) -> None:
    parent = rows.parent()
    rows.child(parent["id"], status="paid")
    assert_pages_match(db, PAID)

    transaction = db.begin()
    staged = [
        {"id": uid(500 + n), "parent_id": parent["id"], "label": f"imported {n}", "status": "paid", "amount": "3.00"}
        for n in range(2)
    ]
    db.stage(transaction, "child", staged)
    assert len(assert_pages_match(db, PAID)) == 1
    db.commit(transaction)
    assert [item["label"] for item in assert_pages_match(db, PAID)][1:] == ["imported 0", "imported 1"]

    transaction = db.begin()
    db.stage(transaction, "child", [{**staged[0], "id": uid(600), "label": "aborted"}])
    db.abort(transaction, 10)
    assert "aborted" not in [item["label"] for item in assert_pages_match(db, PAID)]


def test_rows_rolled_back_to_a_checkpoint_are_never_served(db: Database, rows: Rows) -> None:
    parent = rows.parent()
    mark = db.checkpoint()
    kid = rows.child(parent["id"], status="paid", label="rolled back")
    assert len(assert_pages_match(db, PAID)) == 1

    db.rollback(mark)
    assert assert_pages_match(db, PAID) == []
    # The same key inserted again with other values is a new row: its own form, not the old one.
    db.insert("child", {**plain(kid), "label": "again", "parent_id": parent["id"], "amount": "1.00"})
    assert [item["label"] for item in assert_pages_match(db, PAID)] == ["again"]


def test_hidden_columns_are_never_kept_and_reveal_answers_dicts(db: Database, rows: Rows) -> None:
    rows.parent(secret="hush")
    (item,) = assert_pages_match(db, Query(), "parent")
    assert "secret" not in item
    (revealed,) = db.query("parent", Query(), reveal=True, presented=True).items
    assert revealed["secret"] == "hush"


def test_forms_stay_within_their_budget_the_oldest_going_first(clock: Clock) -> None:
    presenter = Recording()
    forms = PresentedForms(presenter, 3_000)
    db = Database(SPECS, clock=clock, forms=forms)
    rows = Rows(db)
    parent = rows.parent()
    kids = [rows.child(parent["id"], status="paid") for _ in range(30)]

    assert_pages_match(db, Query(per_page=100))
    assert 0 < forms.held <= forms.budget
    assert len(forms) < len(kids)
    table = db.table("child")
    keys = [table.codecs["id"].encode(kid["id"]) for kid in kids]
    kept = [kid for kid, key in zip(kids, keys, strict=True) if forms.get(key, table.rows[key]) is not None]
    assert kept == kids[len(kids) - len(kept) :]  # the newest survive

    huge = PresentedForms(presenter, ENTRY_OVERHEAD)  # no form fits at all
    huge.put("key", ("row",), b"form")
    assert len(huge) == 0
    assert huge.held == 0


def test_nothing_is_kept_while_memory_is_short_and_pages_stay_right(
    db: Database, rows: Rows, presenter: Recording
) -> None:
    parent = rows.parent()
    rows.child(parent["id"], status="paid")
    db.memory_headroom = 1024  # less room than the cache's budget
    assert_pages_match(db, PAID)
    assert db.forms is not None
    assert len(db.forms) == 0

    db.memory_headroom = 1 << 30
    assert_pages_match(db, PAID)
    assert len(db.forms) == 2


def test_a_database_without_forms_answers_dicts(clock: Clock) -> None:
    db = Database(SPECS, clock=clock)
    Rows(db).parent()
    (item,) = db.query("parent", Query(), presented=True).items
    assert isinstance(item["email"], str)


async def test_the_client_asks_for_presented_pages_directly_and_through_the_mailbox(
    db: Database, rows: Rows, presenter: Recording
) -> None:
    parent = rows.parent()
    rows.child(parent["id"], status="paid")
    actor = StoreActor(db, queue_size=4)
    actor.start()
    client = StoreClient(actor)
    try:
        for direct in (True, False):
            client.direct_reads = direct
            found = await client.find("child", PAID, EMBED, presented=True)
            children = await client.children("parent", parent["id"], "child", "parent_id", Query(), EMBED, True)
            assert found.items == children.items == plain(db.query("child", PAID, EMBED).items)
    finally:
        await actor.close()


@pytest.mark.parametrize("budget", [2_000, 1 << 20])
def test_random_writes_never_make_a_presented_page_differ_from_a_fresh_one(budget: int, clock: Clock) -> None:
    chance = random.Random(budget)
    db = Database(SPECS, clock=clock, forms=PresentedForms(Recording(), budget))
    rows = Rows(db)
    parents = [rows.parent()["id"] for _ in range(4)]
    kids: list[str] = []
    snapshots = 0
    queries = (EVERY_CHILD, PAID, PAID_BY_AMOUNT, BY_LABEL, Query(page=2, per_page=3))
    made_of: dict[bytes, list[dict[str, Any]]] = {}  # what each digest stood for: never two different pages
    for step in range(400):
        move = chance.random()
        if move < 0.3 or not kids:
            kids.append(rows.child(chance.choice(parents), status=chance.choice(("paid", "pending")))["id"])
        elif move < 0.55:
            changes = chance.choice(
                [
                    {"label": f"label {step}"},
                    {"status": chance.choice(("paid", "shipped"))},
                    {"amount": f"{chance.randint(1, 99)}.50"},
                    {"parent_id": chance.choice(parents)},
                ]
            )
            db.update("child", chance.choice(kids), changes)
        elif move < 0.65:
            db.update("parent", chance.choice(parents), {"name": f"name {step}"})
        elif move < 0.75:
            db.delete("child", kids.pop(chance.randrange(len(kids))))
        elif move < 0.8:
            snapshots += 1
            c.TakeSnapshot(f"s{snapshots}", ("parent", "child", "note")).apply(db)
        elif move < 0.85 and snapshots:
            c.RestoreSnapshot(f"s{chance.randint(1, snapshots)}").apply(db)
            kids = [item["id"] for item in plain(db.query("child", EVERY_CHILD).items)]
        for query in queries:
            items = assert_pages_match(db, query)
            digest = db.query("child", query, EMBED, presented=True).made_of
            assert digest is not None
            assert made_of.setdefault(digest, items) == items
        assert_pages_match(db, Query(), "parent")
        forms = db.forms
        assert forms is not None
        assert forms.held <= budget
