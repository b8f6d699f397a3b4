"""``GET /metrics``: Prometheus text at the root, and counters that move by exactly what the test did."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import prometheus_client
import pytest
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from server.metrics import UNMATCHED
from server.settings import Settings
from server.tables import ORDERS, SESSIONS, USERS
from store import NotFound
from store import commands as c
from tests.utils.api import create_order, create_user
from tests.utils.asgi import asgi_client, serving
from tests.utils.data import user_body

METRICS_URL = "http://testserver/metrics"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get(METRICS_URL)
    assert response.status_code == 200, response.text
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(
    before: Samples, after: Samples, name: str, *, skip_route: str | None = "/metrics"
) -> dict[tuple[str, ...], float]:
    """How much each series of ``name`` grew, by its label values (series that did not move left out)."""
    changes: dict[tuple[str, ...], float] = {}
    for (sample, labels), now in after.items():
        if sample != name or (skip_route is not None and ("route", skip_route) in labels):
            continue
        change = now - before.get((sample, labels), 0.0)
        if change:
            changes[tuple(value for _, value in sorted(labels))] = change
    return changes


def in_registry(app: FastAPI) -> Samples:
    """The exposition of ``app``'s registry, rendered on the spot (no request, so no await)."""
    return parse(generate_latest(app.state.metrics.registry).decode())


async def test_metrics_are_prometheus_text_at_the_root_uncached_and_not_in_the_api_docs(
    app: FastAPI, anon: httpx.AsyncClient, settings: Settings
) -> None:
    response = await anon.get(METRICS_URL)

    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert response.headers["cache-control"] == "no-store"
    samples = parse(response.text)
    families = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "http_requests",
        "http_request_duration_seconds",
        "store_queue_depth",
        "store_queue_capacity",
        "store_commands",
        "store_command_wait_seconds",
        "store_command_run_seconds",
        "store_rows",
        "store_actor_restarts",
        "rate_limited",
        "auth_failures",
        "process_resident_memory_bytes",
        "memdb_memory_limit_bytes",
    } <= families
    assert value(samples, "memdb_memory_limit_bytes") == settings.memory_limit_mb * 1024 * 1024
    assert value(samples, "process_resident_memory_bytes") > 0
    assert value(samples, "store_queue_capacity") == settings.queue_size
    assert "/metrics" not in app.openapi()["paths"]
    assert (await anon.get("/metrics")).status_code == 404  # not under /api/v1
    # Each app has its own registry; nothing lands in the library's global one.
    assert prometheus_client.REGISTRY.get_sample_value("memdb_memory_limit_bytes") is None


async def test_requests_are_counted_by_route_template_method_and_status(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    before = await scrape(anon)

    assert (await anon.get(f"/users/{uuid.uuid4()}")).status_code == 401
    assert (await anon.get(f"/users/{uuid.uuid4()}")).status_code == 401
    assert (await client.get(f"/users/{uuid.uuid4()}")).status_code == 404
    assert (await client.get(f"/orders/{uuid.uuid4()}/user")).status_code == 404
    assert (await client.put("/users")).status_code == 405
    assert (await anon.get("/health")).status_code == 200
    assert (await anon.get("http://testserver/no/such/page")).status_code == 404
    assert (await anon.get(f"/users/{uuid.uuid4()}/no/such/thing")).status_code == 404
    assert (await anon.delete("http://testserver/nowhere")).status_code == 404

    after = await scrape(anon)
    assert moved(before, after, "http_requests_total") == {
        ("GET", "/api/v1/users/{user_id}", "401"): 2,
        ("GET", "/api/v1/users/{user_id}", "404"): 1,
        ("GET", "/api/v1/orders/{order_id}/user", "404"): 1,
        ("PUT", "/api/v1/users", "405"): 1,
        ("GET", "/api/v1/health", "200"): 1,
        ("GET", UNMATCHED, "404"): 2,
        ("DELETE", UNMATCHED, "404"): 1,
    }
    assert moved(before, after, "http_request_duration_seconds_count") == {
        ("GET", "/api/v1/users/{user_id}"): 3,
        ("GET", "/api/v1/orders/{order_id}/user"): 1,
        ("PUT", "/api/v1/users"): 1,
        ("GET", "/api/v1/health"): 1,
        ("GET", UNMATCHED): 2,
        ("DELETE", UNMATCHED): 1,
    }
    assert moved(before, after, "auth_failures_total") == {(): 2}
    assert moved(before, after, "rate_limited_total") == {}
    # The first scrape itself is counted by the second.
    assert value(after, "http_requests_total", method="GET", route="/metrics", status="200") == (
        value(before, "http_requests_total", method="GET", route="/metrics", status="200") + 1
    )


async def test_an_unknown_method_is_one_label_value_not_a_new_series_each(anon: httpx.AsyncClient) -> None:
    before = await scrape(anon)

    for method in ("BREW", "WHEN"):
        await anon.request(method, "/health")

    after = await scrape(anon)
    assert moved(before, after, "http_requests_total") == {("OTHER", "/api/v1/health", "405"): 2}


async def test_an_unhandled_error_is_counted_as_500_under_its_route(app: FastAPI, anon: httpx.AsyncClient) -> None:
    async def explode() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/api/v1/explode/{part}", explode)
    before = await scrape(anon)

    assert (await anon.get("/explode/1")).status_code == 500

    after = await scrape(anon)
    assert moved(before, after, "http_requests_total") == {("GET", "/api/v1/explode/{part}", "500"): 1}


async def test_store_commands_are_counted_by_command_and_outcome(
    app: FastAPI, anon: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = app.state.store
    body = user_body()
    before = await scrape(anon)

    assert (await anon.post("/users", json=body)).status_code == 201  # one Insert
    assert (await anon.post("/users", json=body)).status_code == 409  # one Insert, refused: the email is taken
    await store.counts()
    with pytest.raises(NotFound):
        await store.get(USERS.name, uuid.uuid4())

    def broken() -> dict[str, int]:
        raise RuntimeError("a bug in the store")

    monkeypatch.setattr(app.state.actor.database, "counts", broken)
    with pytest.raises(RuntimeError):
        await store.counts()
    monkeypatch.undo()

    after = await scrape(anon)
    assert moved(before, after, "store_commands_total") == {
        ("Insert", "ok"): 1,
        ("Insert", "error"): 1,
        ("Counts", "ok"): 1,
        ("Get", "error"): 1,
        ("Counts", "crash"): 1,
    }
    timed = {("Insert",): 2, ("Counts",): 2, ("Get",): 1}
    assert moved(before, after, "store_command_wait_seconds_count") == timed
    assert moved(before, after, "store_command_run_seconds_count") == timed


async def test_rows_are_reported_per_table(app: FastAPI, client: httpx.AsyncClient) -> None:
    first = await create_user(client)
    await create_user(client)
    await create_order(client, first["id"])

    samples = await scrape(client)

    rows = {table: value(samples, "store_rows", table=table) for table in (USERS.name, ORDERS.name, SESSIONS.name)}
    assert rows == {USERS.name: 3, ORDERS.name: 1, SESSIONS.name: 1}  # the admin, two users; the admin's session
    assert rows == await app.state.store.counts()


async def test_queue_depth_shows_commands_waiting_while_the_actor_is_busy(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await create_user(client)
    database = app.state.actor.database
    original_get = database.get
    depths: list[float] = []

    def get_and_scrape(*args: object, **kwargs: object) -> object:
        # Runs inside the actor, one command at a time: the others queued behind it are still in the mailbox.
        depths.append(value(in_registry(app), "store_queue_depth"))
        return original_get(*args, **kwargs)

    monkeypatch.setattr(database, "get", get_and_scrape)
    assert value(in_registry(app), "store_queue_depth") == 0

    # The tasks all enqueue before the actor takes the first, so it works through a mailbox of five.
    # (Sent to the mailbox itself: the client's reads skip it while the actor allows direct reads.)
    get = c.Get(USERS.name, uuid.UUID(user["id"]))
    found = await asyncio.gather(*(app.state.actor.call(get) for _ in range(5)))

    assert [str(snapshot.data["id"]) for snapshot in found] == [user["id"]] * 5
    assert depths == [4, 3, 2, 1, 0]
    assert value(in_registry(app), "store_queue_depth") == 0


async def test_actor_restarts_are_counted_when_reported(app: FastAPI, anon: httpx.AsyncClient) -> None:
    before = await scrape(anon)

    app.state.metrics.actor_restarted()

    assert moved(before, await scrape(anon), "store_actor_restarts_total") == {(): 1}


async def test_connections_closed_unanswered_are_counted_by_reason_from_zero(
    app: FastAPI, anon: httpx.AsyncClient
) -> None:
    before = await scrape(anon)

    for reason in ("header_timeout", "over_capacity", "over_capacity"):
        app.state.metrics.connection_closed(reason)

    assert value(before, "connections_closed_total", reason="header_timeout") == 0
    assert ("connections_closed_total", frozenset({("reason", "over_capacity")})) in before
    assert moved(before, await scrape(anon), "connections_closed_total") == {
        ("header_timeout",): 1,
        ("over_capacity",): 2,
    }


async def test_rate_limited_answers_are_counted_and_scrapes_are_never_limited(settings: Settings) -> None:
    async with serving(settings.model_copy(update={"rate_limit_per_minute": 2})) as app, asgi_client(app) as anon:
        statuses = [(await anon.get(f"/orders/{uuid.uuid4()}")).status_code for _ in range(3)]
        scrapes = [await scrape(anon) for _ in range(3)]  # more scrapes than the allowance: none refused

    assert statuses == [401, 401, 429]
    samples = scrapes[-1]
    assert value(samples, "rate_limited_total") == 1
    assert value(samples, "auth_failures_total") == 2
    # The limiter answers before any route runs, so its refusal has no route of its own.
    assert moved({}, samples, "http_requests_total") == {
        ("GET", "/api/v1/orders/{order_id}", "401"): 2,
        ("GET", "<other>", "429"): 1,
    }


async def test_a_body_refused_by_the_size_cap_is_counted_before_routing(settings: Settings) -> None:
    async with serving(settings.model_copy(update={"max_body_bytes": 64})) as app, asgi_client(app) as anon:
        response = await anon.post("/users", json=user_body(full_name="x" * 100))
        samples = await scrape(anon)

    assert response.status_code == 413
    assert moved({}, samples, "http_requests_total") == {("POST", "<other>", "413"): 1}


async def test_each_app_counts_only_its_own_requests(settings: Settings) -> None:
    async with (
        serving(settings) as one,
        serving(settings) as other,
        asgi_client(one) as to_one,
        asgi_client(other) as to_other,
    ):
        for _ in range(3):
            await to_one.get("/health")
        await to_other.get("/health")
        counted = [
            value(await scrape(http), "http_requests_total", method="GET", route="/api/v1/health", status="200")
            for http in (to_one, to_other)
        ]

    assert counted == [3, 1]
