"""The throughput ceiling (bench/ceiling.py): both variants answer the same, so either is a fair yardstick."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bench.ceiling import PLAIN_PREFIX, create_app

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample.json"


@pytest.fixture(scope="module")
def sample() -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(SAMPLE.read_bytes())
    return document


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(str(SAMPLE)))
    async with httpx.AsyncClient(transport=transport, base_url="http://ceiling") as client:
        yield client


async def both(client: httpx.AsyncClient, path: str) -> tuple[Any, Any]:
    validated = await client.get("/api/v1" + path)
    plain = await client.get(PLAIN_PREFIX + "/api/v1" + path)
    assert validated.status_code == plain.status_code == 200
    return validated.json(), plain.json()


async def test_reads_answer_the_same_in_both_variants(client: httpx.AsyncClient, sample: dict[str, Any]) -> None:
    user, order = sample["users"][3], sample["orders"][5]
    paths = [
        f"/users/{user['id']}",
        f"/orders/{order['id']}",
        f"/users/{order['user_id']}/orders",
        "/orders?status=paid",
        "/orders?sort=total_price:desc&page=2&per_page=7",
    ]
    for path in paths:
        validated, plain = await both(client, path)
        assert validated == plain, path
    validated, _ = await both(client, f"/users/{user['id']}")
    assert "password_hash" not in validated["data"]


async def test_price_sort_orders_by_amount_not_text(client: httpx.AsyncClient) -> None:
    _, plain = await both(client, "/orders?sort=total_price:desc&per_page=100")
    prices = [float(order["total_price"]) for order in plain["data"]]
    assert prices == sorted(prices, reverse=True)
    assert all(set(order) >= {"id", "user"} and "_cents" not in order for order in plain["data"])


@pytest.mark.parametrize("prefix", ["", PLAIN_PREFIX])
async def test_writes_in_either_variant(client: httpx.AsyncClient, sample: dict[str, Any], prefix: str) -> None:
    user_id = sample["users"][1]["id"]
    body = {"user_id": user_id, "product_name": "Widget", "quantity": 2, "total_price": "12.50"}
    created = await client.post(prefix + "/api/v1/orders", json=body)
    assert created.status_code == 201
    order = created.json()["data"]
    assert created.headers["Location"] == f"/api/v1/orders/{order['id']}"
    assert order["user"]["id"] == user_id
    assert order["total_price"] == "12.50"
    patched = await client.patch(prefix + f"/api/v1/orders/{order['id']}", json={"total_price": "987654.32"})
    assert patched.status_code == 200
    assert patched.json()["data"]["total_price"] == "987654.32"
    top = (await client.get(prefix + "/api/v1/orders?sort=total_price:desc&per_page=1")).json()["data"]
    assert top[0]["id"] == order["id"]
    assert (await client.patch(prefix + f"/api/v1/orders/{order['id']}", json={"nope": 1})).status_code == 422
    assert (await client.get(prefix + "/api/v1/orders/00000000-0000-0000-0000-000000000000")).status_code == 404
