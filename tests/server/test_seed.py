"""Loading a JSON dataset at start-up (``MEMDB_SEED_FILE``): what loads, what stops start-up, production."""

from __future__ import annotations

import contextlib
import copy
import gc
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import orjson
import pytest

from server.app import create_app
from server.seed import SeedError, load_seed
from server.settings import Settings
from server.tables import TABLES
from store import Database, StoreActor, StoreClient

USERS = [str(uuid.UUID(int=n)) for n in (101, 102, 103)]
ORDERS = [str(uuid.UUID(int=n)) for n in (201, 202)]
HASH = bcrypt.hashpw(b"seeded-secret", bcrypt.gensalt(4)).decode()
STAMPS = ("created_at", "updated_at", "order_date")
MISSING = object()
DROP = object()


def dataset() -> dict[str, Any]:
    """A small valid dataset; users 0 and 1 share a creation time, user 2 is the oldest."""
    return {
        "users": [
            {
                "id": USERS[0],
                "email": "ada@example.com",
                "full_name": "Ada",
                "password": "correct-horse",
                "role": "admin",
                "created_at": "2024-01-01T00:00:00Z",
                "updated_at": "2024-01-02T00:00:00Z",
            },
            {
                "id": USERS[1],
                "email": "bob@example.com",
                "full_name": "Bob",
                "password_hash": HASH,
                "age": 40,
                "metadata": {"source": "import"},
                "created_at": "2024-01-01T00:00:00Z",
            },
            {
                "id": USERS[2],
                "email": "cy@example.com",
                "full_name": "Cy",
                "password": "another-horse",
                "created_at": "2023-06-01T12:30:00.123456+02:00",
            },
        ],
        "orders": [
            {
                "id": ORDERS[0],
                "user_id": USERS[1],
                "product_name": "Lamp",
                "quantity": 2,
                "total_price": "19.9",
                "status": "paid",
                "order_date": "2024-01-31T00:00:00Z",
                "created_at": "2024-02-01T00:00:00Z",
            },
            {"id": ORDERS[1], "user_id": USERS[0], "product_name": "Desk", "quantity": 1, "total_price": 250},
        ],
    }


def broken(section: str, index: int, **changes: Any) -> dict[str, Any]:
    """:func:`dataset` with one record changed (``DROP`` removes a key)."""
    document = dataset()
    record = document[section][index]
    for key, value in changes.items():
        if value is DROP:
            del record[key]
        else:
            record[key] = copy.deepcopy(value)
    return document


@pytest.fixture
def seed_document() -> Any:
    return dataset()


@pytest.fixture
def environment() -> str:
    return "development"


@pytest.fixture
def seed_file(tmp_path: Path, seed_document: Any) -> Path:
    path = tmp_path / "seed.json"
    if isinstance(seed_document, bytes):
        path.write_bytes(seed_document)
    elif seed_document is not MISSING:
        path.write_bytes(orjson.dumps(seed_document))
    return path


@pytest.fixture
def settings(settings: Settings, seed_file: Path, environment: str) -> Settings:
    return settings.model_copy(update={"seed_file": seed_file, "env": environment})


async def start(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pass


async def test_a_good_file_loads_users_and_orders_keeping_ids_and_times(client: httpx.AsyncClient) -> None:
    users = [(await client.get(f"/users/{user_id}")).json()["data"] for user_id in USERS]
    orders = [(await client.get(f"/orders/{order_id}")).json()["data"] for order_id in ORDERS]

    assert [user["email"] for user in users] == ["ada@example.com", "bob@example.com", "cy@example.com"]
    assert users[0]["role"] == "admin"
    assert users[0]["created_at"] == "2024-01-01T00:00:00.000000Z"
    assert users[0]["updated_at"] == "2024-01-02T00:00:00.000000Z"
    assert users[1]["age"] == 40
    assert users[1]["metadata"] == {"source": "import"}
    assert users[1]["role"] == "user"
    assert users[2]["created_at"] == "2023-06-01T10:30:00.123456Z"
    assert orders[0]["total_price"] == "19.90"
    assert orders[0]["status"] == "paid"
    assert orders[0]["order_date"] == "2024-01-31T00:00:00.000000Z"
    assert orders[0]["created_at"] == "2024-02-01T00:00:00.000000Z"
    assert orders[0]["user"] == users[1]
    assert orders[1]["total_price"] == "250.00"
    assert orders[1]["status"] == "pending"
    assert orders[1]["user"] == users[0]
    listed = await client.get(f"/users/{USERS[1]}/orders")
    assert [order["id"] for order in listed.json()["data"]] == [ORDERS[0]]
    assert "password" not in (await client.get("/users", params={"id__in": ",".join(USERS)})).text


@pytest.mark.parametrize(
    ("sort", "expected"),
    [(None, [2, 0, 1]), ("created_at:desc", [0, 1, 2]), ("created_at:asc", [2, 0, 1])],
)
async def test_seeded_rows_sort_by_creation_time_with_ties_in_file_order(
    client: httpx.AsyncClient, sort: str | None, expected: list[int]
) -> None:
    params = {"id__in": ",".join(USERS)} | ({"sort": sort} if sort else {})

    response = await client.get("/users", params=params)

    assert [user["id"] for user in response.json()["data"]] == [USERS[n] for n in expected]


async def test_the_api_works_on_top_of_seeded_data(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/orders", json={"user_id": USERS[2], "product_name": "Pen", "quantity": 3, "total_price": "1.5"}
    )
    duplicate = await client.post(
        "/users", json={"email": "ADA@example.com", "full_name": "Ada 2", "password": "x" * 8}
    )
    blocked = await client.delete(f"/users/{USERS[1]}")

    assert created.status_code == 201
    assert created.json()["data"]["user"]["id"] == USERS[2]
    assert duplicate.status_code == 409
    assert blocked.status_code == 409


@pytest.mark.parametrize(
    ("seed_document", "record"),
    [
        pytest.param(broken("users", 2, email="not-an-email"), "users[2]", id="invalid-email"),
        pytest.param(broken("users", 1, email="ADA@example.com"), "users[1]", id="duplicate-email"),
        pytest.param(broken("users", 1, id=USERS[0]), "users[1]", id="duplicate-id"),
        pytest.param(broken("users", 0, password_hash=HASH), "users[0]", id="password-and-hash"),
        pytest.param(broken("users", 1, password_hash="plain"), "users[1]", id="hash-not-bcrypt"),
        pytest.param(broken("users", 2, password="short"), "users[2]", id="password-too-short"),
        pytest.param(broken("users", 0, nickname="ada"), "users[0]", id="unknown-field"),
        pytest.param(broken("users", 1, id=DROP), "users[1]", id="no-id"),
        pytest.param(broken("users", 0, created_at="0001-01-01T00:00:00+01:00"), "users[0]", id="time-out-of-range"),
        pytest.param(broken("orders", 1, user_id=str(uuid.uuid4())), "orders[1]", id="order-for-no-user"),
        pytest.param(broken("orders", 0, quantity=0), "orders[0]", id="quantity-0"),
        pytest.param(broken("orders", 0, total_price="1.234"), "orders[0]", id="price-3-decimals"),
        pytest.param(broken("orders", 1, status="lost"), "orders[1]", id="status-unknown"),
        pytest.param(broken("orders", 1, id=ORDERS[0]), "orders[1]", id="duplicate-order-id"),
    ],
)
async def test_a_bad_record_stops_start_up_naming_it(settings: Settings, record: str) -> None:
    with pytest.raises(SeedError) as caught:
        await start(settings)

    message = str(caught.value)
    assert record in message
    assert str(settings.seed_file) in message


@pytest.mark.parametrize(
    ("seed_document", "complaint"),
    [
        pytest.param(b"{not json", "not valid JSON", id="not-json"),
        pytest.param(b"", "not valid JSON", id="empty"),
        pytest.param(MISSING, "cannot read", id="missing"),
        pytest.param([], "expected an object", id="array"),
        pytest.param({"users": [], "products": []}, "expected an object", id="unknown-section"),
        pytest.param({"users": {}}, "'users' must be a list", id="users-not-a-list"),
        pytest.param({"users": [], "orders": "none"}, "'orders' must be a list", id="orders-not-a-list"),
    ],
)
async def test_a_bad_file_stops_start_up(settings: Settings, complaint: str) -> None:
    with pytest.raises(SeedError, match=complaint) as caught:
        await start(settings)

    assert str(settings.seed_file) in str(caught.value)


@pytest.mark.parametrize("seed_document", [{}, {"users": [], "orders": []}])
async def test_an_empty_dataset_loads_nothing(client: httpx.AsyncClient) -> None:
    assert (await client.get("/orders")).json()["meta"]["total"] == 0
    assert (await client.get("/users", params={"id__in": ",".join(USERS)})).json()["meta"]["total"] == 0


@pytest.mark.parametrize("seed_document", [dataset(), b"{not json", MISSING])
@pytest.mark.parametrize("environment", ["production"])
async def test_production_ignores_the_seed_file(client: httpx.AsyncClient) -> None:
    for user_id in USERS:
        assert (await client.get(f"/users/{user_id}")).status_code == 404
    assert (await client.get("/orders")).json()["meta"]["total"] == 0


@contextlib.asynccontextmanager
async def fresh_store() -> AsyncIterator[tuple[Database, StoreClient]]:
    """An empty store with its actor running, as the server's lifespan starts it."""
    database = Database(TABLES)
    actor = StoreActor(database)
    actor.start()
    try:
        yield database, StoreClient(actor)
    finally:
        await actor.close()


async def load_into_store(path: Path, workers: int | None) -> tuple[dict[str, int], Database]:
    """Load ``path`` into a fresh store, chunks of two records, validated by ``workers`` processes."""
    async with fresh_store() as (database, store):
        loaded = await load_seed(path, store, bcrypt_rounds=4, chunk=2, workers=workers)
    return loaded, database


def stored(database: Database) -> dict[str, list[dict[str, Any]]]:
    """Every user and order as JSON, without the times (the store fills in "now" for those a record leaves out)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for name, snapshot in database.snapshot(("user", "order")).items():
        rows = orjson.loads(orjson.dumps(snapshot.present(0, len(snapshot))))
        tables[name] = [{key: value for key, value in row.items() if key not in STAMPS} for row in rows]
    return tables


async def test_worker_processes_load_the_same_rows_as_one_process(seed_file: Path) -> None:
    alone, by_itself = await load_into_store(seed_file, workers=0)
    helped, with_workers = await load_into_store(seed_file, workers=2)

    assert helped == alone == {"user": 3, "order": 2}
    assert stored(with_workers) == stored(by_itself)
    user = with_workers.get("user", uuid.UUID(USERS[0]), reveal=True).data
    assert (user["created_at"], user["updated_at"]) == ("2024-01-01T00:00:00.000000Z", "2024-01-02T00:00:00.000000Z")
    assert bcrypt.checkpw(b"correct-horse", user["password_hash"].encode())


@pytest.mark.parametrize(
    ("seed_document", "complaint"),
    [
        pytest.param(broken("users", 2, email="not-an-email"), "users[2] (id ", id="invalid-email"),
        pytest.param(broken("users", 1, email="ADA@example.com"), "users[1] (id ", id="duplicate-email"),
        pytest.param(broken("orders", 1, user_id=str(uuid.uuid4())), "orders[1] (id ", id="order-for-no-user"),
        pytest.param(b'{"users": [{"id": 1}, ', "not valid JSON", id="cut-short"),
    ],
)
async def test_with_worker_processes_a_bad_record_still_names_it_and_loads_nothing(
    seed_file: Path, complaint: str
) -> None:
    async with fresh_store() as (database, store):
        with pytest.raises(SeedError) as caught:
            await load_seed(seed_file, store, bcrypt_rounds=4, chunk=2, workers=2)

    assert str(caught.value).startswith(f"{seed_file}: ")
    assert complaint in str(caught.value)
    assert database.counts() == {"user": 0, "order": 0, "session": 0}


@pytest.mark.parametrize("seed_document", [{"orders": dataset()["orders"], "users": dataset()["users"]}])
async def test_with_worker_processes_an_irregular_file_is_still_read_whole(seed_file: Path) -> None:
    loaded, _ = await load_into_store(seed_file, workers=2)

    assert loaded == {"user": 3, "order": 2}


def _small_int(value: object) -> bool:
    """CPython's cached small integers: one object whatever a pool does."""
    return type(value) is int and -5 <= value <= 256


async def test_a_large_file_loads_through_workers_and_leaves_its_rows_out_of_later_collections(
    seed_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("server.seed.PARALLEL_FROM_BYTES", 0)  # every file counts as large
    frozen = gc.get_freeze_count()
    try:
        loaded, database = await load_into_store(seed_file, workers=None)
        assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()  # the test process goes on; a server would keep them frozen

    assert loaded == {"user": 3, "order": 2}
    assert database.get("order", uuid.UUID(ORDERS[0])).data["total_price"] == "19.90"
    assert gc.isenabled()
    # The pools kept only the values several rows share (the rest cost a pool entry each for nothing).
    for table in database.tables.values():
        for name, pool in table.pools.items():
            values = [row[table.position[name]] for row in table.rows.values()]
            holders = Counter(id(value) for value in values if value is not None and not _small_int(value))
            assert len(pool) == sum(1 for row_count in holders.values() if row_count > 1), (table.name, name)
    # Plain passwords are hashed into rows the workers already encoded: each user can log in with theirs.
    hashes = [database.get("user", uuid.UUID(user_id), reveal=True).data["password_hash"] for user_id in USERS]
    assert bcrypt.checkpw(b"correct-horse", hashes[0].encode())
    assert hashes[1] == HASH
    assert bcrypt.checkpw(b"another-horse", hashes[2].encode())
