"""Commands: each one applies itself, says whether it writes, and reads back from its encoded form unchanged."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import pytest

from store import Database, Predicate, Query, SortKey
from store import commands as c
from store.plain import from_plain, to_plain
from store.table import EncodedRows

from .conftest import SPECS, Clock, uid


class Colour(enum.StrEnum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 3


WIDE = UUID("ffffffff-ffff-ffff-ffff-ffffffffffff").int

EXAMPLES: list[c.Command[Any]] = [
    c.Get("parent", uid(1), ("user",), (Predicate(("owner",), "eq", WIDE),), True),
    c.Find("child", Query((Predicate(("status",), "in", ("paid", "shipped")),), (SortKey("amount", True),), 2, 5)),
    c.Children("parent", uid(1), "child", "parent_id", Query(), ("parent",)),
    c.Parent("child", uid(2), "parent_id"),
    c.Snapshot(("parent", "child"), reveal=True),
    c.Checkpoint(),
    c.Counts(),
    c.Insert(
        "child",
        {
            "id": uid(2),
            "amount": Decimal("19.90"),
            "due": datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC),
            "metadata": {"$i": "looks like a tag", "nested": [1, {"$t": 2}], "big": 2**70},
            "status": Colour.RED,
            "quantity": Size.BIG,
        },
        ("parent",),
    ),
    c.Load([("parent", [{"id": uid(1), "name": "P"}]), ("child", EncodedRows([{"id": WIDE, "metadata": b"{}"}]))]),
    c.InsertEach("parent", [{"id": uid(1)}, {"id": uid(3)}]),
    c.Begin(),
    c.Stage(4, "parent", ({"id": uid(1)},)),
    c.Commit(4),
    c.Abort(4, 50),
    c.Update("parent", uid(1), {"name": "new", "age": None}, ("1.2", "3.4"), (), (Predicate(("id",), "eq", WIDE),)),
    c.Delete("parent", str(uid(1)), cascade=True, if_match=None),
    c.Purge("child", (Predicate(("status",), "eq", "paid"), Predicate(("metadata", "tier"), "gte", 2.5))),
    c.Rollback({"parent": 3, "child": 0}),
    c.ListSnapshots(),
    c.DescribeSnapshot("baseline"),
    c.FindSnapshot("baseline"),
    c.TakeSnapshot("baseline", ("parent", "child")),
    c.RestoreSnapshot("baseline"),
    c.DropSnapshot("baseline"),
    c.TrimPools(),
]


def test_every_command_class_has_an_example() -> None:
    assert {type(command) for command in EXAMPLES} == set(c.REGISTRY.values())


@pytest.mark.parametrize("command", EXAMPLES, ids=lambda command: command.op)
def test_a_command_reads_back_equal_from_its_encoded_form(command: c.Command[Any]) -> None:
    decoded = c.decode(command.encode())
    assert decoded == command
    assert type(decoded) is type(command)
    assert decoded.encode() == command.encode()


def test_the_encoded_form_is_plain_json_naming_the_command_and_its_version() -> None:
    op, version, fields = orjson.loads(c.Commit(7).encode())
    assert (op, version, fields) == ("commit", 1, {"transaction": 7})


def test_values_keep_their_types_through_the_encoded_form() -> None:
    insert = c.decode(EXAMPLES[7].encode())
    assert isinstance(insert, c.Insert)
    values = insert.values
    assert values["amount"] == Decimal("19.90")
    assert isinstance(values["amount"], Decimal)
    assert values["metadata"] == {"$i": "looks like a tag", "nested": [1, {"$t": 2}], "big": 2**70}
    load = c.decode(EXAMPLES[8].encode())
    assert isinstance(load, c.Load)
    encoded_rows = load.batches[1][1]
    assert isinstance(encoded_rows, EncodedRows)
    assert encoded_rows == [{"id": WIDE, "metadata": b"{}"}]


def test_only_commands_that_change_the_database_are_writes() -> None:
    writes = {op for op, cls in c.REGISTRY.items() if cls.writes}
    assert writes == {
        "insert",
        "load",
        "insert_each",
        "begin",
        "stage",
        "commit",
        "abort",
        "update",
        "delete",
        "purge",
        "rollback",
        "snapshot_take",
        "snapshot_restore",
        "snapshot_drop",
    }


@pytest.mark.parametrize(
    "data",
    [b"not json", b"[]", b'["nope", 1, {}]', b'["commit", 99, {"transaction": 1}]', b'["commit", 1, {"x": 1}]'],
)
def test_something_that_is_no_encoded_command_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"encoded command|version|commit: "):
        c.decode(data)


def test_an_unknown_tag_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\$nope"):
        from_plain({"$nope": 1})


def test_a_value_with_no_stable_form_is_refused() -> None:
    with pytest.raises(TypeError, match="object"):
        to_plain(object())


def test_a_second_command_cannot_take_an_existing_op() -> None:
    with pytest.raises(TypeError, match="taken"):

        class Impostor(c.Command[int]):
            op = "commit"


def test_a_command_applies_itself_to_the_database() -> None:
    db = Database(SPECS, clock=Clock())
    inserted = c.Insert("parent", {"id": uid(1), "email": "a@example.com", "name": "A"}).apply(db)
    assert c.Get("parent", uid(1)).apply(db).tag == inserted.tag
    assert c.Counts().apply(db)["parent"] == 1


class Name(str):
    pass


class Count(int):
    pass


class Items(list[int]):
    pass


class Pair(tuple[int, int]):
    pass


def test_subclasses_of_plain_types_read_back_as_the_plain_type() -> None:
    values = [Name("x"), Count(3), Items([1]), Pair((1, 2)), frozenset({1}), {2}]
    assert from_plain(orjson.loads(orjson.dumps(to_plain(values)))) == ["x", 3, [1], (1, 2), frozenset({1}), {2}]


def test_the_encoded_form_stays_byte_for_byte_what_logs_already_hold() -> None:
    """Logs written by earlier versions must replay: changing this form needs a new command version."""
    update = c.Update(
        "child",
        UUID(int=2),
        {"amount": Decimal("1.50"), "due": datetime(2024, 5, 1, tzinfo=UTC), "metadata": {"$x": 1}},
        ("1.2",),
    )
    assert update.encode() == (
        b'["update",1,{"table":"child","key":{"$u":"00000000000000000000000000000002"},'
        b'"changes":{"amount":{"$d":"1.50"},"due":{"$dt":"2024-05-01T00:00:00+00:00"},"metadata":{"$$":{"$x":1}}},'
        b'"if_match":{"$t":["1.2"]},"embed":{"$t":[]},"guard":{"$t":[]}}]'
    )
