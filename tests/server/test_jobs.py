"""Background jobs over HTTP: imports (JSON and NDJSON, both modes), exports, cancelling, limits and roles.

The big test imports 10,000 users and 50,000 orders as one job and watches it
run; the dataset is generated once for the module. Tests that need a job to
be at a particular point (running, mid-abort, just committed, just after its
snapshot) hold it there by wrapping one store method with an ``asyncio.Event``
instead of relying on timing. Waiting is always bounded polling with a deadline.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from bench.make_dataset import Options, generate
from server.settings import Settings
from server.tables import USERS
from store import InsufficientStorage, StoreClient
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Login
from tests.utils.api import TIMESTAMP, assert_error, create_order, create_user
from tests.utils.asgi import asgi_client, serving, sign_in

Record = dict[str, Any]
Dataset = dict[str, list[Record]]

DATASET_PASSWORD = "password123"  # make_dataset's password for every user but its admin
DATASET_ADMIN_PASSWORD = "memdb-admin-2026"
NDJSON = "application/x-ndjson"
JSON_TYPE = {"Content-Type": "application/json"}
POLL = 0.1  # seconds between looks at a job; a job gives way to busy requests, so do not crowd it
DEADLINE = 300.0  # seconds; generous, the machine may be shared


# -- datasets -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big() -> Dataset:
    """10,000 users (the dataset's admin first) and 50,000 orders, built once for the module."""
    return generate(Options(users=10_000, orders=50_000, bcrypt_rounds=4, seed=11))


@pytest.fixture(scope="module")
def big_body(big: Dataset) -> bytes:
    return orjson.dumps({"type": "import", "mode": "all-or-nothing", "data": big})


@pytest.fixture(scope="module")
def medium() -> Dataset:
    """1,000 users and 5,000 orders: enough slices that a record "in the middle" has many staged before it."""
    return generate(Options(users=1_000, orders=5_000, bcrypt_rounds=4, seed=12))


@pytest.fixture
def small() -> Dataset:
    """40 users and 200 orders, a fresh copy for each test to spoil as it likes."""
    return generate(Options(users=40, orders=200, bcrypt_rounds=4, seed=13))


def import_body(data: Dataset, mode: str = "all-or-nothing") -> bytes:
    return orjson.dumps({"type": "import", "mode": mode, "data": data})


def ndjson_of(data: Dataset) -> bytes:
    lines = [{"section": section, "record": record} for section in ("users", "orders") for record in data[section]]
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


# -- helpers --------------------------------------------------------------------------------------------------------


async def start_job(
    http: httpx.AsyncClient, body: bytes, content_type: str = "application/json", params: dict[str, str] | None = None
) -> Record:
    """POST a job; it must be accepted. Returns the job as the 202 showed it."""
    response = await http.post("/jobs", content=body, headers={"Content-Type": content_type}, params=params)
    assert response.status_code == 202, response.text
    job: Record = response.json()["data"]
    assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert response.headers["cache-control"] == "no-store"
    assert job["status"] in ("queued", "running")
    assert TIMESTAMP.fullmatch(job["created_at"])
    return job


async def get_job(http: httpx.AsyncClient, job_id: str) -> Record:
    response = await http.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    job: Record = response.json()["data"]
    return job


async def wait_until(
    check: Callable[[], Awaitable[bool]], what: str, deadline: float = DEADLINE, interval: float = POLL
) -> None:
    """Poll ``check`` until it holds; fail after ``deadline`` seconds."""
    give_up = time.monotonic() + deadline
    while not await check():
        assert time.monotonic() < give_up, f"gave up waiting for {what}"
        await asyncio.sleep(interval)


async def finished(http: httpx.AsyncClient, job_id: str, deadline: float = DEADLINE) -> Record:
    """Poll the job until it has finished; return it."""
    job: Record = {}

    async def done() -> bool:
        job.update(await get_job(http, job_id))
        return job["status"] in ("succeeded", "failed", "cancelled")

    await wait_until(done, f"job {job_id} to finish", deadline)
    return job


async def wait_event(event: asyncio.Event, what: str, deadline: float = 60.0) -> None:
    try:
        await asyncio.wait_for(event.wait(), deadline)
    except TimeoutError:
        pytest.fail(f"gave up waiting for {what}")


def with_params(path: str, **params: int) -> str:
    """``path`` with ``params`` added to the query it may already have (``params=`` would replace it)."""
    return str(httpx.URL(path).copy_merge_params(params))


async def total(http: httpx.AsyncClient, path: str) -> int:
    response = await http.get(with_params(path, per_page=1))
    assert response.status_code == 200, response.text
    count: int = response.json()["meta"]["total"]
    return count


async def everything(http: httpx.AsyncClient, path: str) -> list[Record]:
    """Every item of a collection, page by page."""
    items: list[Record] = []
    page = 1
    while True:
        response = await http.get(with_params(path, per_page=100, page=page))
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["data"])
        if page >= body["meta"]["total_pages"]:
            return items
        page += 1


def store_of(app: FastAPI) -> StoreClient:
    store: StoreClient = app.state.store
    return store


def assert_nothing_staged(app: FastAPI) -> None:
    """No rows sit in any table unseen: an aborted transaction left nothing behind."""
    for table in app.state.actor.database.tables.values():
        assert len(table.rows) == len(table), f"{table.name} still holds staged rows"


def public(record: Record) -> Record:
    """A dataset record as the API shows it."""
    return {key: value for key, value in record.items() if key != "password_hash"}


def export_document(response: httpx.Response) -> Dataset:
    document: Dataset = orjson.loads(response.content)
    return document


def records_by_id(records: list[Record]) -> dict[str, Record]:
    return {record["id"]: record for record in records}


@asynccontextmanager
async def fresh_app(settings: Settings, admin_email: str = "fresh-admin@example.com") -> AsyncIterator[FastAPI]:
    """A second, empty application (its own store) with its own start-up admin."""
    async with serving(settings.model_copy(update={"admin_email": admin_email})) as application:
        yield application


@asynccontextmanager
async def signed_in(app: FastAPI, email: str, password: str) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app, await sign_in(app, email, password)) as http:
        yield http


# -- the big import -------------------------------------------------------------------------------------------------


async def test_a_10k_user_50k_order_import_runs_as_a_job_with_progress_and_lands_consistently(
    app: FastAPI, client: httpx.AsyncClient, big: Dataset, big_body: bytes
) -> None:
    users, orders = big["users"], big["orders"]
    job = await start_job(client, big_body)
    assert job["type"] == "import"
    assert job["parameters"] == {"mode": "all-or-nothing", "records": 60_000}
    assert job["progress"]["total"] == 60_000
    assert job["result_url"] is None

    partial: list[Record] = []

    async def done() -> bool:
        current = await get_job(client, job["id"])
        if current["status"] == "running" and 0 < current["progress"]["done"] < current["progress"]["total"]:
            if not partial:  # mid-import, nothing of it is visible yet
                assert await total(client, "/orders") == 0
                assert await total(client, "/users") == 1
                assert (await client.get(f"/users/{users[1]['id']}")).status_code == 404
                assert (await client.get(f"/users/{users[1]['id']}/orders")).status_code == 404
            partial.append(current)
        job.update(current)
        return current["status"] not in ("queued", "running")

    await wait_until(done, "the import to finish")
    assert partial, "never saw the job running with 0 < done < total"
    assert [entry["progress"]["done"] for entry in partial] == sorted(entry["progress"]["done"] for entry in partial)
    assert job["status"] == "succeeded", job["error"]
    assert job["result"] == {
        "mode": "all-or-nothing",
        "imported": {"users": 10_000, "orders": 50_000},
        "rejected_count": 0,
    }
    assert job["progress"] == {"done": 60_000, "total": 60_000}
    assert job["error"] is None
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]

    assert await total(client, "/users") == 10_001  # the start-up admin too
    assert await total(client, "/orders") == 50_000
    assert_nothing_staged(app)

    # every field of a few records comes back as it was given
    for user in (users[0], users[1], users[-1]):
        response = await client.get(f"/users/{user['id']}")
        assert response.status_code == 200
        assert response.json()["data"] == public(user)
    for order in (orders[0], orders[25_000], orders[-1]):
        response = await client.get(f"/orders/{order['id']}")
        assert response.status_code == 200
        data = response.json()["data"]
        assert data.pop("user")["id"] == order["user_id"]
        assert data == order

    # the status index agrees with the data
    by_status = Counter(order["status"] for order in orders)
    assert len(by_status) == 5
    for status, count in by_status.items():
        assert await total(client, f"/orders?status={status}") == count
    rarest = min(by_status, key=lambda status: by_status[status])
    listed = await everything(client, f"/orders?status={rarest}")
    assert [order["id"] for order in listed] == [order["id"] for order in orders if order["status"] == rarest]
    assert {order["status"] for order in listed} == {rarest}

    # and so does the user_id index behind the join
    orders_of: dict[str, list[str]] = defaultdict(list)
    for order in orders:
        orders_of[order["user_id"]].append(order["id"])
    busiest = max(orders_of, key=lambda user_id: len(orders_of[user_id]))
    without = next(user["id"] for user in users if user["id"] not in orders_of)
    for user_id in [busiest, without, *random.Random(3).sample(sorted(orders_of), 5)]:
        joined = await everything(client, f"/users/{user_id}/orders")
        assert [order["id"] for order in joined] == orders_of[user_id]  # in creation order, as imported
        assert {order["user"]["id"] for order in joined} <= {user_id}

    # the imported users can sign in with the dataset's password
    response = await client.post("/auth/token", json={"email": users[1]["email"], "password": DATASET_PASSWORD})
    assert response.status_code == 200


# -- all or nothing -------------------------------------------------------------------------------------------------


def spoil(data: Dataset, how: str) -> str:
    """Make one record in the middle of ``data`` bad; return the name the error must give it."""
    users, orders = data["users"], data["orders"]
    middle_user, middle_order = len(users) // 2, len(orders) // 2
    if how == "invalid-order":  # the models catch it
        orders[middle_order]["quantity"] = 0
        return f"orders[{middle_order}] (id {orders[middle_order]['id']})"
    if how == "duplicate-email":  # only the store sees it (emails are unique, case-insensitively)
        users[middle_user]["email"] = users[7]["email"].upper()
        return f"users[{middle_user}] (id {users[middle_user]['id']})"
    assert how == "order-without-user"  # only the store sees it
    orders[middle_order]["user_id"] = str(uuid.uuid4())
    return f"orders[{middle_order}] (id {orders[middle_order]['id']})"


@pytest.mark.parametrize("how", ["invalid-order", "duplicate-email", "order-without-user"])
async def test_an_all_or_nothing_import_with_one_bad_record_in_the_middle_fails_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, medium: Dataset, how: str
) -> None:
    mine = await create_user(client)
    my_order = await create_order(client, mine["id"])
    before = await store_of(app).counts()
    data = copy.deepcopy(medium)
    name = spoil(data, how)

    job = await finished(client, (await start_job(client, import_body(data)))["id"])

    assert job["status"] == "failed"
    assert job["result"] is None
    assert job["error"]["code"] == "JOB_FAILED"
    assert job["error"]["message"].startswith(f"{name}: ")
    assert job["error"]["message"].endswith("nothing was imported")
    assert [detail["record"] for detail in job["error"]["details"]] == [name]
    assert 0 < job["progress"]["done"] < job["progress"]["total"]  # it got that far, then undid it all
    assert await store_of(app).counts() == before
    assert_nothing_staged(app)
    assert (await client.get(f"/users/{data['users'][1]['id']}")).status_code == 404
    assert (await client.get(f"/orders/{my_order['id']}")).status_code == 200
    assert await total(client, f"/users/{mine['id']}/orders") == 1

    # nothing of it lingers either (emails, ids): the good dataset imports in full afterwards
    again = await finished(client, (await start_job(client, import_body(medium)))["id"])
    assert again["status"] == "succeeded", again["error"]
    assert await total(client, "/orders") == 5_001


async def test_a_record_that_clashes_with_the_store_fails_an_all_or_nothing_import(
    app: FastAPI, client: httpx.AsyncClient, small: Dataset
) -> None:
    await create_user(client, email=small["users"][20]["email"])
    before = await store_of(app).counts()

    job = await finished(client, (await start_job(client, import_body(small)))["id"])

    assert job["status"] == "failed"
    assert job["error"]["message"].startswith(f"users[20] (id {small['users'][20]['id']}): ")
    assert "already exists" in job["error"]["message"]
    assert await store_of(app).counts() == before
    assert_nothing_staged(app)


# -- skip-invalid ---------------------------------------------------------------------------------------------------


async def test_skip_invalid_imports_the_good_records_and_lists_the_bad_with_reasons(
    app: FastAPI, client: httpx.AsyncClient, small: Dataset
) -> None:
    users, orders = small["users"], small["orders"]
    users[2]["email"] = "not-an-email"
    users[5]["email"] = users[1]["email"].upper()
    orders[3]["user_id"] = users[2]["id"]  # its user is rejected, so it is too
    orders[7]["quantity"] = 0
    orders[9]["user_id"] = str(uuid.uuid4())
    del orders[11]["product_name"]

    job = await finished(client, (await start_job(client, import_body(small, "skip-invalid")))["id"])

    assert job["status"] == "succeeded", job["error"]
    result = job["result"]
    assert result["mode"] == "skip-invalid"
    refused_users = {users[2]["id"], users[5]["id"]}  # their orders go too
    bad_orders = {3, 7, 9, 11} | {index for index, order in enumerate(orders) if order["user_id"] in refused_users}
    assert result["imported"] == {"users": 38, "orders": 200 - len(bad_orders)}
    assert result["rejected_count"] == 2 + len(bad_orders)
    rejected = {(entry["section"], entry["index"]): entry for entry in result["rejected"]}
    assert set(rejected) == {("users", 2), ("users", 5)} | {("orders", index) for index in bad_orders}
    for (section, index), entry in rejected.items():
        assert entry["record"] == f"{section}[{index}] (id {small[section][index]['id']})"
        assert entry["reason"]
    assert rejected["users", 2]["reason"].startswith("email:")
    assert "already exists" in rejected["users", 5]["reason"]
    assert "names no" in rejected["orders", 3]["reason"]
    assert rejected["orders", 7]["reason"].startswith("quantity:")
    assert "names no" in rejected["orders", 9]["reason"]
    assert rejected["orders", 11]["reason"].startswith("product_name:")
    assert job["progress"] == {"done": 240, "total": 240}

    assert await total(client, "/users") == 39
    assert await total(client, "/orders") == 200 - len(bad_orders)
    assert (await client.get(f"/users/{users[5]['id']}")).status_code == 404
    for index, order in enumerate(orders):
        if index in (0, 199) or index in bad_orders:
            expected = 404 if index in bad_orders else 200
            assert (await client.get(f"/orders/{order['id']}")).status_code == expected
    assert_nothing_staged(app)


# -- cancelling -----------------------------------------------------------------------------------------------------


async def test_cancelling_a_running_import_stops_it_and_leaves_nothing_visible_during_and_after_the_abort(
    app: FastAPI, client: httpx.AsyncClient, medium: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = await create_user(client)
    await create_order(client, mine["id"], status="paid")
    data = copy.deepcopy(medium)
    for order in data["orders"][:10]:  # staged orders of a user everyone can see
        order["user_id"] = mine["id"]
    store = store_of(app)
    before = await store.counts()
    stage, abort = store.stage, store.abort
    staged_enough, aborting, finish_abort = asyncio.Event(), asyncio.Event(), asyncio.Event()
    staged_rows = aborts = 0

    async def held_stage(transaction: int, table: str, rows: Any) -> int:
        nonlocal staged_rows
        if staged_rows >= 3_000:  # users and some orders staged: hold the job here, running, until it is cancelled
            staged_enough.set()
            await asyncio.Event().wait()
        staged_rows += len(rows)
        return await stage(transaction, table, rows)

    async def held_abort(transaction: int, limit: int) -> int:
        nonlocal aborts
        aborts += 1
        left = await abort(transaction, limit)
        if aborts == 2:  # part way through the abort: let the test look around
            aborting.set()
            await finish_abort.wait()
        return left

    monkeypatch.setattr(store, "stage", held_stage)
    monkeypatch.setattr(store, "abort", held_abort)
    job = await start_job(client, import_body(data))
    await wait_event(staged_enough, "the import to stage 3,000 rows")
    running = await get_job(client, job["id"])
    assert running["status"] == "running"
    assert 0 < running["progress"]["done"] < running["progress"]["total"]
    await assert_only_the_visible_rows_show(client, mine["id"], data)

    cancelling = asyncio.create_task(client.delete(f"/jobs/{job['id']}"))
    await wait_event(aborting, "the abort to start")
    assert await store.counts() == before  # mid-abort, nothing of the import is visible
    await assert_only_the_visible_rows_show(client, mine["id"], data)
    assert not cancelling.done()  # the DELETE answers once the job has stopped and cleaned up
    finish_abort.set()
    response = await cancelling

    assert response.status_code == 200, response.text
    cancelled = response.json()["data"]
    assert cancelled["status"] == "cancelled"
    assert cancelled["error"]["code"] == "CANCELLED"
    assert cancelled["finished_at"] is not None
    assert_error(await client.get(f"/jobs/{job['id']}"), 404, "NOT_FOUND")  # DELETE removed what it cancelled
    assert await store.counts() == before
    assert_nothing_staged(app)
    assert aborts > 2  # it went on removing staged rows, slice by slice

    await assert_only_the_visible_rows_show(client, mine["id"], data)

    monkeypatch.undo()
    again = await finished(client, (await start_job(client, import_body(data)))["id"])
    assert again["status"] == "succeeded", again["error"]
    assert await total(client, f"/users/{mine['id']}/orders") == 11


async def assert_only_the_visible_rows_show(http: httpx.AsyncClient, mine: str, data: Dataset) -> None:
    """Reads of every kind (lists, index lookups, joins, single rows) see the one visible order only."""
    assert await total(http, "/users") == 2
    assert await total(http, "/orders") == 1
    for status in ("pending", "paid", "shipped", "delivered", "cancelled"):
        assert await total(http, f"/orders?status={status}") == (status == "paid")
    assert await total(http, "/orders?status__in=paid,delivered") == 1
    assert await total(http, f"/orders?user_id={mine}") == 1
    assert await total(http, f"/users/{mine}/orders") == 1
    assert await total(http, f"/users/{mine}/orders?status=paid") == 1
    assert (await http.get(f"/users/{data['users'][1]['id']}")).status_code == 404
    assert (await http.get(f"/users/{data['users'][1]['id']}/orders")).status_code == 404
    assert (await http.get(f"/orders/{data['orders'][0]['id']}")).status_code == 404
    assert (await http.get(f"/orders/{data['orders'][0]['id']}/user")).status_code == 404


async def test_a_cancel_that_arrives_once_the_commit_is_under_way_is_too_late_and_says_so(
    app: FastAPI, client: httpx.AsyncClient, small: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_of(app)
    commit = store.commit
    committed, release = asyncio.Event(), asyncio.Event()

    async def slow_to_answer(transaction: int) -> int:
        count = await commit(transaction)  # applied: every row is visible now ...
        committed.set()
        await release.wait()  # ... but the job has not heard back yet
        return count

    monkeypatch.setattr(store, "commit", slow_to_answer)
    job = await start_job(client, import_body(small))
    await wait_event(committed, "the commit")
    cancelling = asyncio.create_task(client.delete(f"/jobs/{job['id']}"))
    await wait_until(lambda: _is_cancelling(job["id"]), "the cancellation to reach the job")
    release.set()
    response = await cancelling

    assert_error(response, 409, "CONFLICT")
    assert "succeeded before it could be cancelled" in response.json()["error"]["message"]
    done = await get_job(client, job["id"])
    assert done["status"] == "succeeded"  # and it is true: everything was imported
    assert await total(client, "/orders") == 200
    assert await total(client, "/users") == 41


async def _is_cancelling(job_id: str) -> bool:
    """Whether the job's task has been asked to stop (or has stopped already)."""
    tasks = [task for task in asyncio.all_tasks() if task.get_name() == f"memdb-job-{job_id}"]
    return not tasks or tasks[0].cancelling() > 0


async def test_a_finished_job_cannot_be_cancelled(client: httpx.AsyncClient, small: Dataset) -> None:
    job = await finished(client, (await start_job(client, import_body(small)))["id"])
    assert job["status"] == "succeeded"

    response = await client.delete(f"/jobs/{job['id']}")

    error = assert_error(response, 409, "CONFLICT")
    assert "succeeded" in error["message"]
    assert (await get_job(client, job["id"]))["status"] == "succeeded"


# -- exports --------------------------------------------------------------------------------------------------------


async def test_an_export_taken_while_writers_run_is_one_consistent_moment(
    app: FastAPI, client: httpx.AsyncClient, small: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await finished(client, (await start_job(client, import_body(small)))["id"]))["status"] == "succeeded"
    store = store_of(app)
    snapshot = store.snapshot
    writers, steps = 4, 6
    halfway, snapshot_taken, writers_done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    reached = 0
    written: dict[int, list[tuple[Record, Record]]] = defaultdict(list)

    async def held_snapshot(tables: tuple[str, ...], reveal: bool = False) -> Any:
        taken = await snapshot(tables, reveal)
        snapshot_taken.set()
        await writers_done.wait()  # the job is running: everything the writers do now comes after its moment
        return taken

    async def writer(number: int) -> None:
        nonlocal reached
        for step in range(steps):
            if step == steps // 2:
                reached += 1
                if reached == writers:
                    halfway.set()
                await snapshot_taken.wait()
                first_user, first_order = written[number][0]
                renamed = await client.patch(f"/users/{first_user['id']}", json={"full_name": "Renamed Later"})
                assert renamed.status_code == 200, renamed.text
                assert (await client.delete(f"/orders/{first_order['id']}")).status_code == 204
            user = await create_user(client, full_name=f"Writer {number} step {step}")
            order = await create_order(client, user["id"], product_name=f"by writer {number}")
            written[number].append((user, order))

    async def exporter() -> Record:
        await halfway.wait()
        job = await start_job(client, orjson.dumps({"type": "export", "include_password_hashes": True}))
        await wait_event(snapshot_taken, "the export's snapshot")
        assert (await get_job(client, job["id"]))["status"] == "running"
        return job

    monkeypatch.setattr(store, "snapshot", held_snapshot)
    *_, job = await asyncio.gather(*(writer(number) for number in range(writers)), exporter())
    writers_done.set()
    job = await finished(client, job["id"])

    assert job["status"] == "succeeded", job["error"]
    response = await client.get(f"/jobs/{job['id']}/result")
    assert response.status_code == 200
    document = export_document(response)
    users, orders = records_by_id(document["users"]), records_by_id(document["orders"])
    assert job["result"]["counts"] == {"users": len(users), "orders": len(orders)}
    assert job["result"]["format"] == "json"
    assert job["result"]["bytes"] == len(response.content)
    assert job["progress"] == {"done": len(users) + len(orders), "total": len(users) + len(orders)}

    # exactly what was there at the snapshot: the first half of every writer's work, as it was then
    before_writers = {"users": 41, "orders": 200}
    assert len(users) == before_writers["users"] + writers * steps // 2
    assert len(orders) == before_writers["orders"] + writers * steps // 2
    for number in range(writers):
        for step, (user, order) in enumerate(written[number]):
            assert (user["id"] in users) == (step < steps // 2)
            assert (order["id"] in orders) == (step < steps // 2)
        first_user, first_order = written[number][0]
        assert users[first_user["id"]]["full_name"] == f"Writer {number} step 0"  # renamed only later
        assert first_order["id"] in orders  # deleted only later
    assert all(order["user_id"] in users for order in orders.values())  # no order without its user
    assert all(user["password_hash"] for user in users.values())

    # the store itself has everything the writers did
    assert await total(client, "/users") == before_writers["users"] + writers * steps
    assert await total(client, "/orders") == before_writers["orders"] + writers * steps - writers


async def test_an_export_with_hashes_imports_into_a_fresh_server_unchanged_and_its_users_can_sign_in(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, small: Dataset
) -> None:
    small["users"][3].pop("password_hash")  # imported locked
    small["users"][4]["password_hash"] = None
    small["users"][5].pop("password_hash")
    small["users"][5]["password"] = "a-new-password-5"
    assert (await finished(client, (await start_job(client, import_body(small)))["id"]))["status"] == "succeeded"
    own = await create_user(client, password="own-password-1")
    await create_order(client, own["id"], metadata={"note": "made over the API"}, shipping_address=None)
    export = await finished(
        client, (await start_job(client, orjson.dumps({"type": "export", "include_password_hashes": True})))["id"]
    )
    assert export["status"] == "succeeded", export["error"]
    assert export["result_url"] == f"/api/v1/jobs/{export['id']}/result"
    download = await client.get(export["result_url"].removeprefix("/api/v1"))
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/json"
    assert download.headers["content-disposition"] == f'attachment; filename="memdb-export-{export["id"]}.json"'
    assert download.headers["cache-control"] == "no-store"  # it holds password hashes
    original = export_document(download)
    assert original["users"][0]["email"] == ADMIN_EMAIL
    assert [user["password_hash"] for user in original["users"][4:6]] == ["!", "!"]  # after the start-up admin

    async with fresh_app(settings) as fresh, signed_in(fresh, "fresh-admin@example.com", ADMIN_PASSWORD) as other:
        body = orjson.dumps({"type": "import", "data": original})
        imported = await finished(other, (await start_job(other, body))["id"])
        assert imported["status"] == "succeeded", imported["error"]
        again = await finished(
            other, (await start_job(other, orjson.dumps({"type": "export", "include_password_hashes": True})))["id"]
        )
        copied = export_document(await other.get(f"/jobs/{again['id']}/result"))

        # equal data: ids, timestamps, every field (hashes too), in the same order; only the fresh admin is extra
        assert copied["users"][0]["email"] == "fresh-admin@example.com"
        assert copied["users"][1:] == original["users"]
        assert copied["orders"] == original["orders"]

        # the users came along with their passwords
        for email, password in [
            (ADMIN_EMAIL, ADMIN_PASSWORD),  # the first server's admin, still an admin
            (small["users"][0]["email"], DATASET_ADMIN_PASSWORD),
            (small["users"][1]["email"], DATASET_PASSWORD),
            (small["users"][5]["email"], "a-new-password-5"),
            (own["email"], "own-password-1"),
        ]:
            async with signed_in(fresh, email, password) as user:
                assert (await user.get("/auth/me")).json()["data"]["email"] == email
        async with asgi_client(fresh) as anon:
            for locked in small["users"][3:5]:
                response = await anon.post(
                    "/auth/token", json={"email": locked["email"], "password": "anything-at-all"}
                )
                assert_error(response, 401, "INVALID_CREDENTIALS")


async def test_an_ndjson_export_without_hashes_imports_with_the_users_locked_and_round_trips_again(
    client: httpx.AsyncClient, settings: Settings, small: Dataset
) -> None:
    assert (await finished(client, (await start_job(client, import_body(small)))["id"]))["status"] == "succeeded"
    export = await finished(
        client, (await start_job(client, orjson.dumps({"type": "export", "format": "ndjson"})))["id"]
    )
    assert export["parameters"] == {"tables": ["users", "orders"], "format": "ndjson", "include_password_hashes": False}
    download = await client.get(f"/jobs/{export['id']}/result")
    assert download.headers["content-type"] == NDJSON
    assert download.headers["content-disposition"].endswith(f'memdb-export-{export["id"]}.ndjson"')
    lines = [orjson.loads(line) for line in download.content.splitlines()]
    assert [line["section"] for line in lines] == ["users"] * 41 + ["orders"] * 200
    assert not any("password_hash" in line["record"] for line in lines)

    async with fresh_app(settings) as fresh, signed_in(fresh, "fresh-admin@example.com", ADMIN_PASSWORD) as other:
        imported = await finished(other, (await start_job(other, download.content, NDJSON))["id"])
        assert imported["status"] == "succeeded", imported["error"]
        assert imported["result"]["imported"] == {"users": 41, "orders": 200}
        with_hashes = await finished(
            other, (await start_job(other, orjson.dumps({"type": "export", "include_password_hashes": True})))["id"]
        )
        copied = export_document(await other.get(f"/jobs/{with_hashes['id']}/result"))
        assert [user.pop("password_hash") for user in copied["users"][1:]] == ["!"] * 41  # every one locked
        assert copied["users"][1:] == [line["record"] for line in lines[:41]]
        assert copied["orders"] == [line["record"] for line in lines[41:]]
        async with asgi_client(fresh) as anon:
            response = await anon.post(
                "/auth/token", json={"email": small["users"][1]["email"], "password": DATASET_PASSWORD}
            )
            assert_error(response, 401, "INVALID_CREDENTIALS")

        # an export of locked accounts, hashes and all, imports once more (the lock mark is not a bcrypt hash)
        reexport = export_document(await other.get(f"/jobs/{with_hashes['id']}/result"))
        async with (
            fresh_app(settings, "third-admin@example.com") as third,
            signed_in(third, "third-admin@example.com", ADMIN_PASSWORD) as last,
        ):
            body = orjson.dumps(
                {"type": "import", "data": {"users": reexport["users"][1:], "orders": reexport["orders"]}}
            )
            once_more = await finished(last, (await start_job(last, body))["id"])
            assert once_more["status"] == "succeeded", once_more["error"]
            assert once_more["result"]["imported"] == {"users": 41, "orders": 200}


async def test_an_export_of_some_tables_only(client: httpx.AsyncClient, small: Dataset) -> None:
    assert (await finished(client, (await start_job(client, import_body(small)))["id"]))["status"] == "succeeded"
    export = await finished(
        client, (await start_job(client, orjson.dumps({"type": "export", "tables": ["orders"]})))["id"]
    )
    document = export_document(await client.get(f"/jobs/{export['id']}/result"))
    assert list(document) == ["orders"]
    assert document["orders"] == small["orders"]
    assert export["result"]["counts"] == {"orders": 200}


# -- NDJSON, media types and body limits ----------------------------------------------------------------------------


async def test_an_ndjson_import_works_in_any_section_order_and_skips_blank_lines(
    client: httpx.AsyncClient, small: Dataset
) -> None:
    lines = ndjson_of(small).splitlines()
    body = b"\n".join([*lines[40:], b"", *lines[:40], b"   "])  # orders first: users still go in first

    job = await finished(client, (await start_job(client, body, NDJSON + "; charset=utf-8"))["id"])

    assert job["status"] == "succeeded", job["error"]
    assert job["parameters"] == {"mode": "all-or-nothing", "records": 240}
    assert job["result"]["imported"] == {"users": 40, "orders": 200}
    assert await total(client, "/orders") == 200


async def test_an_ndjson_import_in_skip_invalid_mode_names_records_by_their_place_in_their_section(
    client: httpx.AsyncClient, small: Dataset
) -> None:
    small["orders"][4]["quantity"] = -1
    job = await finished(
        client, (await start_job(client, ndjson_of(small), NDJSON, params={"mode": "skip-invalid"}))["id"]
    )
    assert job["status"] == "succeeded"
    assert job["result"]["imported"] == {"users": 40, "orders": 199}
    assert [entry["record"] for entry in job["result"]["rejected"]] == [f"orders[4] (id {small['orders'][4]['id']})"]


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        (b'{"section": "users", "record": {}}\n{"section": "users", "record": \n', 400, "BAD_REQUEST", "line 2"),
        (b'{"section": "users", "record": {}}\n[1, 2]\n', 422, "VALIDATION_ERROR", "line 2"),
        (b'{"section": "payments", "record": {}}\n', 422, "VALIDATION_ERROR", "line 1"),
        (b'{"section": "users"}\n', 422, "VALIDATION_ERROR", "line 1"),
    ],
)
async def test_a_malformed_ndjson_line_is_refused_before_any_job_starts(
    app: FastAPI, client: httpx.AsyncClient, body: bytes, status: int, code: str, message: str
) -> None:
    response = await client.post("/jobs", content=body, headers={"Content-Type": NDJSON})

    error = assert_error(response, status, code)
    assert message in error["message"]
    listed = (await client.get("/jobs")).json()
    assert listed["data"] == []
    assert listed["meta"] == {"page": 1, "per_page": app.state.settings.jobs_keep_count, "total": 0, "total_pages": 0}


async def test_ndjson_mode_must_be_one_of_the_two(client: httpx.AsyncClient) -> None:
    response = await client.post("/jobs?mode=best-effort", content=b"", headers={"Content-Type": NDJSON})
    assert_error(response, 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
async def test_other_media_types_are_refused(client: httpx.AsyncClient, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await client.post("/jobs", content=b'{"type": "export"}', headers=headers)
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"type": "export", ', 400, "BAD_REQUEST"),
        (b'{"type": "reindex"}', 422, "VALIDATION_ERROR"),
        (b"[]", 422, "VALIDATION_ERROR"),
        (b'{"type": "export", "tables": []}', 422, "VALIDATION_ERROR"),
        (b'{"type": "export", "tables": ["sessions"]}', 422, "VALIDATION_ERROR"),
        (b'{"type": "export", "format": "csv"}', 422, "VALIDATION_ERROR"),
        (b'{"type": "import", "mode": "most", "data": {}}', 422, "VALIDATION_ERROR"),
        (b'{"type": "import", "data": {"users": [], "payments": []}}', 422, "VALIDATION_ERROR"),
        (b'{"type": "import", "data": {"users": {}}}', 422, "VALIDATION_ERROR"),
        (b'{"type": "import", "data": {}, "extra": 1}', 422, "VALIDATION_ERROR"),
    ],
)
async def test_a_bad_job_request_is_refused(client: httpx.AsyncClient, body: bytes, status: int, code: str) -> None:
    response = await client.post("/jobs", content=body, headers={"Content-Type": "application/json"})
    assert_error(response, status, code)


async def test_the_members_of_a_json_import_may_come_in_any_order(client: httpx.AsyncClient, small: Dataset) -> None:
    small["orders"][5]["quantity"] = 0
    data = {"orders": small["orders"], "users": small["users"]}  # orders first, and mode after data
    body = orjson.dumps({"data": data, "mode": "skip-invalid", "type": "import"})

    job = await finished(client, (await start_job(client, body))["id"])

    assert job["status"] == "succeeded", job["error"]
    assert job["parameters"] == {"mode": "skip-invalid", "records": 240}
    assert job["result"]["imported"] == {"users": 40, "orders": 199}
    assert [entry["record"] for entry in job["result"]["rejected"]] == [f"orders[5] (id {small['orders'][5]['id']})"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"type": "import", "data": {}, "": 1}', "empty name"),
        (orjson.dumps({"type": "export", "tables": ["users"] * 20_000}), "too large"),
        (b'{"type": "import", "data": []}', "'data' must be an object"),
        (b'{"type": "import", "data": {"orders": 3}}', "'orders' must be a list"),
    ],
)
async def test_what_surrounds_the_records_is_checked_as_the_body_arrives(
    client: httpx.AsyncClient, body: bytes, words: str
) -> None:
    response = await client.post("/jobs", content=body, headers={"Content-Type": "application/json"})

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert words in error["message"]


async def test_a_large_body_needs_an_import_slot_even_without_a_declared_length(
    settings: Settings, small: Dataset
) -> None:
    limited = settings.model_copy(update={"max_body_bytes": 4_000})
    body = import_body(small)
    async with serving(limited) as app, signed_in(app, ADMIN_EMAIL, ADMIN_PASSWORD) as http:

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the slot is needed once 4,000 bytes pass
            for start in range(0, len(body), 1_000):
                yield body[start : start + 1_000]

        slots = app.state.import_slots
        slots.take()  # another upload holds the only slot
        busy = await http.post("/jobs", content=chunks(), headers={"Content-Type": "application/json"})
        small_one = await http.post("/jobs", content=orjson.dumps({"type": "export"}), headers=JSON_TYPE)
        slots.give_back()
        free = await http.post("/jobs", content=chunks(), headers={"Content-Type": "application/json"})

        error = assert_error(busy, 503, "SERVICE_UNAVAILABLE")
        assert "retry" in error["message"]
        assert busy.headers["retry-after"] == "5"
        assert small_one.status_code == 202  # a body within the ordinary cap needs no slot
        assert free.status_code == 202, free.text
        assert (await finished(http, free.json()["data"]["id"]))["status"] == "succeeded"


async def test_with_no_room_to_spool_a_large_body_the_import_is_507_and_nothing_starts(
    settings: Settings, small: Dataset, tmp_path: Path
) -> None:
    limited = settings.model_copy(update={"max_body_bytes": 4_000, "import_spool_dir": tmp_path / "missing"})
    async with serving(limited) as app, signed_in(app, ADMIN_EMAIL, ADMIN_PASSWORD) as http:
        response = await http.post("/jobs", content=import_body(small), headers=JSON_TYPE)

        error = assert_error(response, 507, "INSUFFICIENT_STORAGE")
        assert "no room" in error["message"]
        assert (await http.get("/jobs")).json()["data"] == []
        assert app.state.import_slots.taken == 0  # the slot went back


def test_a_spool_directory_that_does_not_exist_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="import_spool_dir"):
        Settings(import_spool_dir=tmp_path / "missing")
    assert Settings(import_spool_dir=tmp_path).import_spool_dir == tmp_path


@pytest.mark.parametrize(("mode", "kept"), [("all-or-nothing", "nothing was imported"), ("skip-invalid", "before it")])
async def test_an_import_that_meets_the_memory_limit_fails_in_plain_words(
    app: FastAPI, client: httpx.AsyncClient, medium: Dataset, monkeypatch: pytest.MonkeyPatch, mode: str, kept: str
) -> None:
    store = store_of(app)
    stage, insert_each = store.stage, store.insert_each
    calls = 0

    async def full_after_three(write: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls > 3:
            raise InsufficientStorage
        return await write(*args)

    monkeypatch.setattr(store, "stage", lambda *args: full_after_three(stage, *args))
    monkeypatch.setattr(store, "insert_each", lambda *args: full_after_three(insert_each, *args))

    job = await finished(client, (await start_job(client, import_body(medium, mode)))["id"])

    assert job["status"] == "failed"
    assert job["error"]["code"] == "INSUFFICIENT_STORAGE"
    assert job["error"]["message"].startswith("the server's memory limit was reached after 150 of 6000 records; ")
    assert kept in job["error"]["message"]
    assert "InsufficientStorage" not in str(job["error"])
    assert await total(client, "/users") == (1 if mode == "all-or-nothing" else 151)
    assert_nothing_staged(app)


async def test_an_empty_import_succeeds_at_once(client: httpx.AsyncClient) -> None:
    job = await finished(client, (await start_job(client, orjson.dumps({"type": "import", "data": {}})))["id"])
    assert job["status"] == "succeeded"
    assert job["progress"] == {"done": 0, "total": 0}
    assert job["result"]["imported"] == {"users": 0, "orders": 0}


def padded_user(size: int) -> bytes:
    """A ``POST /users`` body of exactly ``size`` bytes."""
    user: Record = {
        "email": "big@example.com",
        "full_name": "Big",
        "password": "correct-horse",
        "metadata": {"pad": ""},
    }
    user["metadata"]["pad"] = "x" * (size - len(orjson.dumps(user)))
    return orjson.dumps(user)


def padded_import(size: int) -> bytes:
    """An (empty) import body of exactly ``size`` bytes."""
    body = orjson.dumps({"type": "import", "data": {"users": []}})
    padding = b" " * (size - len(body))
    return body[:-1] + padding + body[-1:]


async def test_an_import_over_memdb_import_max_bytes_is_413_while_that_size_is_fine_elsewhere(
    settings: Settings,
) -> None:
    limited = settings.model_copy(update={"import_max_bytes": 4_000, "max_body_bytes": 64_000})
    async with serving(limited) as app, signed_in(app, ADMIN_EMAIL, ADMIN_PASSWORD) as http:
        big_import, big_user = padded_import(6_000), padded_user(6_000)
        assert len(big_import) == len(big_user) == 6_000

        error = assert_error(
            await http.post("/jobs", content=big_import, headers={"Content-Type": "application/json"}),
            413,
            "PAYLOAD_TOO_LARGE",
        )
        assert "4000 bytes" in error["message"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
            for start in range(0, len(big_import), 1_000):
                yield big_import[start : start + 1_000]

        response = await http.post("/jobs", content=chunks(), headers={"Content-Type": "application/json"})
        assert_error(response, 413, "PAYLOAD_TOO_LARGE")

        response = await http.post("/users", content=big_user, headers={"Content-Type": "application/json"})
        assert response.status_code == 201, response.text
        assert (await http.get("/jobs")).json()["data"] == []


async def test_an_import_may_be_larger_than_memdb_max_body_bytes(settings: Settings) -> None:
    limited = settings.model_copy(update={"import_max_bytes": 64_000, "max_body_bytes": 4_000})
    async with serving(limited) as app, signed_in(app, ADMIN_EMAIL, ADMIN_PASSWORD) as http:
        response = await http.post("/jobs", content=padded_import(6_000), headers={"Content-Type": "application/json"})
        assert response.status_code == 202, response.text
        response = await http.post("/users", content=padded_user(6_000), headers={"Content-Type": "application/json"})
        assert_error(response, 413, "PAYLOAD_TOO_LARGE")


# -- roles, ids and states ------------------------------------------------------------------------------------------


async def test_only_admins_reach_any_jobs_route(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, login: Login
) -> None:
    export = await finished(client, (await start_job(client, orjson.dumps({"type": "export"})))["id"])
    await create_user(client, email="plain@example.com", password="plain-password")
    user = await login("plain@example.com", "plain-password")
    body = orjson.dumps({"type": "export"})
    routes = [
        ("POST", "/jobs"),
        ("GET", "/jobs"),
        ("GET", f"/jobs/{export['id']}"),
        ("DELETE", f"/jobs/{export['id']}"),
        ("GET", f"/jobs/{export['id']}/result"),
    ]
    for method, path in routes:
        content = body if method == "POST" else None
        headers = {"Content-Type": "application/json"}
        assert_error(await anon.request(method, path, content=content, headers=headers), 401, "UNAUTHORIZED")
        assert_error(await user.request(method, path, content=content, headers=headers), 403, "FORBIDDEN")
    jobs = (await client.get("/jobs")).json()["data"]
    assert [job["id"] for job in jobs] == [export["id"]]  # nobody else started one


async def test_a_job_id_that_names_something_else_is_404(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    for method, path in [("GET", "/jobs/{}"), ("DELETE", "/jobs/{}"), ("GET", "/jobs/{}/result")]:
        assert_error(await client.request(method, path.format(user["id"])), 404, "NOT_FOUND")
        assert_error(await client.request(method, path.format(uuid.uuid4())), 404, "NOT_FOUND")
    assert_error(await client.get("/jobs/not-a-uuid"), 422, "VALIDATION_ERROR")


async def test_an_import_has_no_result_to_download(client: httpx.AsyncClient, small: Dataset) -> None:
    job = await finished(client, (await start_job(client, import_body(small)))["id"])
    assert job["result_url"] is None
    assert_error(await client.get(f"/jobs/{job['id']}/result"), 404, "NOT_FOUND")


async def test_an_unfinished_export_has_no_result_yet_and_a_cancelled_one_is_gone(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_of(app)
    snapshot = store.snapshot
    taken, release = asyncio.Event(), asyncio.Event()

    async def held_snapshot(tables: tuple[str, ...], reveal: bool = False) -> Any:
        taken.set()
        await release.wait()
        return await snapshot(tables, reveal)

    monkeypatch.setattr(store, "snapshot", held_snapshot)
    first = await start_job(client, orjson.dumps({"type": "export"}))
    await wait_event(taken, "the export to start")
    error = assert_error(await client.get(f"/jobs/{first['id']}/result"), 409, "CONFLICT")
    assert "running" in error["message"]
    release.set()
    assert (await finished(client, first["id"]))["status"] == "succeeded"
    assert (await client.get(f"/jobs/{first['id']}/result")).status_code == 200

    taken.clear()
    release.clear()
    second = await start_job(client, orjson.dumps({"type": "export", "format": "ndjson"}))
    await wait_event(taken, "the second export to start")
    response = await client.delete(f"/jobs/{second['id']}")
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "cancelled"
    assert_error(await client.get(f"/jobs/{second['id']}/result"), 404, "NOT_FOUND")
    assert_error(await client.delete(f"/jobs/{second['id']}"), 404, "NOT_FOUND")

    listed = (await client.get("/jobs")).json()
    assert [job["id"] for job in listed["data"]] == [first["id"]]
    assert [job["status"] for job in listed["data"]] == ["succeeded"]
    assert listed["meta"]["total"] == 1


async def test_old_finished_jobs_are_forgotten_beyond_memdb_jobs_keep_count(settings: Settings) -> None:
    async with (
        serving(settings.model_copy(update={"jobs_keep_count": 2})) as app,
        signed_in(app, ADMIN_EMAIL, ADMIN_PASSWORD) as http,
    ):
        ids = []
        for _ in range(3):
            job = await start_job(http, orjson.dumps({"type": "export"}))
            assert (await finished(http, job["id"]))["status"] == "succeeded"
            ids.append(job["id"])

        listed = (await http.get("/jobs")).json()["data"]

        assert [job["id"] for job in listed] == ids[1:]
        assert_error(await http.get(f"/jobs/{ids[0]}"), 404, "NOT_FOUND")
        assert_error(await http.get(f"/jobs/{ids[0]}/result"), 404, "NOT_FOUND")
        assert (await http.get(f"/jobs/{ids[2]}/result")).status_code == 200


# -- MEMDB_MAX_CONNECTIONS ------------------------------------------------------------------------------------------


async def test_past_memdb_max_connections_requests_in_flight_the_answer_is_503_but_health_answers(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        serving(
            settings.model_copy(update={"max_connections": 1, "cors_origins": ("https://app.example.com",)})
        ) as app,
        signed_in(app, ADMIN_EMAIL, ADMIN_PASSWORD) as http,
    ):
        me = (await http.get("/auth/me")).json()["data"]
        store = store_of(app)
        get = store.get
        inside, release = asyncio.Event(), asyncio.Event()

        async def held_get(table: str, key: Any, *args: Any, **kwargs: Any) -> Any:
            if table == USERS.name:
                inside.set()
                await release.wait()
            return await get(table, key, *args, **kwargs)

        monkeypatch.setattr(store, "get", held_get)
        first = asyncio.create_task(http.get(f"/users/{me['id']}"))
        await wait_event(inside, "the first request to reach the store")

        refused = await http.get(f"/orders?user_id={me['id']}", headers={"Origin": "https://app.example.com"})
        error = assert_error(refused, 503, "SERVICE_UNAVAILABLE")
        assert "1 requests in flight" in error["message"]
        assert refused.headers["retry-after"] == "1"
        # Readable by a browser app, and as hardened as any other answer.
        assert refused.headers["access-control-allow-origin"] == "https://app.example.com"
        assert refused.headers["x-content-type-options"] == "nosniff"
        health = await http.get("/health")
        assert health.status_code == 200
        assert not first.done()

        release.set()
        response = await first
        assert response.status_code == 200
        assert response.json()["data"]["id"] == me["id"]
        assert (await http.get(f"/orders?user_id={me['id']}")).status_code == 200  # the slot is free again


async def test_numbers_of_any_size_in_an_import_are_json_and_the_records_say_what_is_out_of_range(
    client: httpx.AsyncClient, small: Dataset
) -> None:
    # A number past 64 bits is valid JSON: the body is taken (202), and the record it is in is what is refused.
    small["users"][4]["metadata"] = {"huge": 2**80, "ratio": 0.25}
    small["users"][6]["metadata"] = {"ratio": 0.25}
    body = json.dumps({"type": "import", "mode": "skip-invalid", "data": small}).encode()  # orjson stops at 64 bits

    job = await finished(client, (await start_job(client, body))["id"])

    assert job["status"] == "succeeded", job["error"]
    refused = job["result"]["rejected"][0]  # then that user's orders, which name no user any more
    assert refused["record"].startswith("users[4] ")
    assert refused["reason"] == "metadata: numbers must be finite, and whole numbers must fit in 64 bits"
    assert {entry["section"] for entry in job["result"]["rejected"][1:]} <= {"orders"}
    kept = await client.get(f"/users/{small['users'][6]['id']}")
    assert kept.json()["data"]["metadata"] == {"ratio": 0.25}
