"""Many requests at once: every write lands exactly once, and no race leaves an order without its user."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.utils.api import all_pages, assert_error, create_order, create_user, error_fields
from tests.utils.data import order_body, user_body

USERS = 1_000
RACES = 10
CLIENTS_PER_RACE = 5
MAX_CREATES = 500


async def test_concurrent_creates_all_land_once(client: httpx.AsyncClient) -> None:
    domain = f"{uuid.uuid4().hex[:10]}.example.com"
    emails = [f"load{n}@{domain}" for n in range(USERS)]

    responses = await asyncio.gather(*(client.post("/users", json=user_body(email=email)) for email in emails))

    assert [response.status_code for response in responses] == [201] * USERS
    created = [response.json()["data"] for response in responses]
    assert len({user["id"] for user in created}) == USERS
    listed = await all_pages(client, "/users", {"email__contains": f"@{domain}"})
    assert len(listed) == USERS
    assert sorted(user["email"] for user in listed) == sorted(emails)
    assert {user["id"] for user in listed} == {user["id"] for user in created}
    lookups = await asyncio.gather(*(client.get("/users", params={"email": email.upper()}) for email in emails))
    for email, user, lookup in zip(emails, created, lookups, strict=True):
        assert lookup.status_code == 200
        assert [found["id"] for found in lookup.json()["data"]] == [user["id"]], email


async def test_concurrent_creates_of_one_email_make_one_user(client: httpx.AsyncClient) -> None:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    variants = [email, email.upper(), email.title()] * 10

    responses = await asyncio.gather(*(client.post("/users", json=user_body(email=v)) for v in variants))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * (len(variants) - 1)
    assert (await client.get("/users", params={"email": email})).json()["meta"]["total"] == 1


async def _race(client: httpx.AsyncClient, user_id: str) -> tuple[list[int], list[httpx.Response]]:
    """Cascade-delete ``user_id`` (twice at once) while several clients keep creating orders for that user.

    The deletes are sent once some create has succeeded; each client goes on until the user is gone, so the
    deletes land in the middle of a stream of creates.
    """
    created = asyncio.Event()

    async def keep_ordering() -> list[httpx.Response]:
        responses: list[httpx.Response] = []
        for _ in range(MAX_CREATES):
            response = await client.post("/orders", json=order_body(user_id))
            responses.append(response)
            if response.status_code != 201:
                return responses
            created.set()
        raise AssertionError(f"user {user_id} was still there after {MAX_CREATES} orders")

    async def delete_twice() -> list[int]:
        await created.wait()
        deletes = [client.delete(f"/users/{user_id}", params={"cascade": "true"}) for _ in range(2)]
        return sorted(response.status_code for response in await asyncio.gather(*deletes))

    ordering = asyncio.gather(*(keep_ordering() for _ in range(CLIENTS_PER_RACE)))
    deleted, streams = await asyncio.gather(delete_twice(), ordering)
    return deleted, [response for stream in streams for response in stream]


async def test_cascade_deletes_racing_order_creates_never_orphan_an_order(client: httpx.AsyncClient) -> None:
    bystander = await create_user(client)
    kept = await create_order(client, bystander["id"])
    victims = [await create_user(client) for _ in range(RACES)]
    for victim in victims:
        await create_order(client, victim["id"])

    results = await asyncio.gather(*(_race(client, victim["id"]) for victim in victims))

    for deleted, creates in results:
        assert deleted == [204, 404]
        statuses = [response.status_code for response in creates]
        assert statuses.count(422) == CLIENTS_PER_RACE  # each client stopped at its first refusal
        assert 201 in statuses
        for response in creates:
            if response.status_code != 201:
                assert_error(response, 422, "VALIDATION_ERROR")
                assert error_fields(response) == ["body.user_id"]

    orders = await all_pages(client, "/orders")
    assert [order["id"] for order in orders] == [kept["id"]]
    for order in orders:
        assert (await client.get(f"/users/{order['user_id']}")).status_code == 200
    for victim in victims:
        assert_error(await client.get(f"/users/{victim['id']}"), 404, "NOT_FOUND")
        assert (await client.get("/orders", params={"user_id": victim["id"]})).json()["meta"]["total"] == 0
    accepted = [
        response.json()["data"]["id"] for _, creates in results for response in creates if response.status_code == 201
    ]
    for order_id in accepted:
        assert_error(await client.get(f"/orders/{order_id}"), 404, "NOT_FOUND")


async def test_racing_cascade_deletes_of_one_user_succeed_once(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    for _ in range(3):
        await create_order(client, user["id"])

    responses = await asyncio.gather(
        *(client.delete(f"/users/{user['id']}", params={"cascade": "true"}) for _ in range(10))
    )

    assert sorted(response.status_code for response in responses) == [204] + [404] * 9
    assert (await client.get("/orders")).json()["meta"]["total"] == 0


async def test_concurrent_patches_all_apply_and_if_match_lets_one_win(client: httpx.AsyncClient) -> None:
    created = await client.post("/users", json=user_body(age=1))
    user: dict[str, Any] = created.json()["data"]
    tag = created.headers["etag"]

    guarded = await asyncio.gather(
        *(client.patch(f"/users/{user['id']}", json={"age": n}, headers={"If-Match": tag}) for n in range(2, 12))
    )

    assert sorted(response.status_code for response in guarded) == [200] + [412] * 9
    winner = next(response for response in guarded if response.status_code == 200)
    assert (await client.get(f"/users/{user['id']}")).json()["data"] == winner.json()["data"]
