"""A realistic mixed workload for memdb: sign up or log in, browse, create and update orders, follow joins.

    locust -f bench/locustfile.py --headless -u 100 -r 50 -t 30s --host http://127.0.0.1:8000

Four in five simulated users sign up (then log in); the rest log in as one of
the seed file's users (``MEMDB_LOCUST_SEED``, default ``data/sample.json``;
password ``password123``), who already have orders. Every request is one that
succeeds for a well-behaved client, and its expected status is checked: any
other answer counts as a failure. Names group requests by route, so the
summary gives per-route percentiles.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from pathlib import Path
from typing import Any

from locust import HttpUser, between, task

API = "/api/v1"
SEED = Path(os.environ.get("MEMDB_LOCUST_SEED", Path(__file__).resolve().parent.parent / "data" / "sample.json"))
SEED_PASSWORD = "password123"
PRODUCTS = ("Laptop Stand", "USB-C Hub", "Desk Lamp", "Mechanical Keyboard", "Noise-Cancelling Headphones")
STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled")
SORTS = ("created_at:desc", "total_price:desc", "total_price", "order_date:desc", "product_name")


def _seed_users() -> list[str]:
    with SEED.open("rb") as seed:
        users = json.load(seed)["users"]
    return [user["email"] for user in users if user["role"] == "user"]


SEED_EMAILS = _seed_users()


class Shopper(HttpUser):
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.user_id = ""
        self.orders: list[str] = []
        if random.random() < 0.8:
            email, password = self.sign_up()
        else:
            email, password = random.choice(SEED_EMAILS), SEED_PASSWORD
        self.log_in(email, password)
        self.refresh_orders()

    # -- helpers ------------------------------------------------------------------------------------------------

    def expect(self, method: str, path: str, status: int, name: str, **kwargs: Any) -> Any:
        """Send a request; anything but ``status`` with a success envelope is a failure. Returns the JSON body."""
        with self.client.request(method, path, name=name, catch_response=True, **kwargs) as response:
            if response.status_code != status:
                response.failure(f"expected {status}, got {response.status_code}: {response.text[:200]}")
                return None
            body = response.json() if response.content else None
            if body is not None and body.get("status") != "success":
                response.failure(f"not a success envelope: {response.text[:200]}")
                return None
            response.success()
            return body

    def sign_up(self) -> tuple[str, str]:
        email = f"shopper-{uuid.uuid4().hex[:16]}@example.com"
        password = f"pw-{uuid.uuid4().hex[:12]}"
        profile = {
            "email": email,
            "full_name": random.choice(("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra")),
            "age": random.randint(18, 90),
            "password": password,
            "metadata": {"source": "locust", "newsletter": random.random() < 0.3},
        }
        self.expect("POST", f"{API}/users", 201, "POST /users (sign-up)", json=profile)
        return email, password

    def log_in(self, email: str, password: str) -> None:
        body = self.expect(
            "POST", f"{API}/auth/token", 200, "POST /auth/token", json={"email": email, "password": password}
        )
        if body is None:
            raise RuntimeError("login failed")  # locust stops this user; the failure is already counted
        self.client.headers["Authorization"] = f"Bearer {body['data']['access_token']}"
        me = self.expect("GET", f"{API}/auth/me", 200, "GET /auth/me")
        self.user_id = me["data"]["id"] if me else ""

    def refresh_orders(self) -> None:
        page = self.expect("GET", f"{API}/users/{self.user_id}/orders?per_page=50", 200, "GET /users/{id}/orders")
        if page:
            self.orders = [order["id"] for order in page["data"]]

    # -- tasks --------------------------------------------------------------------------------------------------

    @task(4)
    def browse_orders(self) -> None:
        params: dict[str, str | int] = {"sort": random.choice(SORTS), "per_page": random.choice((10, 20, 50))}
        roll = random.random()
        if roll < 0.4:
            params["status"] = random.choice(STATUSES)
        elif roll < 0.6:
            params["total_price__gte"] = random.choice((10, 50, 100))
        elif roll < 0.7:
            params["status__in"] = "shipped,delivered"
        self.expect("GET", f"{API}/orders", 200, "GET /orders (filter+sort)", params=params)

    @task(2)
    def my_orders(self) -> None:
        params = {"sort": random.choice(SORTS)}
        if random.random() < 0.5:
            params["status__ne"] = "cancelled"
        self.expect("GET", f"{API}/users/{self.user_id}/orders", 200, "GET /users/{id}/orders", params=params)

    @task(2)
    def profile(self) -> None:
        self.expect("GET", f"{API}/users/{self.user_id}", 200, "GET /users/{id}")

    @task(3)
    def one_order(self) -> None:
        if self.orders:
            self.expect("GET", f"{API}/orders/{random.choice(self.orders)}", 200, "GET /orders/{id}")

    @task(2)
    def order_user(self) -> None:
        if self.orders:
            self.expect("GET", f"{API}/orders/{random.choice(self.orders)}/user", 200, "GET /orders/{id}/user")

    @task(2)
    def create_order(self) -> None:
        quantity = random.randint(1, 4)
        order = {
            "user_id": self.user_id,
            "product_name": random.choice(PRODUCTS),
            "quantity": quantity,
            "total_price": f"{quantity * random.randint(5, 300)}.{random.randint(0, 99):02d}",
            "shipping_address": {
                "line1": "1 Main Street",
                "city": "Springfield",
                "postal_code": "12345",
                "country": "US",
            },
            "metadata": {"channel": "web", "gift": random.random() < 0.1},
        }
        body = self.expect("POST", f"{API}/orders", 201, "POST /orders", json=order)
        if body:
            self.orders.append(body["data"]["id"])

    @task(1)
    def update_order(self) -> None:
        if self.orders:
            change = random.choice(({"status": random.choice(STATUSES)}, {"quantity": random.randint(1, 9)}))
            self.expect("PATCH", f"{API}/orders/{random.choice(self.orders)}", 200, "PATCH /orders/{id}", json=change)
