"""The stack's ceiling: a bare FastAPI app over plain dicts, serving memdb's hot routes.

    MEMDB_SEED_FILE=data/sample.json python bench/ceiling.py 8001
    python bench/ceiling.py 8001 data/sample.json

Same routes and response envelopes as memdb for one user, one order (user
embedded), a user's orders (a precomputed user → orders dict), ``orders?status=
paid`` (a scan, then the first page), ``orders?sort=total_price:desc`` (a full
sort, then the first page), creating and updating an order. Each route is served
twice: under ``/api/v1`` with Pydantic response models (FastAPI re-validates
every item of a list), and under ``/plain/api/v1`` as a hand-written fast
service would, returning the dicts encoded with orjson (as memdb encodes;
request bodies and parameters are still validated). A ceiling is the faster of the two. No
middleware, no store actor, no auth: an ``Authorization`` header is accepted and
ignored. Served by uvicorn with uvloop and httptools, on loopback.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID, uuid4

import orjson
import uvicorn
from fastapi import APIRouter, FastAPI, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict

STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled")
PLAIN_PREFIX = "/plain"
"""Where the variant without response models is served (``/plain/api/v1/...``)."""
ORDER_FIELDS = ("user_id", "product_name", "quantity", "total_price", "status", "shipping_address", "metadata")


class Address(BaseModel):
    line1: str
    city: str
    postal_code: str
    country: str


class UserPublic(BaseModel):
    id: UUID
    email: str
    full_name: str
    age: int | None
    role: Literal["user", "admin"]
    metadata: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class OrderPublic(BaseModel):
    id: UUID
    user_id: UUID
    product_name: str
    quantity: int
    total_price: str
    status: Literal["pending", "paid", "shipped", "delivered", "cancelled"]
    shipping_address: Address | None
    metadata: dict[str, Any] | None
    order_date: datetime
    created_at: datetime
    updated_at: datetime
    user: UserPublic


class Meta(BaseModel):
    page: int
    per_page: int
    total: int
    total_pages: int


class UserEnvelope(BaseModel):
    status: Literal["success"] = "success"
    data: UserPublic


class OrderEnvelope(BaseModel):
    status: Literal["success"] = "success"
    data: OrderPublic


class OrderPage(BaseModel):
    status: Literal["success"] = "success"
    data: list[OrderPublic]
    meta: Meta


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UUID
    product_name: str
    quantity: int
    total_price: Decimal
    status: Literal["pending", "paid", "shipped", "delivered", "cancelled"] = "pending"
    shipping_address: Address | None = None
    metadata: dict[str, Any] | None = None
    order_date: datetime | None = None


class OrderUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_name: str | None = None
    quantity: int | None = None
    total_price: Decimal | None = None
    status: Literal["pending", "paid", "shipped", "delivered", "cancelled"] | None = None
    shipping_address: Address | None = None
    metadata: dict[str, Any] | None = None


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cents(price: str | Decimal) -> int:
    return int(Decimal(price) * 100)


Data = tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, list[str]], dict[str, int]]
"""Users and orders by id, each user's order ids, and each order's price in cents (its sort key)."""


def load(path: str) -> Data:
    with open(path, "rb") as seed:
        raw = json.load(seed)
    users = {user["id"]: {k: v for k, v in user.items() if k != "password_hash"} for user in raw["users"]}
    orders = {order["id"]: order for order in raw["orders"]}
    # The sort key, kept apart like an index would be (never serialised).
    prices = {order_id: cents(order["total_price"]) for order_id, order in orders.items()}
    by_user: dict[str, list[str]] = {user_id: [] for user_id in users}
    for order in orders.values():
        by_user[order["user_id"]].append(order["id"])
    return users, orders, by_user, prices


def create_app(path: str) -> FastAPI:
    data = load(path)
    app = FastAPI(title="ceiling", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/api/v1/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(routes(data, validated=True), prefix="/api/v1")
    app.include_router(routes(data, validated=False), prefix=PLAIN_PREFIX + "/api/v1")
    return app


def routes(data: Data, validated: bool) -> APIRouter:
    """The hot routes over ``data``; with ``validated`` their answers go through response models."""
    users, orders, by_user, prices = data
    router = APIRouter()

    def model(validating: type[BaseModel]) -> type[BaseModel] | None:
        return validating if validated else None

    def answer(content: dict[str, Any], status_code: int = 200) -> Any:
        if validated:
            return content
        return Response(orjson.dumps({"status": "success", **content}), status_code, media_type="application/json")

    def embed(order: dict[str, Any]) -> dict[str, Any]:
        return {**order, "user": users[order["user_id"]]}

    def page(items: list[dict[str, Any]], number: int, per_page: int) -> Any:
        start = (number - 1) * per_page
        chosen = [embed(order) for order in items[start : start + per_page]]
        meta = {"page": number, "per_page": per_page, "total": len(items), "total_pages": -(-len(items) // per_page)}
        return answer({"data": chosen, "meta": meta})

    @router.get("/users/{user_id}", response_model=model(UserEnvelope))
    async def get_user(user_id: UUID) -> Any:
        user = users.get(str(user_id))
        if user is None:
            raise HTTPException(404)
        return answer({"data": user})

    @router.get("/users/{user_id}/orders", response_model=model(OrderPage))
    async def user_orders(
        user_id: UUID, number: int = Query(1, alias="page", ge=1), per_page: int = Query(20, ge=1, le=100)
    ) -> Any:
        ids = by_user.get(str(user_id))
        if ids is None:
            raise HTTPException(404)
        return page([orders[i] for i in ids], number, per_page)

    @router.get("/orders", response_model=model(OrderPage))
    async def list_orders(
        status: str | None = None,
        sort: str | None = None,
        number: int = Query(1, alias="page", ge=1),
        per_page: int = Query(20, ge=1, le=100),
    ) -> Any:
        items = list(orders.values())
        if status is not None:
            items = [order for order in items if order["status"] == status]
        if sort is not None:
            field, _, direction = sort.partition(":")
            descending = direction == "desc"
            if field == "total_price":
                items.sort(key=lambda order: prices[order["id"]], reverse=descending)
            else:
                items.sort(key=lambda order: order[field], reverse=descending)
        return page(items, number, per_page)

    @router.get("/orders/{order_id}", response_model=model(OrderEnvelope))
    async def get_order(order_id: UUID) -> Any:
        order = orders.get(str(order_id))
        if order is None:
            raise HTTPException(404)
        return answer({"data": embed(order)})

    @router.post("/orders", status_code=201, response_model=model(OrderEnvelope))
    async def create_order(body: OrderCreate, response: Response) -> Any:
        if str(body.user_id) not in users:
            raise HTTPException(422)
        stamp = now()
        values = body.model_dump(mode="json")
        order = {**values, "id": str(uuid4()), "order_date": values["order_date"] or stamp}
        order.update(total_price=f"{body.total_price:.2f}", created_at=stamp, updated_at=stamp)
        orders[order["id"]] = order
        prices[order["id"]] = cents(body.total_price)
        by_user[order["user_id"]].append(order["id"])
        location = f"/api/v1/orders/{order['id']}"
        if not validated:
            created = answer({"data": embed(order)}, 201)
            created.headers["Location"] = location
            return created
        response.headers["Location"] = location
        return {"data": embed(order)}

    @router.patch("/orders/{order_id}", response_model=model(OrderEnvelope))
    async def update_order(order_id: UUID, body: OrderUpdate) -> Any:
        order = orders.get(str(order_id))
        if order is None:
            raise HTTPException(404)
        changes = body.model_dump(mode="json", exclude_unset=True)
        if body.total_price is not None:
            changes.update(total_price=f"{body.total_price:.2f}")
            prices[order["id"]] = cents(body.total_price)
        order.update(changes, updated_at=now())
        return answer({"data": embed(order)})

    return router


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8001
    path = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("MEMDB_SEED_FILE", "data/sample.json")
    uvicorn.run(
        create_app(path),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
