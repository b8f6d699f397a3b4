"""The dataset generator (bench/make_dataset.py) and the sample dataset it made (data/sample.json)."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from pathlib import Path
from random import Random
from typing import Any

import bcrypt
import orjson
import pytest

from bench.make_dataset import STATUSES, Options, generate, main, new_uuid
from server.app import create_app
from server.settings import Settings
from server.tables import ORDERS, USERS

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample.json"
STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
PRICE = re.compile(r"[1-9]\d*\.\d{2}|0\.(?!00)\d{2}")


def make(path: Path, *extra: str, users: int = 20, orders: int = 60, seed: int = 7) -> dict[str, Any]:
    arguments = ["--users", str(users), "--orders", str(orders), "--seed", str(seed), "--bcrypt-rounds", "4"]
    assert main([*arguments, "--output", str(path), *extra]) == 0
    document: dict[str, Any] = orjson.loads(path.read_bytes())
    return document


@pytest.fixture
def dataset_file(tmp_path: Path) -> Path:
    path = tmp_path / "dataset.json"
    make(path)
    return path


@pytest.fixture
def dataset(dataset_file: Path) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(dataset_file.read_bytes())
    return document


async def load(path: Path) -> dict[str, int]:
    app = create_app(Settings(bcrypt_rounds=4, seed_file=path))
    async with app.router.lifespan_context(app):
        counts: dict[str, int] = await app.state.store.counts()
    return counts


# -- the generator ---------------------------------------------------------------


def test_the_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    make(first)
    make(second)
    make(other, seed=8)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_writes_the_requested_counts_admin_first(dataset: dict[str, Any]) -> None:
    users, orders = dataset["users"], dataset["orders"]
    assert set(dataset) == {"users", "orders"}
    assert (len(users), len(orders)) == (20, 60)
    assert users[0]["role"] == "admin"
    assert users[0]["email"] == "admin@memdb.dev"
    assert [user["role"] for user in users[1:]] == ["user"] * 19


def test_every_order_references_a_user_created_before_it(dataset: dict[str, Any]) -> None:
    created = {user["id"]: user["created_at"] for user in dataset["users"]}
    for order in dataset["orders"]:
        assert order["user_id"] in created
        assert order["created_at"] > created[order["user_id"]]


def test_emails_are_unique_case_insensitively(tmp_path: Path) -> None:
    users = make(tmp_path / "many.json", users=3000, orders=0)["users"]
    emails = [user["email"].lower() for user in users]
    assert len(set(emails)) == len(emails) == 3000


def test_every_status_appears(dataset: dict[str, Any]) -> None:
    assert {order["status"] for order in dataset["orders"]} == set(STATUSES)


def test_every_status_appears_even_in_five_orders() -> None:
    orders = generate(Options(users=2, orders=5, bcrypt_rounds=4))["orders"]
    assert sorted(order["status"] for order in orders) == sorted(STATUSES)


def test_timestamps_are_formatted_increasing_and_consistent(dataset: dict[str, Any]) -> None:
    for section in ("users", "orders"):
        records = dataset[section]
        for record in records:
            assert STAMP.fullmatch(record["created_at"])
            assert STAMP.fullmatch(record["updated_at"])
            assert record["updated_at"] >= record["created_at"]
        stamps = [record["created_at"] for record in records]
        assert stamps == sorted(stamps)
        assert len(set(stamps)) == len(stamps)
    for order in dataset["orders"]:
        assert order["order_date"] == order["created_at"]
    assert dataset["users"][0]["created_at"] >= "2024-11-01"
    assert max(order["updated_at"] for order in dataset["orders"]) < "2026-11-01"


def test_orders_have_realistic_values(dataset: dict[str, Any]) -> None:
    for order in dataset["orders"]:
        assert 1 <= order["quantity"] <= 5
        assert PRICE.fullmatch(order["total_price"])
        address = order["shipping_address"]
        assert address is None or set(address) == {"line1", "city", "postal_code", "country"}
        assert order["metadata"] is None or {"channel", "gift"} <= set(order["metadata"])
    assert sum(order["shipping_address"] is not None for order in dataset["orders"]) > 40


def test_password_hashes_match_the_passwords(tmp_path: Path) -> None:
    users = make(tmp_path / "secrets.json", "--admin-password", "admin-secret", "--password", "user-secret")["users"]
    assert bcrypt.checkpw(b"admin-secret", users[0]["password_hash"].encode())
    assert {user["password_hash"] for user in users[1:]} == {users[1]["password_hash"]}
    assert bcrypt.checkpw(b"user-secret", users[1]["password_hash"].encode())
    assert users[1]["password_hash"].startswith("$2b$04$")
    assert all("password" not in user for user in users)


def test_uuids_are_the_ones_uuid4_would_make_from_the_same_bits() -> None:
    ours, reference = Random(3), Random(3)
    for _ in range(1000):
        assert new_uuid(ours) == str(uuid.UUID(int=reference.getrandbits(128), version=4))


def test_without_output_writes_to_stdout(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["--users", "3", "--orders", "4", "--bcrypt-rounds", "4"]) == 0
    document = orjson.loads(capsysbinary.readouterr().out)
    assert (len(document["users"]), len(document["orders"])) == (3, 4)


@pytest.mark.parametrize(
    "arguments",
    [
        ["--users", "0", "--orders", "0"],
        ["--users", "-1", "--orders", "0"],
        ["--users", "2", "--orders", "2", "--password", "short"],
        ["--users", "2", "--orders", "2", "--admin-password", "x" * 73],
        ["--users", "2", "--orders", "2", "--bcrypt-rounds", "3"],
        ["--users", "2", "--orders", "2", "--end", "yesterday"],
    ],
)
def test_rejects_bad_arguments(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(arguments)
    assert stopped.value.code == 2
    assert "error" in capsys.readouterr().err


async def test_the_generated_file_loads_into_the_store(dataset_file: Path) -> None:
    counts = await load(dataset_file)
    assert (counts[USERS.name], counts[ORDERS.name]) == (20, 60)


async def test_a_file_with_a_single_user_loads(tmp_path: Path) -> None:
    path = tmp_path / "alone.json"
    document = make(path, users=1, orders=3)
    assert {order["user_id"] for order in document["orders"]} == {document["users"][0]["id"]}
    counts = await load(path)
    assert (counts[USERS.name], counts[ORDERS.name]) == (1, 3)


# -- the shipped sample --------------------------------------------------------------


def test_the_sample_has_one_admin_forty_users_and_three_hundred_orders() -> None:
    document = orjson.loads(SAMPLE.read_bytes())
    users, orders = document["users"], document["orders"]
    assert (len(users), len(orders)) == (40, 300)
    admins = [user for user in users if user["role"] == "admin"]
    assert [admin["email"] for admin in admins] == ["admin@memdb.dev"]
    assert Counter(order["status"] for order in orders).keys() == set(STATUSES)
    user_ids = {user["id"] for user in users}
    assert all(order["user_id"] in user_ids for order in orders)


async def test_the_sample_loads_into_the_store() -> None:
    counts = await load(SAMPLE)
    assert (counts[USERS.name], counts[ORDERS.name]) == (40, 300)
