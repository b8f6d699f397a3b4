"""Streaming a dataset file (server.ingest) and loading it in chunks, all or nothing (server.seed)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import bcrypt
import orjson
import pytest

from server.ingest.dataset_file import Irregular, stream_records
from server.ingest.document import DatasetError, DocumentCheck, document_records
from server.ingest.ndjson import NdjsonCheck, ndjson_records
from server.seed import SeedError, load_seed
from server.tables import TABLES
from store import Database, StoreActor, StoreClient

TRICKY = [
    {"id": 1, "text": "}, {", "nested": {"a": {"b": "]"}}, "list": [{"x": "},{"}, {"y": 2}]},
    {"id": 2, "quote": 'say "}" and \\ then }', "empty": {}, "unicode": "é}ü"},
    {"id": 3},
]


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "data.json"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("indent", [False, True])
def test_records_come_out_whole_however_the_file_is_cut(tmp_path: Path, block: int, indent: bool) -> None:
    document = {"users": TRICKY, "orders": [{"id": 9, "note": "]}"}]}
    option = orjson.OPT_INDENT_2 if indent else 0
    path = write(tmp_path, orjson.dumps(document, option=option))

    records = list(stream_records(path, block))

    assert records == [("users", n, record) for n, record in enumerate(TRICKY)] + [
        ("orders", 0, {"id": 9, "note": "]}"})
    ]


@pytest.mark.parametrize(
    "text",
    ['{"users": [], "orders": []}', " { } ", '{"users":[]}', '{"orders": [ ]}', '\n{\n "users" : [ {"id":1} ] \n}\n'],
)
def test_empty_and_spaced_documents_stream(tmp_path: Path, text: str) -> None:
    with write(tmp_path, text).open("rb") as file:
        assert list(stream_records(write(tmp_path, text))) == list(document_records(file))


@pytest.mark.parametrize(
    "text",
    [
        '{"orders": [], "users": []}',  # orders before users
        '{"users": [], "users": []}',  # a section twice
        '{"products": []}',  # unknown section
        '{"users": [1, 2]}',  # elements that are not objects
        '{"users": {}}',  # not a list
        "[]",  # not an object
        '{"users": [{"id": 1}]} trailing',  # content after the document
        '{"users": [{"id": 1}',  # cut short
        "",  # empty file
    ],
)
def test_anything_unusual_is_left_to_the_general_reader(tmp_path: Path, text: str) -> None:
    with pytest.raises(Irregular):
        list(stream_records(write(tmp_path, text)))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "expected an object"),
        ('{"users": {}}', "'users' must be a list"),
    ],
)
def test_the_general_check_words_the_errors(text: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        check_whole(text.encode())


def check_whole(document: bytes, at: str = "") -> DocumentCheck:
    check = DocumentCheck(at)
    check.feed(document)
    check.close()
    return check


# -- loading in chunks ----------------------------------------------------------

HASH = bcrypt.hashpw(b"seeded-secret", bcrypt.gensalt(4)).decode()


def user(n: int) -> dict[str, Any]:
    return {"id": str(uuid.UUID(int=n)), "email": f"u{n}@example.com", "full_name": f"U{n}", "password_hash": HASH}


def order(n: int, buyer: int) -> dict[str, Any]:
    return {"id": str(uuid.UUID(int=1000 + n)), "user_id": str(uuid.UUID(int=buyer)), "product_name": "Pen"}


async def run_seed(path: Path, chunk: int) -> tuple[dict[str, int], Database]:
    database = Database(TABLES)
    actor = StoreActor(database)
    actor.start()
    try:
        return await load_seed(path, StoreClient(actor), 4, chunk=chunk), database
    finally:
        await actor.close()


async def test_a_file_loads_in_many_chunks(tmp_path: Path) -> None:
    users = [user(n) for n in range(1, 8)]
    orders = [{**order(n, 1 + n % 7), "quantity": 1, "total_price": "2.50"} for n in range(10)]
    path = write(tmp_path, orjson.dumps({"users": users, "orders": orders}))

    loaded, database = await run_seed(path, chunk=3)

    assert loaded == {"user": 7, "order": 10}
    assert database.table("order").in_default_order


async def test_a_bad_record_in_a_late_chunk_undoes_the_chunks_before_it(tmp_path: Path) -> None:
    users = [user(n) for n in range(1, 8)]
    orders = [{**order(n, 1), "quantity": 1, "total_price": "2.50"} for n in range(5)]
    orders[4]["user_id"] = str(uuid.UUID(int=99))  # no such user
    path = write(tmp_path, orjson.dumps({"users": users, "orders": orders}))

    database = Database(TABLES)
    actor = StoreActor(database)
    actor.start()
    with pytest.raises(SeedError, match=r"orders\[4\]"):
        await load_seed(path, StoreClient(actor), 4, chunk=2)
    await actor.close()

    assert database.counts() == dict.fromkeys(database.counts(), 0)


async def test_a_valid_file_the_stream_reader_declines_still_loads_whole(tmp_path: Path) -> None:
    orders = [{**order(0, 1), "quantity": 1, "total_price": "2.50"}]
    path = write(tmp_path, orjson.dumps({"orders": orders, "users": [user(1)]}))  # orders first

    loaded, _ = await run_seed(path, chunk=2)

    assert loaded == {"user": 1, "order": 1}


async def test_an_unreadable_path_is_a_seed_error(tmp_path: Path) -> None:
    with pytest.raises(SeedError, match="cannot read"):
        await run_seed(tmp_path, chunk=2)  # a directory


# -- the checks that run while a body arrives -----------------------------------


def pieces(raw: bytes, size: int) -> list[bytes]:
    return [raw[start : start + size] for start in range(0, len(raw), size)]


@pytest.mark.parametrize("size", [1, 7, 1 << 20])
def test_the_ndjson_check_and_reader_take_lines_however_the_text_is_cut(tmp_path: Path, size: int) -> None:
    lines = [
        {"section": "orders", "record": {"id": "o1", "note": "}\n{"}},
        {"section": "users", "record": {"id": "u1"}},
        {"section": "orders", "record": {"id": "o2"}},
    ]
    raw = b"\n".join(orjson.dumps(line) for line in lines) + b"\n\n" + orjson.dumps(lines[1])  # no final newline
    check = NdjsonCheck()
    for piece in pieces(raw, size):
        check.feed(piece)
    check.close()
    path = write(tmp_path, raw)

    assert check.counts == {"users": 2, "orders": 2}
    assert check.users_after_orders
    with path.open("rb") as file:
        records = list(ndjson_records(file, check.users_after_orders))
    assert [(record.section, record.number, record.data["id"]) for record in records] == [
        ("users", 0, "u1"),
        ("users", 1, "u1"),
        ("orders", 0, "o1"),
        ("orders", 1, "o2"),
    ]


@pytest.mark.parametrize("size", [1, 5, 1 << 20])
def test_the_document_check_counts_records_and_keeps_the_members_beside_them(size: int) -> None:
    document = {"data": {"orders": [{"id": 1}, 2, [3]], "users": [{"a": {"data": []}}]}, "mode": "x", "type": ["i"]}
    check = DocumentCheck(at="data")
    for piece in pieces(orjson.dumps(document), size):
        check.feed(piece)
    check.close()

    assert check.found
    assert check.counts == {"users": 1, "orders": 3}
    assert check.header == {"mode": "x", "type": ["i"]}


def test_a_document_without_its_dataset_member_is_noticed() -> None:
    check = check_whole(b'{"type": "export"}', at="data")

    assert not check.found
    assert check.header == {"type": "export"}
    with pytest.raises(DatasetError, match="expected a JSON object"):
        check_whole(b"[1]", at="data")
