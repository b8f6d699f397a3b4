"""Collections over HTTP: paging and its ``Link`` header, sorting, and every kind of filter."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from starlette.requests import Request

from server.responses import link_header
from tests.utils.api import all_pages, assert_error, create_order, create_user, error_fields, links

Row = dict[str, Any]

PARIS = {"line1": "1 Rue de Rivoli", "city": "Paris", "postal_code": "75001", "country": "FR"}
BERLIN = {"line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117", "country": "DE"}
LYON = {"line1": "1 Place Bellecour", "city": "Lyon", "postal_code": "69002", "country": "FR"}

# The catalogue: orders 0-2 belong to user 0, orders 3-5 to user 1. Filter cases below name rows by position.
ORDERS: list[dict[str, Any]] = [
    {
        "product_name": "Widget",
        "quantity": 1,
        "total_price": "9.99",
        "status": "pending",
        "shipping_address": PARIS,
        "metadata": {"source": "web", "gift": True, "priority": 3},
        "order_date": "2025-01-01T00:00:00Z",
    },
    {
        "product_name": "Gadget",
        "quantity": 2,
        "total_price": "100.00",
        "status": "paid",
        "shipping_address": BERLIN,
        "metadata": {"source": "app", "gift": False, "priority": 1},
        "order_date": "2025-01-02T12:00:00Z",
    },
    {
        "product_name": "widget pro",
        "quantity": 3,
        "total_price": "10.50",
        "status": "shipped",
        "metadata": {"source": "web", "gift": "true", "priority": "3"},
        "order_date": "2025-01-03T00:00:00Z",
    },
    {
        "product_name": "Gizmo",
        "quantity": 2,
        "total_price": "2",
        "status": "delivered",
        "shipping_address": PARIS,
        "order_date": "2025-01-03T00:00:00.000001Z",
    },
    {
        "product_name": "Doohickey",
        "quantity": 5,
        "total_price": "9.99",
        "status": "cancelled",
        "shipping_address": LYON,
        "metadata": {"note": None},
        "order_date": "2025-01-04T00:00:00Z",
    },
    {
        "product_name": "Gadget",
        "quantity": 1,
        "total_price": "1000",
        "status": "paid",
        "shipping_address": PARIS,
        "metadata": {"source": "Web"},
        "order_date": "2025-01-05T00:00:00Z",
    },
]
ALL = set(range(len(ORDERS)))


@dataclass
class Catalog:
    users: list[Row]
    orders: list[Row]

    def ids(self) -> dict[str, str]:
        """Placeholders filter cases may use: ``{user0}``, ``{order3}``..."""
        names = {f"user{n}": user["id"] for n, user in enumerate(self.users)}
        return names | {f"order{n}": order["id"] for n, order in enumerate(self.orders)}

    def positions(self, items: list[Row]) -> list[int]:
        by_id = {order["id"]: n for n, order in enumerate(self.orders)}
        return [by_id[item["id"]] for item in items]


@pytest.fixture
async def catalog(client: httpx.AsyncClient) -> Catalog:
    users = [await create_user(client), await create_user(client)]
    orders = [await create_order(client, users[n // 3]["id"], **body) for n, body in enumerate(ORDERS)]
    # Touch two orders so that updated_at order differs from creation order.
    for n in (2, 0):
        response = await client.patch(f"/orders/{orders[n]['id']}", json={"product_name": ORDERS[n]["product_name"]})
        orders[n] = response.json()["data"]
    return Catalog(users, orders)


def sort_key(field: str) -> Callable[[Any], Any]:
    """How the service must order ``field``'s presented values: money as numbers, email without case."""
    if field == "total_price":
        return Decimal
    if field == "email":
        return str.casefold
    return lambda value: value


def expected_order(rows: list[Row], spec: str) -> list[Row]:
    """``rows`` (in creation order) sorted by ``spec``: stable, ties in creation order, nulls last both ways."""
    ordered = list(rows)
    for part in reversed(spec.split(",")):
        field, _, direction = part.partition(":")
        present = [row for row in ordered if row[field] is not None]
        nulls = [row for row in ordered if row[field] is None]
        key = sort_key(field)
        ordered = sorted(present, key=lambda row: key(row[field]), reverse=direction == "desc") + nulls
    return ordered


# -- paging ---------------------------------------------------------------------


async def test_pages_split_the_rows_and_a_page_past_the_end_is_empty_with_the_true_total(
    client: httpx.AsyncClient,
) -> None:
    user = await create_user(client)
    orders = [await create_order(client, user["id"]) for _ in range(5)]

    for page, expected in [(1, [0, 1]), (2, [2, 3]), (3, [4]), (4, []), (1000, [])]:
        response = await client.get("/orders", params={"page": page, "per_page": 2})

        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"status", "data", "meta"}
        assert [order["id"] for order in body["data"]] == [orders[n]["id"] for n in expected], page
        assert body["meta"] == {"page": page, "per_page": 2, "total": 5, "total_pages": 3}


async def test_defaults_are_page_1_and_20_per_page(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    orders = [await create_order(client, user["id"]) for _ in range(21)]

    first = await client.get("/orders")
    second = await client.get("/orders", params={"page": 2})

    assert [order["id"] for order in first.json()["data"]] == [order["id"] for order in orders[:20]]
    assert first.json()["meta"] == {"page": 1, "per_page": 20, "total": 21, "total_pages": 2}
    assert [order["id"] for order in second.json()["data"]] == [orders[20]["id"]]


async def test_per_page_bounds_are_accepted(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    for _ in range(3):
        await create_order(client, user["id"])

    for per_page, items, pages in [(1, 1, 3), (100, 3, 1)]:
        response = await client.get("/orders", params={"per_page": per_page})

        assert response.status_code == 200
        assert len(response.json()["data"]) == items
        assert response.json()["meta"]["total_pages"] == pages


async def test_an_empty_result_has_total_pages_0_and_links_to_page_1(client: httpx.AsyncClient) -> None:
    response = await client.get("/orders", params={"status": "paid", "per_page": 5})

    assert response.status_code == 200
    assert response.json()["data"] == []
    assert response.json()["meta"] == {"page": 1, "per_page": 5, "total": 0, "total_pages": 0}
    rels = links(response)
    assert set(rels) == {"first", "last"}
    assert rels["first"].params["page"] == rels["last"].params["page"] == "1"


BAD_PAGING: list[tuple[dict[str, Any], list[str]]] = [
    ({"page": 0}, ["query.page"]),
    ({"page": -1}, ["query.page"]),
    ({"page": "two"}, ["query.page"]),
    ({"page": "1.5"}, ["query.page"]),
    ({"page": 10**20}, ["query.page"]),
    ({"per_page": 0}, ["query.per_page"]),
    ({"per_page": 101}, ["query.per_page"]),
    ({"per_page": "many"}, ["query.per_page"]),
    ({"page": 0, "per_page": 101}, ["query.page", "query.per_page"]),
]


@pytest.mark.parametrize("path", ["/orders", "/users", "/users/{id}/orders"])
async def test_page_and_per_page_out_of_range_are_422(client: httpx.AsyncClient, path: str) -> None:
    user = await create_user(client)

    for params, fields in BAD_PAGING:
        response = await client.get(path.format(id=user["id"]), params=params)

        assert_error(response, 422, "VALIDATION_ERROR")
        assert error_fields(response) == fields, params


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        pytest.param(1, {"first": 1, "next": 2, "last": 4}, id="first"),
        pytest.param(2, {"first": 1, "prev": 1, "next": 3, "last": 4}, id="middle"),
        pytest.param(4, {"first": 1, "prev": 3, "last": 4}, id="last"),
        pytest.param(9, {"first": 1, "prev": 4, "last": 4}, id="past-the-end"),
    ],
)
async def test_link_header_keeps_filters_sort_and_per_page(
    client: httpx.AsyncClient, page: int, expected: dict[str, int]
) -> None:
    user = await create_user(client)
    orders = [await create_order(client, user["id"], total_price=f"{n}.00") for n in range(1, 8)]
    await create_order(client, user["id"], status="paid")
    await create_order(client, user["id"], status="cancelled")
    query = [
        ("quantity__gte", "1"),
        ("status__ne", "paid"),
        ("status__ne", "cancelled"),
        ("sort", "total_price:desc"),
        ("per_page", "2"),
    ]

    response = await client.get("/orders", params=[*query, ("page", str(page))])

    assert response.status_code == 200
    rels = links(response)
    assert {rel: int(url.params["page"]) for rel, url in rels.items()} == expected
    for url in rels.values():
        assert url.path == "/api/v1/orders"
        assert sorted(url.params.multi_items()) == sorted([*query, ("page", url.params["page"])])
    if "next" in rels:
        following = await client.get(rels["next"])
        newest_first = orders[::-1]
        start = 2 * (expected["next"] - 1)
        assert [o["id"] for o in following.json()["data"]] == [o["id"] for o in newest_first[start : start + 2]]


async def test_link_header_of_a_users_orders_stays_on_that_path(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    for _ in range(3):
        await create_order(client, user["id"])

    response = await client.get(f"/users/{user['id']}/orders", params={"per_page": 1, "page": 2})

    rels = links(response)
    assert {rel: url.params["page"] for rel, url in rels.items()} == {
        "first": "1",
        "prev": "1",
        "next": "3",
        "last": "3",
    }
    assert {url.path for url in rels.values()} == {f"/api/v1/users/{user['id']}/orders"}


async def test_collections_carry_an_etag_and_answer_304(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    await create_order(client, user["id"])

    first = await client.get("/orders")
    unchanged = await client.get("/orders", headers={"If-None-Match": first.headers["etag"]})
    await create_order(client, user["id"])
    changed = await client.get("/orders", headers={"If-None-Match": first.headers["etag"]})

    assert first.headers["cache-control"] == "private, no-cache"
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == first.headers["etag"]
    assert changed.status_code == 200
    assert changed.headers["etag"] != first.headers["etag"]
    assert changed.json()["meta"]["total"] == 2


# -- sorting --------------------------------------------------------------------

ORDER_FIELDS = (
    "id",
    "user_id",
    "product_name",
    "quantity",
    "total_price",
    "status",
    "order_date",
    "created_at",
    "updated_at",
)
USER_FIELDS = ("id", "email", "full_name", "age", "role", "created_at", "updated_at")


def directions(field: str) -> list[str]:
    return [field, f"{field}:asc", f"{field}:desc"]


async def test_orders_sort_by_every_sortable_field_both_ways(client: httpx.AsyncClient, catalog: Catalog) -> None:
    for field in ORDER_FIELDS:
        for spec in directions(field):
            response = await client.get("/orders", params={"sort": spec})

            assert response.status_code == 200
            assert response.json()["data"] == expected_order(catalog.orders, spec), spec


@pytest.mark.parametrize(
    "spec", ["status:asc,total_price:desc", "quantity:desc,product_name", "user_id:desc,quantity:asc,order_date:desc"]
)
async def test_orders_sort_by_several_keys(client: httpx.AsyncClient, catalog: Catalog, spec: str) -> None:
    response = await client.get("/orders", params={"sort": spec})

    assert response.status_code == 200
    assert response.json()["data"] == expected_order(catalog.orders, spec)


async def test_the_default_order_is_created_at_ascending(client: httpx.AsyncClient, catalog: Catalog) -> None:
    default = (await client.get("/orders")).json()["data"]

    assert default == catalog.orders
    assert default == (await client.get("/orders", params={"sort": "created_at:asc"})).json()["data"]
    assert [order["created_at"] for order in default] == sorted(order["created_at"] for order in default)


async def test_money_sorts_as_a_number(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    for price in ["9.99", "100.00", "10.5", "2", "1000", "99.99"]:
        await create_order(client, user["id"], total_price=price)
    expected = ["2.00", "9.99", "10.50", "99.99", "100.00", "1000.00"]

    ascending = await client.get("/orders", params={"sort": "total_price"})
    descending = await client.get("/orders", params={"sort": "total_price:desc"})
    above_ten = await client.get("/orders", params={"total_price__gt": "10", "sort": "total_price"})

    assert [order["total_price"] for order in ascending.json()["data"]] == expected
    assert [order["total_price"] for order in descending.json()["data"]] == expected[::-1]
    assert [order["total_price"] for order in above_ten.json()["data"]] == expected[2:]


async def test_paging_through_ties_is_stable(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    statuses = ["pending", "paid", "shipped"]
    orders = [await create_order(client, user["id"], quantity=n % 3 + 1, status=statuses[n % 2]) for n in range(24)]

    for spec in ["quantity", "quantity:desc", "status:desc", "status,quantity:desc", "created_at"]:
        pages = [
            (await client.get("/orders", params={"sort": spec, "per_page": 2, "page": page})).json()["data"]
            for page in range(1, 13)
        ]

        walked = [order for page in pages for order in page]
        assert walked == expected_order(orders, spec), spec


async def test_bad_sorts_are_400_invalid_query(client: httpx.AsyncClient) -> None:
    specs = ["nope", "quantity:sideways", "quantity:ASC", "quantity,", "metadata", "shipping_address", "user"]
    for spec in [*specs, "shipping_address.city", "created_at:asc:desc"]:
        response = await client.get("/orders", params={"sort": spec})

        error = assert_error(response, 400, "INVALID_QUERY")
        assert error_fields(response) == ["query.sort"], spec
        assert "sort" in error["message"]


# -- filtering ------------------------------------------------------------------

FILTERS: dict[str, list[tuple[dict[str, str], set[int]]]] = {
    "integers": [
        ({"quantity": "2"}, {1, 3}),
        ({"quantity__eq": "2"}, {1, 3}),
        ({"quantity__ne": "2"}, {0, 2, 4, 5}),
        ({"quantity__gt": "2"}, {2, 4}),
        ({"quantity__gte": "2"}, {1, 2, 3, 4}),
        ({"quantity__lt": "2"}, {0, 5}),
        ({"quantity__lte": "2"}, {0, 1, 3, 5}),
        ({"quantity__in": "1,5"}, {0, 4, 5}),
        ({"quantity__gte": "2", "quantity__lte": "3"}, {1, 2, 3}),
    ],
    "money compares as a number": [
        ({"total_price": "9.99"}, {0, 4}),
        ({"total_price": "9.990"}, {0, 4}),
        ({"total_price__ne": "9.99"}, {1, 2, 3, 5}),
        ({"total_price__gt": "9.99"}, {1, 2, 5}),
        ({"total_price__gt": "10"}, {1, 2, 5}),
        ({"total_price__gt": "100"}, {5}),
        ({"total_price__gte": "10.5"}, {1, 2, 5}),
        ({"total_price__lt": "10.5"}, {0, 3, 4}),
        ({"total_price__lt": "100"}, {0, 2, 3, 4}),
        ({"total_price__lte": "9.99"}, {0, 3, 4}),
        ({"total_price__in": "9.99,100"}, {0, 1, 4}),
    ],
    "enums and text": [
        ({"status": "paid"}, {1, 5}),
        ({"status__ne": "paid"}, {0, 2, 3, 4}),
        ({"status__in": "paid,shipped"}, {1, 2, 5}),
        ({"status__contains": "IVER"}, {3}),
        ({"product_name": "Gadget"}, {1, 5}),
        ({"product_name": "gadget"}, set()),
        ({"product_name__ne": "Gadget"}, {0, 2, 3, 4}),
        ({"product_name__contains": "WIDGET"}, {0, 2}),
        ({"product_name__in": "Gizmo,Widget"}, {0, 3}),
    ],
    "keys": [
        ({"id": "{order1}"}, {1}),
        ({"id__in": "{order0},{order3}"}, {0, 3}),
        ({"id__ne": "{order0}"}, {1, 2, 3, 4, 5}),
        ({"user_id": "{user0}"}, {0, 1, 2}),
        ({"user_id__ne": "{user0}"}, {3, 4, 5}),
        ({"user_id__in": "{user0},{user1}"}, ALL),
        ({"user_id": "{user1}", "status": "paid"}, {5}),
    ],
    "datetimes take a date or a datetime": [
        ({"order_date__gte": "2025-01-03"}, {2, 3, 4, 5}),
        ({"order_date__gt": "2025-01-03"}, {3, 4, 5}),
        ({"order_date__lt": "2025-01-03T00:00:00.000001Z"}, {0, 1, 2}),
        ({"order_date__lte": "2025-01-02T13:00:00+01:00"}, {0, 1}),
        ({"order_date": "2025-01-02T12:00:00Z"}, {1}),
        ({"order_date_after": "2025-01-03"}, {3, 4, 5}),
        ({"order_date_before": "2025-01-02T12:00:00"}, {0}),
    ],
    "nested objects by dot path": [
        ({"shipping_address.city": "Paris"}, {0, 3, 5}),
        ({"shipping_address.city__ne": "Paris"}, {1, 2, 4}),
        ({"shipping_address.city": "null"}, {2}),
        ({"shipping_address.city__contains": "AR"}, {0, 3, 5}),
        ({"shipping_address.country__in": "DE,FR"}, {0, 1, 3, 4, 5}),
        ({"shipping_address.postal_code__gt": "69999"}, {0, 3, 5}),
    ],
    "metadata values are JSON scalars, else text": [
        ({"metadata.source": "web"}, {0, 2}),
        ({"metadata.source__ne": "web"}, {1, 3, 4, 5}),
        ({"metadata.source__contains": "WE"}, {0, 2, 5}),
        ({"metadata.source__in": "web,app"}, {0, 1, 2}),
        ({"metadata.source": "null"}, {3, 4}),
        ({"metadata.gift": "true"}, {0}),
        ({"metadata.gift": "false"}, {1}),
        ({"metadata.gift": '"true"'}, {2}),
        ({"metadata.gift__ne": "true"}, {1, 2, 3, 4, 5}),
        ({"metadata.priority": "3"}, {0}),
        ({"metadata.priority": '"3"'}, {2}),
        ({"metadata.priority__gte": "1"}, {0, 1}),
        ({"metadata.priority__gt": "1"}, {0}),
        ({"metadata.priority__lt": "3"}, {1}),
        ({"metadata.priority__in": "1,3"}, {0, 1}),
        ({"metadata.note": "null"}, ALL),
        ({"metadata.note__ne": "null"}, set()),
        ({"metadata": "null"}, {3}),
    ],
}


@pytest.mark.parametrize("kind", list(FILTERS))
async def test_filters(client: httpx.AsyncClient, catalog: Catalog, kind: str) -> None:
    names = catalog.ids()
    wrong: dict[str, set[int]] = {}

    for params, expected in FILTERS[kind]:
        query = {key: value.format(**names) for key, value in params.items()}
        response = await client.get("/orders", params=query)

        assert response.status_code == 200, response.text
        found = catalog.positions(response.json()["data"])
        assert found == sorted(found)  # still in the default order
        assert response.json()["meta"]["total"] == len(found)
        if set(found) != expected:
            wrong[str(params)] = set(found)

    assert wrong == {}


async def test_created_and_updated_ranges_are_strict_with_a_datetime(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    middle = catalog.orders[3]
    newest = max(order["created_at"] for order in catalog.orders)
    # Orders 2 and 0 were touched after every order was created (order 0 last).
    cases = [
        ({"created_after": middle["created_at"]}, {4, 5}),
        ({"created_before": middle["created_at"]}, {0, 1, 2}),
        ({"created_after": catalog.orders[0]["created_at"], "created_before": middle["created_at"]}, {1, 2}),
        ({"updated_after": newest}, {0, 2}),
        ({"updated_after": catalog.orders[2]["updated_at"]}, {0}),
        ({"updated_before": catalog.orders[0]["updated_at"]}, {1, 2, 3, 4, 5}),
        ({"created_at__gte": middle["created_at"]}, {3, 4, 5}),
    ]

    for params, expected in cases:
        response = await client.get("/orders", params=params)
        assert response.status_code == 200, response.text
        assert set(catalog.positions(response.json()["data"])) == expected, params


async def test_created_and_updated_ranges_take_a_date_or_a_datetime(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    now = datetime.now(UTC)
    past, future = now - timedelta(days=2), now + timedelta(days=2)
    for before, after in [(past.date().isoformat(), future.date().isoformat()), (past.isoformat(), future.isoformat())]:
        for parameter in ["created_after", "created_before", "updated_after", "updated_before"]:
            everything, nothing = (before, after) if parameter.endswith("_after") else (after, before)

            matching = await client.get("/orders", params={parameter: everything})
            missing = await client.get("/orders", params={parameter: nothing})

            assert matching.json()["meta"]["total"] == len(ORDERS), (parameter, everything)
            assert missing.json()["meta"]["total"] == 0, (parameter, nothing)


@pytest.fixture
async def people(client: httpx.AsyncClient) -> tuple[dict[str, str], list[Row]]:
    """Four users under a domain of their own, and the filter that scopes a query to them."""
    domain = f"{uuid.uuid4().hex[:10]}.example.com"
    bodies: list[dict[str, Any]] = [
        {"email": f"Alice@{domain}", "full_name": "Alice", "age": 30, "metadata": {"vip": True}},
        {"email": f"bob@{domain}", "full_name": "bob", "role": "admin"},
        {"email": f"CAROL@{domain}", "full_name": "Carol", "age": 25},
        {"email": f"dave@{domain}", "full_name": "Dave", "age": 30, "metadata": {"vip": False}},
    ]
    users = [await create_user(client, **body) for body in bodies]
    await create_user(client, email=f"alice@other-{domain}", age=30)
    return {"email__contains": f"@{domain}"}, users


async def test_users_sort_by_every_sortable_field_with_nulls_last(
    client: httpx.AsyncClient, people: tuple[dict[str, str], list[Row]]
) -> None:
    scope, users = people
    examples = {"age": [2, 0, 3, 1], "age:desc": [0, 3, 2, 1], "email:desc": [3, 2, 1, 0], "full_name": [0, 2, 3, 1]}

    for spec in [spec for field in USER_FIELDS for spec in directions(field)] + [
        "role:desc,age:desc",
        "age,email:desc",
    ]:
        response = await client.get("/users", params={**scope, "sort": spec})

        assert response.status_code == 200
        assert response.json()["data"] == expected_order(users, spec), spec
        if spec in examples:
            assert response.json()["data"] == [users[n] for n in examples[spec]], spec


USER_FILTERS: list[tuple[dict[str, str], set[int]]] = [
    ({"email": "ALICE@{domain}"}, {0}),
    ({"email": "carol@{domain}"}, {2}),
    ({"email__eq": "Bob@{DOMAIN}"}, {1}),
    ({"email__ne": "alice@{domain}"}, {1, 2, 3}),
    ({"email__in": "alice@{domain},CAROL@{DOMAIN}"}, {0, 2}),
    ({"email__contains": "AROL"}, {2}),
    ({"age": "30"}, {0, 3}),
    ({"age": "null"}, {1}),
    ({"age__ne": "30"}, {1, 2}),
    ({"age__ne": "null"}, {0, 2, 3}),
    ({"age__gt": "1"}, {0, 2, 3}),
    ({"age__lte": "25"}, {2}),
    ({"age__in": "25,null"}, {2}),
    ({"role": "admin"}, {1}),
    ({"role__ne": "admin"}, {0, 2, 3}),
    ({"full_name__contains": "a"}, {0, 2, 3}),
    ({"metadata.vip": "true"}, {0}),
    ({"metadata.vip": "null"}, {1, 2}),
    ({"metadata.vip__ne": "true"}, {1, 2, 3}),
]


async def test_user_filters(client: httpx.AsyncClient, people: tuple[dict[str, str], list[Row]]) -> None:
    scope, users = people
    domain = scope["email__contains"].removeprefix("@")
    ids = [user["id"] for user in users]
    wrong: dict[str, set[int]] = {}

    for params, expected in USER_FILTERS:
        query = {key: value.format(domain=domain, DOMAIN=domain.upper()) for key, value in params.items()}
        response = await client.get("/users", params={**scope, **query})

        assert response.status_code == 200, response.text
        found = {ids.index(user["id"]) for user in response.json()["data"]}
        if found != expected:
            wrong[str(params)] = found

    assert wrong == {}


async def test_email_equality_ignores_case_without_other_filters(
    client: httpx.AsyncClient, people: tuple[dict[str, str], list[Row]]
) -> None:
    _, users = people

    response = await client.get("/users", params={"email": users[0]["email"].upper()})

    assert [user["id"] for user in response.json()["data"]] == [users[0]["id"]]


BAD_FILTERS: dict[str, list[tuple[str, str, str]]] = {
    "unknown field": [
        ("/orders", "nope", "1"),
        ("/orders", "user", "x"),
        ("/orders", "user.email", "x"),
        ("/orders", "shipping_address.zip", "x"),
        ("/orders", "shipping_address.city.name", "x"),
        ("/orders", "quantity.amount", "1"),
        ("/orders", "shipping_address.", "x"),
        ("/users", "password_hash", "x"),
        ("/users", "password", "x"),
        ("/users", "cascade", "true"),
    ],
    "unknown operator": [
        ("/orders", "quantity__between", "1"),
        ("/orders", "quantity__", "1"),
        ("/orders", "status__startswith", "p"),
        ("/users", "email__like", "a"),
    ],
    "unparseable value": [
        ("/orders", "quantity", "two"),
        ("/orders", "quantity__in", "1,x"),
        ("/orders", "quantity__gt", ""),
        ("/orders", "total_price__gt", "cheap"),
        ("/orders", "total_price", "Infinity"),
        ("/orders", "status", "lost"),
        ("/orders", "status__in", "paid,lost"),
        ("/orders", "id", "not-a-uuid"),
        ("/orders", "user_id__in", "{user},nope"),
        ("/orders", "order_date__gt", "yesterday"),
        ("/orders", "created_after", "2025-13-01"),
        ("/orders", "created_before", "soon"),
        ("/orders", "updated_after", "2025-01-01T25:00"),
        ("/orders", "updated_before", ""),
        ("/users", "age", "old"),
        ("/users", "age__gt", "null"),
    ],
    "contains on a field that is not text": [
        ("/orders", "quantity__contains", "1"),
        ("/orders", "total_price__contains", "9"),
        ("/orders", "order_date__contains", "2025"),
        ("/orders", "id__contains", "a"),
        ("/users", "age__contains", "3"),
        ("/users", "created_at__contains", "2025"),
    ],
}


@pytest.mark.parametrize("kind", list(BAD_FILTERS))
async def test_bad_filters_are_400_invalid_query_naming_the_parameter(client: httpx.AsyncClient, kind: str) -> None:
    user = await create_user(client)

    for path, parameter, value in BAD_FILTERS[kind]:
        response = await client.get(path, params={parameter: value.format(user=user["id"])})

        error = assert_error(response, 400, "INVALID_QUERY")
        assert error_fields(response) == [f"query.{parameter}"]
        assert parameter in error["message"]


async def test_a_bad_filter_is_reported_even_next_to_good_ones(client: httpx.AsyncClient) -> None:
    response = await client.get("/orders", params={"status": "paid", "colour": "red", "sort": "quantity"})

    assert_error(response, 400, "INVALID_QUERY")
    assert error_fields(response) == ["query.colour"]


async def test_filters_and_paging_agree_on_the_total(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    for n in range(12):
        await create_order(client, user["id"], status="paid" if n % 3 == 0 else "pending")

    paid = await all_pages(client, "/orders", {"status": "paid"})
    page = await client.get("/orders", params={"status": "pending", "per_page": 5, "page": 2})

    assert len(paid) == 4
    assert page.json()["meta"] == {"page": 2, "per_page": 5, "total": 8, "total_pages": 2}
    assert len(page.json()["data"]) == 3


async def test_link_header_keeps_a_query_too_long_to_remember(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    for _ in range(3):
        await create_order(client, user["id"])
    query = [*[("quantity__gte", str(-n)) for n in range(20)], ("per_page", "1")]

    for page in (1, 2):  # each page of a long query is built afresh, none from another's
        response = await client.get("/orders", params=[*query, ("page", str(page))])

        assert len(response.request.url.query) > 256
        assert response.status_code == 200, response.text
        rels = links(response)
        assert int(rels["next"].params["page"]) == page + 1
        for url in rels.values():
            assert sorted(url.params.multi_items()) == sorted([*query, ("page", url.params["page"])])


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/v1/orders", b""),
        ("/api/v1/orders", b"status=paid&sort=total_price:desc&per_page=5&page=2"),
        ("/api/v1/users/caf\u00e9/orders", b"metadata.note=d%C3%A9j%C3%A0&page=3"),
        ("/api/v1/orders", b"product_name=a#b&page=2"),
        ("/api/v1/or?ders", b"status=paid"),
        ("/api/v1/or#ders", b""),
        ("/api/v1/back\\slash", b"x=1"),
        ("//api/v1/orders", b"status=paid"),
        ("/api/v1/orders", b"a=1\tb&page=2"),
    ],
)
def test_link_header_reads_the_path_and_query_as_the_request_url_has_them(path: str, query: bytes) -> None:
    """The path and query are read from the scope directly only where ``request.url`` has them the same."""
    app = SimpleNamespace(state=SimpleNamespace(settings=SimpleNamespace(public_url=None)))
    scope = {
        "type": "http",
        "scheme": "http",
        "server": ("testserver", 80),
        "path": path,
        "query_string": query,
        "headers": [(b"host", b"testserver")],
        "app": app,
    }
    request = Request(scope)
    url = request.url
    expected_query = urlencode([(k, v) for k, v in parse_qsl(url.query, keep_blank_values=True) if k != "page"])
    base = f"{url.path}?{expected_query}{'&' if expected_query else ''}page="
    assert link_header(request, 2, 3) == f'<{base}1>; rel="first", <{base}1>; rel="prev", ' + (
        f'<{base}3>; rel="next", <{base}3>; rel="last"'
    )
