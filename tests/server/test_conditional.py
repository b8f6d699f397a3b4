"""Conditional requests: the version check and the write are one store command, so racers cannot both win."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from server.responses import body_tag
from tests.utils.api import assert_error, create_order, create_user


@pytest.mark.parametrize("resource", ["users", "orders"])
async def test_two_concurrent_patches_with_the_same_etag_one_wins_one_gets_412(
    client: httpx.AsyncClient, resource: str
) -> None:
    user = await create_user(client)
    target = user if resource == "users" else await create_order(client, user["id"])
    url = f"/{resource}/{target['id']}"
    etag = (await client.get(url)).headers["etag"]
    changes = [{"full_name": "First"}, {"full_name": "Second"}]
    if resource == "orders":
        changes = [{"product_name": "First"}, {"product_name": "Second"}]

    answers = await asyncio.gather(*(client.patch(url, json=body, headers={"If-Match": etag}) for body in changes))

    assert sorted(answer.status_code for answer in answers) == [200, 412]
    winner = next(answer for answer in answers if answer.status_code == 200)
    loser = next(answer for answer in answers if answer.status_code == 412)
    assert_error(loser, 412, "PRECONDITION_FAILED")
    current = await client.get(url)
    assert current.headers["etag"] == winner.headers["etag"] != etag
    assert current.json()["data"] == winner.json()["data"]


async def test_a_collection_answers_304_until_it_changes(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    await create_order(client, user["id"])
    first = await client.get("/orders")

    unchanged = await client.get("/orders", headers={"If-None-Match": first.headers["etag"]})
    await create_order(client, user["id"])
    changed = await client.get("/orders", headers={"If-None-Match": first.headers["etag"]})

    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == first.headers["etag"]
    assert changed.status_code == 200
    assert changed.json()["meta"]["total"] == 2


async def test_a_collection_tag_is_its_body_hash_however_often_the_page_is_read(client: httpx.AsyncClient) -> None:
    """Collection tags are remembered by what the page was made from: still the body's hash, still current."""
    user = await create_user(client)
    order = await create_order(client, user["id"])
    url = f"/users/{user['id']}/orders"
    tags = []
    for change in (None, {"full_name": "Renamed"}, None):
        if change is not None:  # the embedded user changes: the page's body, so its tag
            assert (await client.patch(f"/users/{user['id']}", json=change)).status_code == 200
        for _ in range(2):
            answer = await client.get(url)
            assert answer.headers["etag"] == body_tag(answer.content)
            tags.append(answer.headers["etag"])
    assert tags[0] == tags[1] != tags[2] == tags[3] == tags[4] == tags[5]
    assert (await client.patch(f"/orders/{order['id']}", json={"quantity": 9})).status_code == 200
    after = await client.get(url, headers={"If-None-Match": tags[-1]})
    assert after.status_code == 200
    assert after.headers["etag"] == body_tag(after.content) != tags[-1]


async def test_an_orders_etag_changes_when_its_embedded_user_changes(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    order = await create_order(client, user["id"])
    before = (await client.get(f"/orders/{order['id']}")).headers["etag"]

    await client.patch(f"/users/{user['id']}", json={"full_name": "Renamed"})
    after = await client.get(f"/orders/{order['id']}", headers={"If-None-Match": before})

    assert after.status_code == 200
    assert after.headers["etag"] != before
    assert after.json()["data"]["user"]["full_name"] == "Renamed"
    stale = await client.delete(f"/orders/{order['id']}", headers={"If-Match": before})
    assert_error(stale, 412, "PRECONDITION_FAILED")
    assert (await client.get(f"/orders/{order['id']}")).status_code == 200


async def test_cache_control_marks_data_private_and_probes_uncacheable(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    user = await create_user(client)

    assert (await client.get(f"/users/{user['id']}")).headers["cache-control"] == "private, no-cache"
    assert (await client.get("/users")).headers["cache-control"] == "private, no-cache"
    assert (await anon.get("/health")).headers["cache-control"] == "no-store"
    assert (await anon.get("/ready")).headers["cache-control"] == "no-store"
