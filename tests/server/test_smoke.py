from __future__ import annotations

import httpx

from tests.utils.data import order_body, user_body


async def test_create_user_then_order_embeds_the_user(client: httpx.AsyncClient) -> None:
    user = (await client.post("/users", json=user_body())).json()["data"]
    response = await client.post("/orders", json=order_body(user["id"], total_price="19.9"))
    assert response.status_code == 201
    order = response.json()["data"]
    assert order["total_price"] == "19.90"
    assert order["user"] == user
