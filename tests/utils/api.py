"""Helpers for tests over HTTP: create resources through the API, read envelopes and ``Link`` headers."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.utils.data import order_body, user_body

TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
"""How the service writes every timestamp: UTC, microseconds, ``Z``."""

ERROR_KEYS = {"code", "message", "details", "request_id"}
_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="([^"]+)"')


async def create_user(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    """POST a user built by :func:`user_body` and return its ``data``."""
    response = await client.post("/users", json=user_body(**overrides))
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def create_order(client: httpx.AsyncClient, user_id: str, **overrides: Any) -> dict[str, Any]:
    """POST an order built by :func:`order_body` and return its ``data``."""
    response = await client.post("/orders", json=order_body(user_id, **overrides))
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


Target = tuple[str, str, dict[str, Any]]
"""A writing endpoint: its method, its path and a valid body."""


async def write_targets(client: httpx.AsyncClient) -> dict[str, Target]:
    """Every JSON-writing endpoint, named, against a fresh user and order (``client`` is an admin)."""
    user = await create_user(client)
    order = await create_order(client, user["id"])
    return {
        "create-user": ("POST", "/users", user_body()),
        "create-order": ("POST", "/orders", order_body(user["id"])),
        "patch-user": ("PATCH", f"/users/{user['id']}", {"full_name": "Changed"}),
        "patch-order": ("PATCH", f"/orders/{order['id']}", {"product_name": "Changed"}),
    }


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Check ``response`` is the error envelope with ``status`` and ``code``; return its ``error``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"status", "error"}
    assert body["status"] == "error"
    error: dict[str, Any] = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert set(error) <= ERROR_KEYS
    assert error["request_id"]
    assert error["request_id"] == response.headers["x-request-id"]
    for detail in error.get("details", []):
        assert set(detail) == {"field", "message"}
    return error


def error_fields(response: httpx.Response) -> list[str]:
    """The ``field`` of every detail of an error response."""
    return [detail["field"] for detail in response.json()["error"].get("details", [])]


def links(response: httpx.Response) -> dict[str, httpx.URL]:
    """The RFC 8288 ``Link`` header of ``response``, by relation, resolved against the request's URL (RFC 8288 §3.2)."""
    return {rel: response.request.url.join(url) for url, rel in _LINK.findall(response.headers["link"])}


async def all_pages(client: httpx.AsyncClient, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every item of a collection, following ``next`` links 100 at a time."""
    response = await client.get(path, params={**(params or {}), "per_page": 100})
    items: list[dict[str, Any]] = []
    while True:
        assert response.status_code == 200, response.text
        items.extend(response.json()["data"])
        following = links(response).get("next")
        if following is None:
            return items
        response = await client.get(following)
