"""``/users`` over HTTP: create, read, conditional requests, update, delete, and a user's orders."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.utils.api import TIMESTAMP, all_pages, assert_error, create_order, create_user, error_fields
from tests.utils.data import user_body

PUBLIC_FIELDS = {"id", "email", "full_name", "age", "role", "metadata", "created_at", "updated_at"}


def nested(depth: int, arrays: bool = False) -> dict[str, Any]:
    """A JSON object ``depth`` levels deep: the object itself is level 1, each nested object (or array) one more."""
    value: Any = [1] if arrays else {"leaf": 1}
    for _ in range(depth - 2):
        value = [value] if arrays else {"down": value}
    return {"top": value}


async def test_create_returns_201_with_location_etag_and_the_public_shape(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/users", json=user_body(email="Ada@Example.COM", full_name="Ada Lovelace", metadata={"plan": "pro"})
    )

    assert response.status_code == 201
    data = response.json()["data"]
    assert set(response.json()) == {"status", "data"}
    assert response.json()["status"] == "success"
    assert set(data) == PUBLIC_FIELDS
    assert uuid.UUID(data["id"])
    assert data["email"] == "Ada@example.com"  # the domain is normalised, the local part kept
    assert data["full_name"] == "Ada Lovelace"
    assert data["age"] is None
    assert data["role"] == "user"
    assert data["metadata"] == {"plan": "pro"}
    assert TIMESTAMP.fullmatch(data["created_at"])
    assert data["updated_at"] == data["created_at"]
    assert response.headers["location"] == f"/api/v1/users/{data['id']}"
    assert response.headers["etag"].startswith('"')
    assert response.headers["etag"].endswith('"')
    assert response.headers["cache-control"] == "private, no-cache"

    fetched = await client.get(client.base_url.join(response.headers["location"]))
    assert fetched.status_code == 200
    assert fetched.json()["data"] == data
    assert fetched.headers["etag"] == response.headers["etag"]


async def test_the_password_is_never_returned(client: httpx.AsyncClient) -> None:
    created = await client.post("/users", json=user_body(password="first-secret"))
    user_id = created.json()["data"]["id"]
    patched = await client.patch(f"/users/{user_id}", json={"password": "second-secret"})
    fetched = await client.get(f"/users/{user_id}")
    listed = await client.get("/users")

    assert patched.status_code == 200
    for response in (created, patched, fetched, listed):
        assert "password" not in response.text
        assert "secret" not in response.text
        assert "$2b$" not in response.text


ACCEPTED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "age-coerced-from-text": ({"age": "42"}, {"age": 42}),
    "age-min": ({"age": 1}, {"age": 1}),
    "age-max": ({"age": 149}, {"age": 149}),
    "role-admin": ({"role": "admin"}, {"role": "admin"}),
    "name-100": ({"full_name": "x" * 100}, {"full_name": "x" * 100}),
    "password-8": ({"password": "12345678"}, {}),
    "password-72-bytes": ({"password": "x" * 72}, {}),
    "password-72-utf8-bytes": ({"password": "é" * 36}, {}),
    "metadata-depth-8": ({"metadata": nested(8)}, {"metadata": nested(8)}),
    "arrays-depth-8": ({"metadata": nested(8, arrays=True)}, {"metadata": nested(8, arrays=True)}),
    "metadata-empty": ({"metadata": {}}, {"metadata": {}}),
}
REJECTED: dict[str, tuple[dict[str, Any], str]] = {
    "email-invalid": ({"email": "not-an-email"}, "body.email"),
    "email-null": ({"email": None}, "body.email"),
    "name-empty": ({"full_name": ""}, "body.full_name"),
    "name-101": ({"full_name": "x" * 101}, "body.full_name"),
    "age-0": ({"age": 0}, "body.age"),
    "age-150": ({"age": 150}, "body.age"),
    "age-text": ({"age": "old"}, "body.age"),
    "role-unknown": ({"role": "root"}, "body.role"),
    "password-7": ({"password": "short"}, "body.password"),
    "password-73-bytes": ({"password": "x" * 73}, "body.password"),
    "password-74-utf8-bytes": ({"password": "é" * 37}, "body.password"),
    "metadata-depth-9": ({"metadata": nested(9)}, "body.metadata"),
    "arrays-depth-9": ({"metadata": nested(9, arrays=True)}, "body.metadata"),
    "metadata-not-object": ({"metadata": [1, 2]}, "body.metadata"),
    "unknown-field": ({"nickname": "ada"}, "body.nickname"),
    "id-not-writable": ({"id": str(uuid.uuid4())}, "body.id"),
    "created_at-not-writable": ({"created_at": "2020-01-01T00:00:00Z"}, "body.created_at"),
}


async def test_create_accepts(client: httpx.AsyncClient) -> None:
    for case, (overrides, expected) in ACCEPTED.items():
        response = await client.post("/users", json=user_body(**overrides))

        assert response.status_code == 201, (case, response.text)
        data = response.json()["data"]
        assert {name: data[name] for name in expected} == expected, case


async def test_create_rejects(client: httpx.AsyncClient) -> None:
    for case, (overrides, field) in REJECTED.items():
        body = user_body(**overrides)
        response = await client.post("/users", json=body)

        assert_error(response, 422, "VALIDATION_ERROR")
        assert field in error_fields(response), case
        assert (await client.get("/users", params={"email": str(body["email"])})).json()["meta"]["total"] == 0


@pytest.mark.parametrize("missing", ["email", "full_name", "password"])
async def test_create_requires(client: httpx.AsyncClient, missing: str) -> None:
    body = user_body()
    del body[missing]

    response = await client.post("/users", json=body)

    assert_error(response, 422, "VALIDATION_ERROR")
    assert error_fields(response) == [f"body.{missing}"]


@pytest.mark.parametrize("second", ["ADA@example.com", "ada@EXAMPLE.COM", "Ada@Example.com"])
async def test_duplicate_email_in_any_case_is_409(client: httpx.AsyncClient, second: str) -> None:
    await create_user(client, email="ada@example.com")

    response = await client.post("/users", json=user_body(email=second))

    error = assert_error(response, 409, "CONFLICT")
    assert error_fields(response) == ["body.email"]
    assert "email" in error["message"]
    assert (await client.get("/users", params={"email": "ada@example.com"})).json()["meta"]["total"] == 1


async def test_get_one_returns_200_with_etag(client: httpx.AsyncClient) -> None:
    created = await client.post("/users", json=user_body())

    response = await client.get(f"/users/{created.json()['data']['id']}")

    assert response.status_code == 200
    assert response.json() == {"status": "success", "data": created.json()["data"]}
    assert response.headers["etag"] == created.headers["etag"]
    assert response.headers["cache-control"] == "private, no-cache"


async def test_get_unknown_is_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.get(f"/users/{uuid.uuid4()}"), 404, "NOT_FOUND")


async def test_if_none_match(client: httpx.AsyncClient) -> None:
    created = await client.post("/users", json=user_body())
    tag = created.headers["etag"]
    cases = [(tag, 304), (f"W/{tag}", 304), (f'"nope", {tag}', 304), ("*", 304), ('"nope"', 200)]

    for header, status in cases:
        response = await client.get(f"/users/{created.json()['data']['id']}", headers={"If-None-Match": header})

        assert response.status_code == status, header
        assert response.headers["etag"] == tag
        if status == 304:
            assert response.content == b""
        else:
            assert response.json()["data"] == created.json()["data"]


async def test_patch_returns_200_new_etag_and_advances_updated_at(client: httpx.AsyncClient) -> None:
    created = await client.post("/users", json=user_body(age=30))
    user = created.json()["data"]

    response = await client.patch(f"/users/{user['id']}", json={"full_name": "Renamed", "age": "31"})

    assert response.status_code == 200
    data = response.json()["data"]
    assert data == {**user, "full_name": "Renamed", "age": 31, "updated_at": data["updated_at"]}
    assert TIMESTAMP.fullmatch(data["updated_at"])
    assert data["updated_at"] > user["updated_at"]
    assert response.headers["etag"] != created.headers["etag"]
    fetched = await client.get(f"/users/{user['id']}", headers={"If-None-Match": created.headers["etag"]})
    assert fetched.status_code == 200
    assert fetched.json()["data"] == data
    assert fetched.headers["etag"] == response.headers["etag"]


async def test_patch_with_current_if_match_applies(client: httpx.AsyncClient) -> None:
    created = await client.post("/users", json=user_body())

    response = await client.patch(
        f"/users/{created.json()['data']['id']}", json={"age": 50}, headers={"If-Match": created.headers["etag"]}
    )

    assert response.status_code == 200
    assert response.json()["data"]["age"] == 50


@pytest.mark.parametrize(("method", "body"), [("PATCH", {"full_name": "Too late"}), ("DELETE", None)])
async def test_stale_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient, method: str, body: dict[str, Any] | None
) -> None:
    created = await client.post("/users", json=user_body())
    user_id = created.json()["data"]["id"]
    stale = created.headers["etag"]
    current = await client.patch(f"/users/{user_id}", json={"age": 20})

    response = await client.request(method, f"/users/{user_id}", json=body, headers={"If-Match": stale})

    assert_error(response, 412, "PRECONDITION_FAILED")
    after = await client.get(f"/users/{user_id}")
    assert after.json()["data"] == current.json()["data"]
    assert after.headers["etag"] == current.headers["etag"]


@pytest.mark.parametrize("field", ["email", "full_name", "role", "password"])
async def test_patch_null_on_a_required_field_is_422(client: httpx.AsyncClient, field: str) -> None:
    user = await create_user(client)

    response = await client.patch(f"/users/{user['id']}", json={field: None})

    assert_error(response, 422, "VALIDATION_ERROR")
    assert error_fields(response) == [f"body.{field}"]
    assert (await client.get(f"/users/{user['id']}")).json()["data"] == user


@pytest.mark.parametrize("field", ["age", "metadata"])
async def test_patch_null_clears_an_optional_field(client: httpx.AsyncClient, field: str) -> None:
    user = await create_user(client, age=40, metadata={"k": "v"})

    response = await client.patch(f"/users/{user['id']}", json={field: None})

    assert response.status_code == 200
    assert response.json()["data"][field] is None


async def test_patch_rejects(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "password-73-bytes": ({"password": "x" * 73}, "body.password"),
        "metadata-depth-9": ({"metadata": nested(9)}, "body.metadata"),
        "age-0": ({"age": 0}, "body.age"),
        "email-invalid": ({"email": "nope"}, "body.email"),
        "id": ({"id": str(uuid.uuid4())}, "body.id"),
        "unknown-field": ({"nickname": "x"}, "body.nickname"),
    }

    for case, (change, field) in cases.items():
        response = await client.patch(f"/users/{user['id']}", json=change)

        assert_error(response, 422, "VALIDATION_ERROR")
        assert error_fields(response) == [field], case
    assert (await client.get(f"/users/{user['id']}")).json()["data"] == user


async def test_patch_to_another_users_email_in_any_case_is_409(client: httpx.AsyncClient) -> None:
    await create_user(client, email="taken@example.com")
    user = await create_user(client)

    response = await client.patch(f"/users/{user['id']}", json={"email": "TAKEN@example.com"})

    assert_error(response, 409, "CONFLICT")
    assert (await client.get(f"/users/{user['id']}")).json()["data"] == user


async def test_patch_own_email_to_another_case_is_allowed(client: httpx.AsyncClient) -> None:
    user = await create_user(client, email="me@example.com")

    response = await client.patch(f"/users/{user['id']}", json={"email": "ME@example.com"})

    assert response.status_code == 200
    assert response.json()["data"]["email"] == "ME@example.com"


async def test_patch_unknown_is_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.patch(f"/users/{uuid.uuid4()}", json={"age": 3}), 404, "NOT_FOUND")


async def test_delete_is_204_then_gone(client: httpx.AsyncClient) -> None:
    created = await client.post("/users", json=user_body())
    user_id = created.json()["data"]["id"]

    response = await client.delete(f"/users/{user_id}", headers={"If-Match": created.headers["etag"]})

    assert response.status_code == 204
    assert response.content == b""
    assert_error(await client.get(f"/users/{user_id}"), 404, "NOT_FOUND")
    assert_error(await client.delete(f"/users/{user_id}"), 404, "NOT_FOUND")


async def test_deleting_a_user_with_orders_is_409_without_cascade(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    order = await create_order(client, user["id"])

    response = await client.delete(f"/users/{user['id']}")

    assert_error(response, 409, "CONFLICT")
    assert (await client.get(f"/users/{user['id']}")).status_code == 200
    assert (await client.get(f"/orders/{order['id']}")).status_code == 200


@pytest.mark.parametrize("cascade", ["true", "1"])
async def test_cascade_deletes_the_user_and_only_their_orders(client: httpx.AsyncClient, cascade: str) -> None:
    user = await create_user(client)
    other = await create_user(client)
    doomed = [await create_order(client, user["id"]) for _ in range(3)]
    kept = await create_order(client, other["id"])

    response = await client.delete(f"/users/{user['id']}", params={"cascade": cascade})

    assert response.status_code == 204
    assert response.content == b""
    assert_error(await client.get(f"/users/{user['id']}"), 404, "NOT_FOUND")
    for order in doomed:
        assert_error(await client.get(f"/orders/{order['id']}"), 404, "NOT_FOUND")
    assert [order["id"] for order in await all_pages(client, "/orders")] == [kept["id"]]


async def test_a_users_orders_lists_only_theirs(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    other = await create_user(client)
    theirs = [await create_order(client, user["id"], product_name=f"Item {n}") for n in range(3)]
    await create_order(client, other["id"])

    response = await client.get(f"/users/{user['id']}/orders")

    assert response.status_code == 200
    body = response.json()
    assert body["data"] == theirs
    assert body["meta"] == {"page": 1, "per_page": 20, "total": 3, "total_pages": 1}
    assert all(order["user"]["id"] == user["id"] for order in body["data"])
    assert response.headers["etag"]


async def test_a_users_orders_take_filters_sort_and_paging(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    other = await create_user(client)
    statuses = ["pending", "paid", "shipped", "paid"]
    orders = [
        await create_order(client, user["id"], product_name=f"Item {n}", quantity=n + 1, status=status)
        for n, status in enumerate(statuses)
    ]
    await create_order(client, other["id"], product_name="Item 1", quantity=9, status="paid")
    cases: list[tuple[dict[str, str], list[int]]] = [
        ({"status": "paid"}, [1, 3]),
        ({"quantity__gte": "3"}, [2, 3]),
        ({"product_name__contains": "ITEM 1"}, [1]),
        ({"sort": "quantity:desc"}, [3, 2, 1, 0]),
        ({"per_page": "2", "page": "2"}, [2, 3]),
    ]

    for params, expected in cases:
        response = await client.get(f"/users/{user['id']}/orders", params=params)

        assert response.status_code == 200
        assert [order["id"] for order in response.json()["data"]] == [orders[n]["id"] for n in expected], params


async def test_a_users_orders_reject_a_bad_filter(client: httpx.AsyncClient) -> None:
    user = await create_user(client)

    response = await client.get(f"/users/{user['id']}/orders", params={"quantity__contains": "1"})

    assert_error(response, 400, "INVALID_QUERY")
    assert error_fields(response) == ["query.quantity__contains"]


async def test_orders_of_an_unknown_user_is_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.get(f"/users/{uuid.uuid4()}/orders"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        (2**64 - 1, True),
        (-(2**63), True),
        (12.75, True),
        (2**64, False),
        (-(2**63) - 1, False),
        (1e30, False),  # a whole number as JSON Schema counts them, past 64 bits
        (1.5e300, False),
    ],
)
async def test_whole_numbers_in_metadata_fit_64_bits(client: httpx.AsyncClient, value: Any, accepted: bool) -> None:
    response = await client.post("/users", json=user_body(metadata={"n": value}))

    if accepted:
        assert response.status_code == 201, response.text
        assert response.json()["data"]["metadata"] == {"n": value}
    else:
        error = assert_error(response, 422, "VALIDATION_ERROR")
        assert error["details"] == [
            {"field": "body.metadata", "message": "numbers must be finite, and whole numbers must fit in 64 bits"}
        ]


@pytest.mark.parametrize("email", ['"ada lovelace"@example.com', "ada@[192.0.2.1]"])
async def test_quoted_local_parts_and_address_literals_are_addresses(client: httpx.AsyncClient, email: str) -> None:
    response = await client.post("/users", json=user_body(email=email))

    assert response.status_code == 201, response.text
    assert response.json()["data"]["email"] == email


@pytest.mark.parametrize("email", ["ada@example.test", "ada@printer.local", "ada@localhost", "ada@nodot"])
async def test_special_use_and_dotless_domains_are_refused(client: httpx.AsyncClient, email: str) -> None:
    error = assert_error(await client.post("/users", json=user_body(email=email)), 422, "VALIDATION_ERROR")

    assert error["details"][0]["field"] == "body.email"
    assert error["details"][0]["message"].startswith("must be a valid email address: ")
