"""The index ``/`` (what this is, where things are), and the probes.

``/health`` answers while the process lives, ``/ready`` while the store takes work.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from server import __version__
from server.settings import Settings
from tests.utils.api import assert_error


async def test_the_index_names_the_service_and_links_to_pages_that_answer_without_a_token(
    anon: httpx.AsyncClient,
) -> None:
    response = await anon.get("http://testserver/")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"].startswith("public, max-age=")
    body = response.json()
    assert body["status"] == "success"
    data = body["data"]
    assert (data["name"], data["version"]) == ("memdb", __version__)
    assert data["description"]
    links = data["links"]
    assert links == {
        "docs": "/docs",
        "redoc": "/redoc",
        "openapi": "/openapi.json",
        "health": "/api/v1/health",
        "ready": "/api/v1/ready",
        "metrics": "/metrics",
    }
    for name, path in links.items():
        assert (await anon.get(f"http://testserver{path}")).status_code == 200, name


async def test_the_index_is_in_the_openapi_document_as_a_public_operation(anon: httpx.AsyncClient) -> None:
    document = (await anon.get("http://testserver/openapi.json")).json()

    operation = document["paths"]["/"]["get"]
    assert "200" in operation["responses"]
    assert not operation.get("security")


async def test_health_reports_status_version_and_uptime(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["status"] == "success"
    assert set(body["data"]) == {"status", "version", "uptime_seconds"}
    assert body["data"]["status"] == "ok"
    assert body["data"]["version"] == __version__
    assert isinstance(body["data"]["uptime_seconds"], int | float)
    assert body["data"]["uptime_seconds"] >= 0


async def test_uptime_does_not_run_backwards(client: httpx.AsyncClient) -> None:
    first = (await client.get("/health")).json()["data"]["uptime_seconds"]
    second = (await client.get("/health")).json()["data"]["uptime_seconds"]

    assert second >= first


async def test_ready_while_the_actor_runs(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.get("/ready")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    data = response.json()["data"]
    assert data["status"] == "ready"
    assert data["queue_capacity"] == settings.queue_size
    assert 0 <= data["queue_depth"] <= data["queue_capacity"]


async def test_not_ready_once_the_actor_is_closed(client: httpx.AsyncClient, app: FastAPI) -> None:
    await app.state.actor.close()

    ready = await client.get("/ready")
    health = await client.get("/health")
    data = await client.get("/users")

    assert_error(ready, 503, "SERVICE_UNAVAILABLE")
    assert int(ready.headers["retry-after"]) >= 1
    assert health.status_code == 200
    assert_error(data, 503, "SERVICE_UNAVAILABLE")
    assert int(data.headers["retry-after"]) >= 1
