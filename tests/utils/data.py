"""Builders for request bodies, so each test says only what matters to it."""

from __future__ import annotations

import itertools
from typing import Any

_counter = itertools.count(1)


def user_body(**overrides: Any) -> dict[str, Any]:
    n = next(_counter)
    body: dict[str, Any] = {"email": f"user{n}@example.com", "full_name": f"User {n}", "password": "correct-horse"}
    body.update(overrides)
    return body


def order_body(user_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"user_id": user_id, "product_name": "Widget", "quantity": 1, "total_price": "9.99"}
    body.update(overrides)
    return body
