"""The store's insert path stays compact: a memory budget enforced with memray in CI.

Run as ``pytest --memray tests/bench/test_memory_limits.py``: pytest-memray then
fails the test if its peak allocated memory passes the ``limit_memory`` budget
(without ``--memray`` the marker does nothing and the test still checks the
rows landed). 5,000 users and 20,000 orders shaped like the benchmark dataset
need about 11 MB; before rows were made compact (orjson's oversized JSON
buffers, per-row copies of repeated strings), the same load took over 100 MB.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from server.tables import ORDERS, TABLES, USERS
from store import Database

USERS_COUNT = 5_000
ORDERS_COUNT = 20_000
CHUNK = 1_000
HASH = "$2b$04$" + "a" * 53
START = datetime(2025, 1, 1, tzinfo=UTC)
PRODUCTS = ("Desk Lamp", "Rain Jacket", "Smartwatch Series 5", "Coffee Grinder", "Yoga Mat")
CITIES = ("London", "Paris", "Berlin", "Madrid", "Lisbon")


def user(n: int) -> dict[str, Any]:
    moment = START + timedelta(seconds=n)
    return {
        "id": UUID(int=n + 1),
        "email": f"user{n}@example.com",
        "full_name": f"User {n % 500}",
        "age": 20 + n % 60,
        "role": "user",
        "metadata": {"source": "web", "newsletter": n % 2 == 0} if n % 3 else None,
        "password_hash": HASH,
        "created_at": moment,
        "updated_at": moment,
    }


def order(n: int) -> dict[str, Any]:
    buyer = n % USERS_COUNT
    moment = START + timedelta(days=1, seconds=n)
    return {
        "id": UUID(int=10**9 + n),
        "user_id": UUID(int=buyer + 1),
        "product_name": PRODUCTS[n % len(PRODUCTS)],
        "quantity": 1 + n % 3,
        "total_price": f"{10 + n % 200}.{n % 100:02d}",
        "status": ("pending", "paid", "shipped", "delivered", "cancelled")[n % 5],
        "shipping_address": {
            "line1": f"{buyer % 90 + 1} High Street",
            "city": CITIES[buyer % len(CITIES)],
            "postal_code": f"{buyer:05d}",
            "country": "United Kingdom",
        },
        "metadata": {"channel": "web", "gift": False} if n % 2 else None,
        "order_date": moment,
        "created_at": moment,
        "updated_at": moment,
    }


def chunks(make: Any, count: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, count, CHUNK):
        yield [make(n) for n in range(start, min(start + CHUNK, count))]


@pytest.mark.limit_memory("24 MB")
def test_inserting_25k_records_stays_within_its_memory_budget() -> None:
    db = Database(TABLES)
    for rows in chunks(user, USERS_COUNT):
        db.load([(USERS.name, rows)])
    for rows in chunks(order, ORDERS_COUNT):
        db.load([(ORDERS.name, rows)])
    assert db.counts()[USERS.name] == USERS_COUNT
    assert db.counts()[ORDERS.name] == ORDERS_COUNT
