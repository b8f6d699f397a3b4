"""Hostile input: injection and markup payloads, deep nesting, odd numbers and bytes.

Payloads in stored strings must come back verbatim as JSON, never as HTML; in
query parameters they must give the right answer or ``400 INVALID_QUERY``;
malformed bodies must get a 4xx in the error envelope. Never a 500, and never a
change to the data.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest

from server.models.order import MAX_QUANTITY
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.utils.api import Target, all_pages, assert_error, create_order, create_user, error_fields, write_targets
from tests.utils.data import order_body, user_body
from tests.utils.server import running_server

SQL = ["' OR 1=1 --", "'; DROP TABLE users; --", '" OR ""="']
MARKUP = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]
PAYLOADS = [*SQL, *MARKUP]
# Quotes, dashes and braces are allowed in an address's local part (RFC 5322 dot-atom), so these are valid.
EMAIL_LOCAL_PARTS = ["o'brien'or'1'='1", "x'--", "'||'1'='1", "{alert}", "admin'#"]
JSON = {"Content-Type": "application/json"}


def assert_json(response: httpx.Response) -> None:
    content_type = response.headers["content-type"]
    assert content_type.split(";")[0] == "application/json", content_type
    assert response.headers["x-content-type-options"] == "nosniff"


async def snapshot(client: httpx.AsyncClient) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every user and order, to show that nothing changed."""
    return await all_pages(client, "/users"), await all_pages(client, "/orders")


def nested(levels: int, leaf: Any = 1, *, arrays: bool = False) -> Any:
    """``levels`` levels of objects (or arrays) around ``leaf``."""
    value = leaf
    for _ in range(levels):
        value = [value] if arrays else {"a": value}
    return value


@pytest.fixture
async def targets(client: httpx.AsyncClient) -> dict[str, Target]:
    """For each writing endpoint: its method, its path and a valid body."""
    return await write_targets(client)


TARGETS = ["create-user", "create-order", "patch-user", "patch-order"]


# --- payloads in stored strings -----------------------------------------------------------------


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_payloads_in_a_user_are_stored_and_returned_verbatim(client: httpx.AsyncClient, payload: str) -> None:
    metadata = {payload: payload, "note": payload, "list": [payload, {payload: [payload]}]}
    created = await client.post("/users", json=user_body(full_name=payload, metadata=metadata))
    user = created.json()["data"]
    fetched = await client.get(f"/users/{user['id']}")
    patched = await client.patch(f"/users/{user['id']}", json={"full_name": payload[::-1], "metadata": {"k": payload}})
    by_name = await client.get("/users", params={"full_name": payload[::-1]})
    by_key = await client.get("/users", params={"metadata.k": payload})

    for response in (created, fetched, patched, by_name, by_key):
        assert response.status_code in (200, 201), response.text
        assert_json(response)
    assert user["full_name"] == payload
    assert user["metadata"] == metadata
    assert fetched.json()["data"] == user
    assert patched.json()["data"]["full_name"] == payload[::-1]
    assert patched.json()["data"]["metadata"] == {"k": payload}
    assert [found["id"] for found in by_name.json()["data"]] == [user["id"]]
    assert [found["id"] for found in by_key.json()["data"]] == [user["id"]]
    assert orjson.dumps(payload).decode() in created.text  # JSON text, unescaped for HTML: JSON is no markup


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_payloads_in_an_order_are_stored_and_returned_verbatim(client: httpx.AsyncClient, payload: str) -> None:
    user = await create_user(client, full_name=payload)
    address = {"line1": payload, "city": payload, "postal_code": payload[:20], "country": payload}
    metadata = {payload: payload, "note": [payload]}
    body = order_body(user["id"], product_name=payload, shipping_address=address, metadata=metadata)
    created = await client.post("/orders", json=body)
    order = created.json()["data"]
    fetched = await client.get(f"/orders/{order['id']}")
    owner = await client.get(f"/orders/{order['id']}/user")
    queries = [
        {"product_name": payload},
        {"shipping_address.city": payload},
        {"shipping_address.line1__contains": payload},
        {f"metadata.{payload}": payload},
    ]
    found = [await client.get("/orders", params=query) for query in queries]

    for response in (created, fetched, owner, *found):
        assert response.status_code in (200, 201), response.text
        assert_json(response)
    assert order["product_name"] == payload
    assert order["shipping_address"] == address
    assert order["metadata"] == metadata
    assert order["user"]["full_name"] == payload
    assert fetched.json()["data"] == order
    assert owner.json()["data"] == order["user"]
    for response in found:
        assert [item["id"] for item in response.json()["data"]] == [order["id"]]


@pytest.mark.parametrize("local_part", EMAIL_LOCAL_PARTS)
async def test_quotes_in_an_email_local_part_are_kept_and_can_log_in(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, local_part: str
) -> None:
    email = f"{local_part}@example.com"
    user = await create_user(client, email=email, password="correct-horse")
    found = await client.get("/users", params={"email": email})
    login = await anon.post("/auth/token", json={"email": email, "password": "correct-horse"})

    assert user["email"] == email
    assert [item["id"] for item in found.json()["data"]] == [user["id"]]
    assert login.status_code == 200, login.text


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_payloads_that_are_not_email_addresses_are_refused(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, payload: str
) -> None:
    before = await snapshot(client)

    created = await client.post("/users", json=user_body(email=f"{payload}@example.com"))
    login = await anon.post("/auth/token", json={"email": payload, "password": "anything-at-all"})
    login_with_form = await anon.post("/auth/token", data={"username": f"{payload}@example.com", "password": "x" * 8})

    assert_error(created, 422, "VALIDATION_ERROR")
    assert error_fields(created) == ["body.email"]
    assert_error(login, 401, "INVALID_CREDENTIALS")
    assert_error(login_with_form, 401, "INVALID_CREDENTIALS")
    assert await snapshot(client) == before


# --- payloads in query parameters ---------------------------------------------------------------


def value_at(item: dict[str, Any], path: str) -> Any:
    value: Any = item
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def matches(value: Any, op: str, raw: str, *, folded: bool) -> bool:
    """What ``field__op=raw`` means for a string ``value`` (CONTRACT §5)."""
    if folded and isinstance(value, str):
        value, raw = value.lower(), raw.lower()
    if op == "eq":
        return bool(value == raw)
    if op == "ne":
        return bool(value != raw)
    if op == "contains":
        return isinstance(value, str) and raw.lower() in value.lower()
    assert op == "in"
    return value in raw.split(",")


STRING_FILTERS = {
    "/users": ["full_name", "email", "metadata.note", "metadata.missing"],
    "/orders": ["product_name", "shipping_address.city", "shipping_address.country", "metadata.note"],
}
TYPED_FILTERS = {
    "/users": ["id", "age", "age__gt", "role", "role__in", "created_after", "updated_before__lt"],
    "/orders": ["user_id", "quantity__gte", "total_price", "total_price__lt", "status", "order_date__gt"],
}


@pytest.fixture
async def hostile_data(client: httpx.AsyncClient) -> None:
    """Users and orders whose strings are the payloads, and one of each that is ordinary."""
    plain = await create_user(client, metadata={"note": "plain"})
    await create_order(client, plain["id"], metadata={"note": "plain"})
    for payload in PAYLOADS:
        user = await create_user(client, full_name=payload, metadata={"note": payload})
        address = {"line1": payload, "city": payload, "postal_code": "1000", "country": payload}
        await create_order(
            client, user["id"], product_name=payload, shipping_address=address, metadata={"note": payload}
        )


@pytest.mark.usefixtures("hostile_data")
@pytest.mark.parametrize("payload", PAYLOADS)
async def test_payloads_as_filter_values_give_the_right_answer(client: httpx.AsyncClient, payload: str) -> None:
    before = await snapshot(client)
    everything = dict(zip(("/users", "/orders"), before, strict=True))

    for path, fields in STRING_FILTERS.items():
        for field in fields:
            for op in ("eq", "ne", "contains", "in"):
                name = field if op == "eq" else f"{field}__{op}"
                response = await client.get(path, params={name: payload, "per_page": 100})

                assert response.status_code == 200, (name, response.text)
                assert_json(response)
                folded = field == "email"
                expected = [
                    item["id"]
                    for item in everything[path]
                    if matches(value_at(item, field), op, payload, folded=folded)
                ]
                assert [item["id"] for item in response.json()["data"]] == expected, (path, name)
    for path, names in TYPED_FILTERS.items():
        for name in names:
            response = await client.get(path, params={name: payload})

            assert_error(response, 400, "INVALID_QUERY")
            assert error_fields(response) == [f"query.{name}"]
    assert await snapshot(client) == before


@pytest.mark.usefixtures("hostile_data")
@pytest.mark.parametrize("payload", PAYLOADS)
async def test_payloads_as_names_sorts_and_paths_are_refused(client: httpx.AsyncClient, payload: str) -> None:
    before = await snapshot(client)
    segment = quote(payload.replace("/", ""), safe="")  # a slash would make it another path: a 404

    refused = [
        ("sort", await client.get("/users", params={"sort": payload})),
        ("sort", await client.get("/orders", params={"sort": f"created_at:{payload}"})),
        (payload, await client.get("/users", params={payload: "x"})),
        (f"full_name__{payload}", await client.get("/users", params={f"full_name__{payload}": "x"})),
    ]
    invalid = [
        ("query.page", await client.get("/users", params={"page": payload})),
        ("query.per_page", await client.get("/orders", params={"per_page": payload})),
        ("path.user_id", await client.get(f"/users/{segment}")),
        ("path.order_id", await client.delete(f"/orders/{segment}")),
    ]

    for name, response in refused:
        assert_error(response, 400, "INVALID_QUERY")
        assert error_fields(response) == [f"query.{name}"]
    for field, response in invalid:
        assert_error(response, 422, "VALIDATION_ERROR")
        assert error_fields(response) == [field]
    assert await snapshot(client) == before


# --- structure: nesting, unknown fields ---------------------------------------------------------


def user_body_if(target: str) -> dict[str, Any]:
    """A fresh email for each user created, so repeated creations do not collide."""
    return {"email": user_body()["email"]} if target == "create-user" else {}


@pytest.mark.parametrize("target", TARGETS)
async def test_metadata_nesting_is_capped_at_eight_levels(
    client: httpx.AsyncClient, targets: dict[str, Target], target: str
) -> None:
    method, path, body = targets[target]
    # The object is level 1, and every object or array inside it one more.
    allowed = [nested(8), {"a": nested(7, arrays=True)}, {"a": [{"b": [{"c": [{"d": [1]}]}]}]}]
    refused = [nested(9), {"a": nested(8, arrays=True)}, {"a": [{"b": [{"c": [{"d": [{"e": 1}]}]}]}]}, nested(500)]

    for metadata in allowed:
        response = await client.request(method, path, json={**body, **user_body_if(target), "metadata": metadata})
        assert response.status_code in (200, 201), response.text
        assert response.json()["data"]["metadata"] == metadata
    before = await snapshot(client)
    for metadata in refused:
        response = await client.request(method, path, json={**body, **user_body_if(target), "metadata": metadata})
        assert_error(response, 422, "VALIDATION_ERROR")
        assert error_fields(response) == ["body.metadata"]
    assert await snapshot(client) == before


DEEP_BODIES = {
    "list": b"[" * 10_000 + b"]" * 10_000,
    "object": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "metadata": b'{"full_name":"x","metadata":' + b'{"a":' * 10_000 + b"1" + b"}" * 10_001,
}


@pytest.mark.parametrize("shape", list(DEEP_BODIES))
async def test_a_deeply_nested_body_is_a_client_error(
    client: httpx.AsyncClient, targets: dict[str, Target], shape: str
) -> None:
    before = await snapshot(client)
    requests = [(method, path) for method, path, _ in targets.values()]
    requests += [("POST", "/auth/token"), ("POST", "/auth/refresh")]

    answers = [
        await client.request(method, path, content=DEEP_BODIES[shape], headers=JSON) for method, path in requests
    ]

    for answer in answers:
        assert answer.status_code in (400, 422), answer.text
        assert_error(answer, answer.status_code, "BAD_REQUEST" if answer.status_code == 400 else "VALIDATION_ERROR")
    assert await snapshot(client) == before
    assert (await client.get("/health")).status_code == 200
    assert (await client.post("/users", json=user_body())).status_code == 201


def test_deeply_nested_bodies_do_not_hurt_a_real_server() -> None:
    admin = {"MEMDB_ADMIN_EMAIL": ADMIN_EMAIL, "MEMDB_ADMIN_PASSWORD": ADMIN_PASSWORD}
    with running_server(admin) as base, httpx.Client(base_url=f"{base}/api/v1", timeout=30) as http:
        token = http.post("/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['data']['access_token']}", **JSON}
        answers = [
            http.post(path, content=body, headers=headers)
            for path in ("/users", "/orders", "/auth/token")
            for body in (*DEEP_BODIES.values(), b"[" * 1_000_000)
        ]
        health = http.get("/health")
        created = http.post("/users", json=user_body(), headers=headers)

    assert [answer.status_code for answer in answers if not 400 <= answer.status_code < 500] == []
    assert health.status_code == 200
    assert created.status_code == 201


UNKNOWN_FIELDS: dict[str, list[tuple[dict[str, Any], str]]] = {
    "create-user": [({"is_admin": True}, "body.is_admin"), ({"password_hash": "x"}, "body.password_hash")],
    "create-order": [
        ({"discount": 100}, "body.discount"),
        (
            {
                "shipping_address": {
                    "line1": "1 Road",
                    "city": "Paris",
                    "postal_code": "75001",
                    "country": "FR",
                    "line2": "x",
                }
            },
            "body.shipping_address.line2",
        ),
    ],
    "patch-user": [
        ({"id": "00000000-0000-0000-0000-000000000000"}, "body.id"),
        ({"created_at": "2020-01-01"}, "body.created_at"),
    ],
    "patch-order": [({"user": {"role": "admin"}}, "body.user"), ({"__proto__": {"x": 1}}, "body.__proto__")],
}


@pytest.mark.parametrize("target", TARGETS)
async def test_unknown_fields_are_422_and_change_nothing(
    client: httpx.AsyncClient, targets: dict[str, Target], target: str
) -> None:
    method, path, body = targets[target]
    before = await snapshot(client)

    for extra, field in UNKNOWN_FIELDS[target]:
        response = await client.request(method, path, json={**body, **extra})

        assert_error(response, 422, "VALIDATION_ERROR")
        assert field in error_fields(response)
    assert await snapshot(client) == before


# --- numbers and bytes --------------------------------------------------------------------------


def raw_user(fields: bytes) -> bytes:
    email = user_body()["email"].encode()
    return b'{"email":"%s","password":"correct-horse","full_name":"N",%s}' % (email, fields)


def raw_order(user_id: str, fields: bytes) -> bytes:
    return b'{"user_id":"%s","product_name":"P",%s}' % (user_id.encode(), fields)


BIG = b"1" + b"0" * 30
HUGE = b"9" * 5_000  # past Python's 4,300-digit limit for int()
BAD_USER_FIELDS = {
    b'"age":1e400': 422,
    b'"age":NaN': 422,
    b'"age":Infinity': 422,
    b'"age":-Infinity': 422,
    b'"age":' + BIG: 422,
    b'"age":' + HUGE: 400,
    b'"age":"NaN"': 422,
    b'"metadata":{"n":NaN}': 422,
    b'"metadata":{"n":Infinity}': 422,
    b'"metadata":{"n":-Infinity}': 422,
    b'"metadata":{"n":1e400}': 422,
    b'"metadata":{"n":[' + BIG + b"]}": 422,
    b'"metadata":{"n":-' + BIG + b"}": 422,
    b'"metadata":{"n":' + HUGE + b"}": 400,
}
BAD_ORDER_FIELDS = {
    b'"quantity":%d,"total_price":"1.00"' % (MAX_QUANTITY + 1): 422,
    b'"quantity":' + BIG + b',"total_price":"1.00"': 422,
    b'"quantity":1e400,"total_price":"1.00"': 422,
    b'"quantity":NaN,"total_price":"1.00"': 422,
    b'"quantity":1,"total_price":1e400': 422,
    b'"quantity":1,"total_price":NaN': 422,
    b'"quantity":1,"total_price":"Infinity"': 422,
    b'"quantity":1,"total_price":"-Infinity"': 422,
    b'"quantity":1,"total_price":"sNaN"': 422,
    b'"quantity":1,"total_price":"1e400"': 422,
    b'"quantity":1,"total_price":1e-400': 422,
    b'"quantity":1,"total_price":"' + b"9" * 20 + b'"': 422,
}


async def test_odd_numbers_in_a_user_are_client_errors(client: httpx.AsyncClient) -> None:
    before = await snapshot(client)

    for fields, status in BAD_USER_FIELDS.items():
        response = await client.post("/users", content=raw_user(fields), headers=JSON)

        assert response.status_code == status, (fields[:40], response.text)
        assert_error(response, status, "BAD_REQUEST" if status == 400 else "VALIDATION_ERROR")
    assert await snapshot(client) == before


async def test_odd_numbers_in_an_order_are_client_errors(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    before = await snapshot(client)

    for fields, status in BAD_ORDER_FIELDS.items():
        response = await client.post("/orders", content=raw_order(user["id"], fields), headers=JSON)

        assert response.status_code == status, (fields[:40], response.text)
        assert_error(response, status, "VALIDATION_ERROR")
    assert await snapshot(client) == before


async def test_the_largest_numbers_that_fit_round_trip(client: httpx.AsyncClient) -> None:
    user = await create_user(client, metadata={"unsigned": 2**64 - 1, "signed": -(2**63), "small": 5e-324})
    order = await create_order(client, user["id"], quantity=MAX_QUANTITY, total_price="999999999999.99")
    listing = await client.get("/orders")
    patched = await client.patch(f"/orders/{order['id']}", json={"quantity": MAX_QUANTITY + 1})

    assert user["metadata"] == {"unsigned": 2**64 - 1, "signed": -(2**63), "small": 5e-324}
    assert order["quantity"] == MAX_QUANTITY
    assert order["total_price"] == "999999999999.99"
    assert listing.status_code == 200
    assert [item["quantity"] for item in listing.json()["data"]] == [MAX_QUANTITY]
    assert_error(patched, 422, "VALIDATION_ERROR")
    assert (await client.get(f"/orders/{order['id']}")).json()["data"]["quantity"] == MAX_QUANTITY


BAD_BYTES = {
    "null-byte-in-string": b'"full_name":"a\x00b"',
    "null-byte-outside-strings": b'"full_name":"a"\x00',
    "invalid-utf8": b'"full_name":"\xff\xfe"',
    "overlong-utf8": b'"full_name":"\xc0\xaf"',
    "truncated-utf8": b'"full_name":"\xe2\x82"',
    "invalid-utf8-in-a-key": b'"metadata":{"\xff":1},"full_name":"a"',
}


@pytest.mark.parametrize("case", list(BAD_BYTES))
async def test_bytes_that_are_not_json_text_are_400(client: httpx.AsyncClient, case: str) -> None:
    before = await snapshot(client)

    response = await client.post("/users", content=raw_user(BAD_BYTES[case]), headers=JSON)

    assert_error(response, 400, "BAD_REQUEST")
    assert await snapshot(client) == before


@pytest.mark.parametrize(
    "body",
    [
        b'\xef\xbb\xbf{"full_name":"a"}',  # a byte-order mark
        '{"full_name":"a"}'.encode("utf-16"),
        b"",
        b"null",
        b'"just a string"',
    ],
)
async def test_a_body_that_is_not_a_json_object_is_a_client_error(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/users", content=body, headers=JSON)

    assert response.status_code in (400, 422), response.text
    assert_error(response, response.status_code, "BAD_REQUEST" if response.status_code == 400 else "VALIDATION_ERROR")


@pytest.mark.parametrize("escaped", [rb'"full_name":"a\ud800b"', rb'"metadata":{"\udfff":1},"full_name":"a"'])
async def test_lone_surrogates_are_422(client: httpx.AsyncClient, escaped: bytes) -> None:
    before = await snapshot(client)

    response = await client.post("/users", content=raw_user(escaped), headers=JSON)

    assert_error(response, 422, "VALIDATION_ERROR")
    assert await snapshot(client) == before


async def test_an_escaped_null_character_is_ordinary_text(client: httpx.AsyncClient) -> None:
    created = await client.post("/users", content=raw_user(rb'"metadata":{"k\u0000":"v\u0000"}'), headers=JSON)
    user = created.json()["data"]
    found = await client.get("/users", params={"metadata.k\x00": "v\x00"})

    assert created.status_code == 201
    assert user["full_name"] == "N"
    assert user["metadata"] == {"k\x00": "v\x00"}
    assert [item["id"] for item in found.json()["data"]] == [user["id"]]


async def test_odd_bytes_in_the_query_and_path_are_not_server_errors(client: httpx.AsyncClient) -> None:
    before = await snapshot(client)

    found_nothing = [
        await client.get("/users?full_name=%00"),
        await client.get("/users?full_name=%ff%fe"),
        await client.get("/users?metadata.note=%ed%a0%80"),
    ]
    refused = [
        await client.get("/users?sort=%00"),
        await client.get("/users?sort=%ff"),
        await client.get("/users?%ff=1"),
    ]
    not_ids = [await client.get("/users/%00"), await client.get("/orders/%ff")]

    for response in found_nothing:
        assert response.status_code == 200, response.text
        assert response.json()["data"] == []
    for response in refused:
        assert_error(response, 400, "INVALID_QUERY")
    for response in not_ids:
        assert_error(response, 422, "VALIDATION_ERROR")
    assert await snapshot(client) == before
