"""Responses over 1 KB are gzip-compressed for clients that accept it; small ones are not."""

from __future__ import annotations

import httpx

from tests.utils.api import create_order, create_user


async def test_a_large_collection_is_gzipped_when_accepted(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    for _ in range(10):
        await create_order(client, user["id"])

    raw = await client.get("/orders", params={"per_page": 100}, headers={"Accept-Encoding": "gzip"})
    plain = await client.get("/orders", params={"per_page": 100}, headers={"Accept-Encoding": "identity"})

    assert raw.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in raw.headers["vary"].lower()
    assert "content-encoding" not in plain.headers
    assert len(plain.content) > 1024
    assert raw.json() == plain.json()
    assert int(raw.headers["content-length"]) < len(plain.content)


async def test_small_answers_are_not_compressed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"Accept-Encoding": "gzip"})

    assert "content-encoding" not in response.headers
