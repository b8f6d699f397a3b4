"""``/orders`` over HTTP: create, read, conditional requests, update, delete, and an order's user."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.utils.api import TIMESTAMP, assert_error, create_order, create_user, error_fields
from tests.utils.data import order_body

PUBLIC_FIELDS = {
    "id",
    "user_id",
    "product_name",
    "quantity",
    "total_price",
    "status",
    "shipping_address",
    "metadata",
    "order_date",
    "created_at",
    "updated_at",
    "user",
}
ADDRESS = {"line1": "1 Rue de Rivoli", "city": "Paris", "postal_code": "75001", "country": "FR"}


@pytest.fixture
async def user(client: httpx.AsyncClient) -> dict[str, Any]:
    return await create_user(client)


async def test_create_returns_201_with_location_etag_and_the_public_shape(
    client: httpx.AsyncClient, user: dict[str, Any]
) -> None:
    response = await client.post("/orders", json=order_body(user["id"], total_price="19.9", shipping_address=ADDRESS))

    assert response.status_code == 201
    data = response.json()["data"]
    assert set(data) == PUBLIC_FIELDS
    assert uuid.UUID(data["id"])
    assert data["user_id"] == user["id"]
    assert data["product_name"] == "Widget"
    assert data["quantity"] == 1
    assert data["total_price"] == "19.90"
    assert data["status"] == "pending"
    assert data["shipping_address"] == ADDRESS
    assert data["metadata"] is None
    for stamp in ("order_date", "created_at", "updated_at"):
        assert TIMESTAMP.fullmatch(data[stamp])
    assert data["order_date"] == data["created_at"] == data["updated_at"]
    assert data["user"] == user
    assert response.headers["location"] == f"/api/v1/orders/{data['id']}"
    assert response.headers["etag"].startswith('"')
    assert response.headers["cache-control"] == "private, no-cache"

    fetched = await client.get(client.base_url.join(response.headers["location"]))
    assert fetched.status_code == 200
    assert fetched.json() == {"status": "success", "data": data}
    assert fetched.headers["etag"] == response.headers["etag"]


ACCEPTED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "quantity-from-text": ({"quantity": "3"}, {"quantity": 3}),
    "price-from-number": ({"total_price": 19.9}, {"total_price": "19.90"}),
    "price-whole": ({"total_price": 5}, {"total_price": "5.00"}),
    "price-smallest": ({"total_price": "0.01"}, {"total_price": "0.01"}),
    "price-large": ({"total_price": "1234567.5"}, {"total_price": "1234567.50"}),
    "price-exponent": ({"total_price": "1e3"}, {"total_price": "1000.00"}),
    "status-given": ({"status": "shipped"}, {"status": "shipped"}),
    "order-date-to-utc": ({"order_date": "2026-01-01T02:00:00+02:00"}, {"order_date": "2026-01-01T00:00:00.000000Z"}),
    "naive-is-utc": ({"order_date": "2026-01-01T00:00:00.5"}, {"order_date": "2026-01-01T00:00:00.500000Z"}),
    "meta": ({"metadata": {"gift": True, "tags": ["a"]}}, {"metadata": {"gift": True, "tags": ["a"]}}),
    "name-200": ({"product_name": "x" * 200}, {"product_name": "x" * 200}),
}


async def test_create_accepts(client: httpx.AsyncClient, user: dict[str, Any]) -> None:
    for case, (overrides, expected) in ACCEPTED.items():
        response = await client.post("/orders", json=order_body(user["id"], **overrides))

        assert response.status_code == 201, (case, response.text)
        data = response.json()["data"]
        assert {name: data[name] for name in expected} == expected, case


async def test_every_status_is_accepted(client: httpx.AsyncClient, user: dict[str, Any]) -> None:
    for status in ["pending", "paid", "shipped", "delivered", "cancelled"]:
        order = await create_order(client, user["id"], status=status)

        assert order["status"] == status


REJECTED: dict[str, tuple[dict[str, Any], str]] = {
    "quantity-0": ({"quantity": 0}, "body.quantity"),
    "quantity-negative": ({"quantity": -1}, "body.quantity"),
    "quantity-fraction": ({"quantity": "1.5"}, "body.quantity"),
    "price-0": ({"total_price": "0"}, "body.total_price"),
    "price-0-number": ({"total_price": 0}, "body.total_price"),
    "price-negative": ({"total_price": "-1.00"}, "body.total_price"),
    "price-3-decimals": ({"total_price": "1.234"}, "body.total_price"),
    "price-text": ({"total_price": "cheap"}, "body.total_price"),
    "price-nan": ({"total_price": "NaN"}, "body.total_price"),
    "status-unknown": ({"status": "lost"}, "body.status"),
    "name-empty": ({"product_name": ""}, "body.product_name"),
    "name-201": ({"product_name": "x" * 201}, "body.product_name"),
    "user-id-not-uuid": ({"user_id": "someone"}, "body.user_id"),
    "address-partial": ({"shipping_address": {"line1": "x"}}, "body.shipping_address.city"),
    "address-extra": ({"shipping_address": {**ADDRESS, "floor": 2}}, "body.shipping_address.floor"),
    "deep": ({"metadata": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {}}}}}}}}}}, "body.metadata"),
    "date-text": ({"order_date": "yesterday"}, "body.order_date"),
    "date-as-a-number": ({"order_date": 0}, "body.order_date"),  # not read as seconds since 1970
    "date-before-year-1-utc": ({"order_date": "0001-01-01T00:00:00+01:00"}, "body.order_date"),
    "date-after-year-9999-utc": ({"order_date": "9999-12-31T23:00:00-02:00"}, "body.order_date"),
    "unknown-field": ({"coupon": "FREE"}, "body.coupon"),
    "embedded-user-not-writable": ({"user": {}}, "body.user"),
}


async def test_create_rejects(client: httpx.AsyncClient, user: dict[str, Any]) -> None:
    for case, (overrides, field) in REJECTED.items():
        response = await client.post("/orders", json={**order_body(user["id"]), **overrides})

        assert_error(response, 422, "VALIDATION_ERROR")
        assert field in error_fields(response), case
    assert (await client.get("/orders")).json()["meta"]["total"] == 0


@pytest.mark.parametrize("missing", ["user_id", "product_name", "quantity", "total_price"])
async def test_create_requires(client: httpx.AsyncClient, user: dict[str, Any], missing: str) -> None:
    body = order_body(user["id"])
    del body[missing]

    response = await client.post("/orders", json=body)

    assert_error(response, 422, "VALIDATION_ERROR")
    assert error_fields(response) == [f"body.{missing}"]


async def test_an_order_for_no_such_user_is_422_on_user_id(client: httpx.AsyncClient) -> None:
    nobody = str(uuid.uuid4())

    response = await client.post("/orders", json=order_body(nobody))

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert error_fields(response) == ["body.user_id"]
    assert nobody in error["details"][0]["message"]
    assert (await client.get("/orders")).json()["meta"]["total"] == 0


async def test_get_one_returns_200_with_etag_and_304_when_it_matches(
    client: httpx.AsyncClient, user: dict[str, Any]
) -> None:
    created = await client.post("/orders", json=order_body(user["id"]))
    order_id = created.json()["data"]["id"]

    response = await client.get(f"/orders/{order_id}")
    unchanged = await client.get(f"/orders/{order_id}", headers={"If-None-Match": response.headers["etag"]})

    assert response.status_code == 200
    assert response.json()["data"] == created.json()["data"]
    assert response.headers["etag"] == created.headers["etag"]
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == response.headers["etag"]


async def test_get_unknown_is_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.get(f"/orders/{uuid.uuid4()}"), 404, "NOT_FOUND")


async def test_the_etag_changes_when_the_embedded_user_changes(client: httpx.AsyncClient, user: dict[str, Any]) -> None:
    created = await client.post("/orders", json=order_body(user["id"]))
    order_id = created.json()["data"]["id"]

    await client.patch(f"/users/{user['id']}", json={"full_name": "Someone Else"})
    response = await client.get(f"/orders/{order_id}", headers={"If-None-Match": created.headers["etag"]})

    assert response.status_code == 200
    assert response.headers["etag"] != created.headers["etag"]
    assert response.json()["data"]["user"]["full_name"] == "Someone Else"
    stale = await client.patch(
        f"/orders/{order_id}", json={"quantity": 2}, headers={"If-Match": created.headers["etag"]}
    )
    assert_error(stale, 412, "PRECONDITION_FAILED")


async def test_patch_returns_200_new_etag_and_advances_updated_at(
    client: httpx.AsyncClient, user: dict[str, Any]
) -> None:
    created = await client.post("/orders", json=order_body(user["id"]))
    order = created.json()["data"]

    response = await client.patch(
        f"/orders/{order['id']}",
        json={"status": "paid", "quantity": "4", "total_price": "39.6", "shipping_address": ADDRESS},
        headers={"If-Match": created.headers["etag"]},
    )

    assert response.status_code == 200
    data = response.json()["data"]
    changed = {"status": "paid", "quantity": 4, "total_price": "39.60", "shipping_address": ADDRESS}
    assert data == {**order, **changed, "updated_at": data["updated_at"]}
    assert TIMESTAMP.fullmatch(data["updated_at"])
    assert data["updated_at"] > order["updated_at"]
    assert response.headers["etag"] != created.headers["etag"]
    assert (await client.get(f"/orders/{order['id']}")).headers["etag"] == response.headers["etag"]


@pytest.mark.parametrize(("method", "body"), [("PATCH", {"status": "cancelled"}), ("DELETE", None)])
async def test_stale_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient, user: dict[str, Any], method: str, body: dict[str, Any] | None
) -> None:
    created = await client.post("/orders", json=order_body(user["id"]))
    order_id = created.json()["data"]["id"]
    current = await client.patch(f"/orders/{order_id}", json={"status": "paid"})

    response = await client.request(
        method, f"/orders/{order_id}", json=body, headers={"If-Match": created.headers["etag"]}
    )

    assert_error(response, 412, "PRECONDITION_FAILED")
    after = await client.get(f"/orders/{order_id}")
    assert after.json()["data"] == current.json()["data"]
    assert after.headers["etag"] == current.headers["etag"]


async def test_patch_null_on_a_required_field_is_422(client: httpx.AsyncClient, user: dict[str, Any]) -> None:
    order = await create_order(client, user["id"])

    for field in ["user_id", "product_name", "quantity", "total_price", "status", "order_date"]:
        response = await client.patch(f"/orders/{order['id']}", json={field: None})

        assert_error(response, 422, "VALIDATION_ERROR")
        assert error_fields(response) == [f"body.{field}"]
    assert (await client.get(f"/orders/{order['id']}")).json()["data"] == order


@pytest.mark.parametrize("field", ["shipping_address", "metadata"])
async def test_patch_null_clears_an_optional_field(client: httpx.AsyncClient, user: dict[str, Any], field: str) -> None:
    order = await create_order(client, user["id"], shipping_address=ADDRESS, metadata={"k": 1})

    response = await client.patch(f"/orders/{order['id']}", json={field: None})

    assert response.status_code == 200
    assert response.json()["data"][field] is None


async def test_patch_rejects(client: httpx.AsyncClient, user: dict[str, Any]) -> None:
    order = await create_order(client, user["id"])
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "quantity-0": ({"quantity": 0}, "body.quantity"),
        "price-0": ({"total_price": "0.00"}, "body.total_price"),
        "price-3-decimals": ({"total_price": "9.999"}, "body.total_price"),
        "status-unknown": ({"status": "lost"}, "body.status"),
        "user-missing": ({"user_id": str(uuid.uuid4())}, "body.user_id"),
        "id": ({"id": str(uuid.uuid4())}, "body.id"),
        "created_at": ({"created_at": "2020-01-01T00:00:00Z"}, "body.created_at"),
    }

    for case, (change, field) in cases.items():
        response = await client.patch(f"/orders/{order['id']}", json=change)

        assert_error(response, 422, "VALIDATION_ERROR")
        assert error_fields(response) == [field], case
    assert (await client.get(f"/orders/{order['id']}")).json()["data"] == order


async def test_patch_user_id_moves_the_order_to_another_user(client: httpx.AsyncClient, user: dict[str, Any]) -> None:
    other = await create_user(client)
    order = await create_order(client, user["id"])

    response = await client.patch(f"/orders/{order['id']}", json={"user_id": other["id"]})

    assert response.status_code == 200
    assert response.json()["data"]["user"] == other
    assert (await client.get(f"/users/{user['id']}/orders")).json()["meta"]["total"] == 0
    assert [o["id"] for o in (await client.get(f"/users/{other['id']}/orders")).json()["data"]] == [order["id"]]


async def test_patch_unknown_is_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.patch(f"/orders/{uuid.uuid4()}", json={"quantity": 2}), 404, "NOT_FOUND")


async def test_delete_is_204_then_gone_and_the_user_stays(client: httpx.AsyncClient, user: dict[str, Any]) -> None:
    created = await client.post("/orders", json=order_body(user["id"]))
    order_id = created.json()["data"]["id"]

    response = await client.delete(f"/orders/{order_id}", headers={"If-Match": created.headers["etag"]})

    assert response.status_code == 204
    assert response.content == b""
    assert_error(await client.get(f"/orders/{order_id}"), 404, "NOT_FOUND")
    assert_error(await client.delete(f"/orders/{order_id}"), 404, "NOT_FOUND")
    assert (await client.get(f"/users/{user['id']}")).status_code == 200
    assert (await client.delete(f"/users/{user['id']}")).status_code == 204


async def test_an_orders_user(client: httpx.AsyncClient, user: dict[str, Any]) -> None:
    order = await create_order(client, user["id"])
    user_response = await client.get(f"/users/{user['id']}")

    response = await client.get(f"/orders/{order['id']}/user")

    assert response.status_code == 200
    assert response.json() == {"status": "success", "data": user}
    assert response.json()["data"] == order["user"]
    assert response.headers["etag"] == user_response.headers["etag"]
    unchanged = await client.get(f"/orders/{order['id']}/user", headers={"If-None-Match": response.headers["etag"]})
    assert unchanged.status_code == 304


async def test_the_user_of_an_unknown_order_is_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.get(f"/orders/{uuid.uuid4()}/user"), 404, "NOT_FOUND")


async def test_collection_orders_embed_their_users(client: httpx.AsyncClient, user: dict[str, Any]) -> None:
    other = await create_user(client)
    await create_order(client, user["id"])
    await create_order(client, other["id"])

    data = (await client.get("/orders")).json()["data"]

    assert [order["user"] for order in data] == [user, other]
