"""List pages joined from kept JSON forms: the same bytes as presenting afresh, and never stale over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import httpx
import orjson

from server.json_forms import JsonForms, json_forms
from server.tables import ORDER_QUERIES, ORDERS, TABLES, USERS
from store import Database
from tests.utils.api import create_order, create_user

EMBED = ("user",)


def _database() -> Database:
    forms = json_forms(1 << 20)
    assert forms is not None
    db = Database(TABLES, forms=forms)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    for n in range(3):
        user = {
            "id": uuid4(),
            "email": f"u{n}@example.com",
            "full_name": f"User \u00e9 {n}",
            "password_hash": "x",
            "role": "user",
            "metadata": None if n else {"source": "web"},
        }
        address = None if n else {"line1": "1 Rue", "city": "Paris", "postal_code": "75001", "country": "FR"}
        db.insert(USERS.name, user)
        for m in range(3):
            order = {
                "id": uuid4(),
                "user_id": user["id"],
                "product_name": f'Widget "{m}"',
                "quantity": m + 1,
                "total_price": Decimal(f"{m}9.90"),
                "status": ("paid", "pending")[m % 2],
                "shipping_address": address,
                "metadata": {"gift": bool(m), "tags": ["a", m]} if m else None,
                "order_date": now,
            }
            db.insert(ORDERS.name, order)
    return db


def test_a_presented_page_is_byte_for_byte_the_page_encoded_afresh() -> None:
    db = _database()
    queries = [
        ORDER_QUERIES.parse([], None),
        ORDER_QUERIES.parse([("status", "paid")], "total_price:desc"),
        ORDER_QUERIES.parse([("quantity__gte", "2")], "product_name"),
    ]
    for query in queries:
        for _ in range(2):  # made, then served from the kept forms
            presented = db.query(ORDERS.name, query, EMBED, presented=True).items
            assert orjson.dumps(presented) == orjson.dumps(db.query(ORDERS.name, query, EMBED).items)
    users = ORDER_QUERIES.parse([], None)
    assert orjson.dumps(db.query(USERS.name, users, presented=True).items) == orjson.dumps(
        db.query(USERS.name, users).items
    )


def test_a_missing_parent_is_null_and_a_row_with_no_fields_stays_valid_json() -> None:
    forms = JsonForms()
    assert orjson.loads(orjson.dumps(forms.item(b'{"id":1}', [("user", None)]))) == {"id": 1, "user": None}
    assert orjson.loads(orjson.dumps(forms.item(b"{}", [("user", b'{"id":2}')]))) == {"user": {"id": 2}}
    two = [("user", b'{"id":2}'), ("seller", None)]
    assert orjson.loads(orjson.dumps(forms.item(b'{"id":1}', two))) == {"id": 1, "user": {"id": 2}, "seller": None}
    assert orjson.loads(orjson.dumps(forms.item(b"{}", two))) == {"user": {"id": 2}, "seller": None}
    assert json_forms(0) is None


async def test_lists_over_http_always_show_each_order_and_its_user_as_they_are_now(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    orders = [await create_order(client, user["id"], status="paid") for _ in range(3)]

    async def listed(path: str) -> list[dict[str, Any]]:
        response = await client.get(path, params={"per_page": 100})
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return [item for item in data if item["user_id"] == user["id"]]

    async def one_by_one() -> list[dict[str, Any]]:
        return [(await client.get(f"/orders/{order['id']}")).json()["data"] for order in orders]

    for path in ("/orders?status=paid", f"/users/{user['id']}/orders"):
        assert await listed(path) == await one_by_one()
    assert (await client.patch(f"/users/{user['id']}", json={"full_name": "Renamed"})).status_code == 200
    assert (await client.patch(f"/orders/{orders[1]['id']}", json={"quantity": 9})).status_code == 200

    for path in ("/orders?status=paid", f"/users/{user['id']}/orders"):
        items = await listed(path)
        assert items == await one_by_one()
        assert {item["user"]["full_name"] for item in items} == {"Renamed"}
        assert items[1]["quantity"] == 9


async def test_a_restored_snapshot_lists_its_rows_as_restored_over_http(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    orders = [await create_order(client, user["id"], status="paid") for _ in range(2)]
    path = f"/users/{user['id']}/orders"
    before = (await client.get(path)).json()["data"]
    assert (await client.post("/snapshots", json={"name": "before-change"})).status_code == 201

    assert (await client.patch(f"/orders/{orders[0]['id']}", json={"quantity": 7})).status_code == 200
    assert (await client.patch(f"/users/{user['id']}", json={"full_name": "Changed"})).status_code == 200
    assert (await client.get(path)).json()["data"] != before  # the changed rows' bytes are what is kept now

    assert (await client.post("/snapshots/before-change/restore")).status_code == 200
    assert (await client.get(path)).json()["data"] == before
