"""``/orders``: the order collection, one order, and an order's user."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Request, Response

from server.deps import IfMatch, StoreDep, list_query
from server.models.common import CollectionEnvelope, Envelope
from server.models.order import OrderCreate, OrderPublic, OrderUpdate
from server.models.user import UserPublic
from server.responses import collection, single
from server.tables import ORDERS
from store import Query as StoreQuery

TABLE = ORDERS.name
EMBED = ("user",)

router = APIRouter(prefix="/orders", tags=["orders"])
OrderQuery = Annotated[StoreQuery, Depends(list_query(ORDERS))]


@router.post("", status_code=201, response_model=Envelope[OrderPublic])
async def create_order(body: OrderCreate, store: StoreDep, request: Request) -> Response:
    """Create an order for an existing user."""
    values: dict[str, Any] = body.model_dump()
    values["id"] = uuid4()
    snapshot = await store.insert(TABLE, values, EMBED)
    location = request.url_for("get_order", order_id=snapshot.data["id"]).path
    return single(request, snapshot, 201, {"Location": location})


@router.get("", response_model=CollectionEnvelope[list[OrderPublic]])
async def list_orders(query: OrderQuery, store: StoreDep, request: Request) -> Response:
    """List orders, with paging, sorting and filters."""
    return collection(request, await store.find(TABLE, query, EMBED))


@router.get("/{order_id}", response_model=Envelope[OrderPublic])
async def get_order(order_id: UUID, store: StoreDep, request: Request) -> Response:
    """Fetch one order, its user embedded."""
    return single(request, await store.get(TABLE, order_id, EMBED))


@router.patch("/{order_id}", response_model=Envelope[OrderPublic])
async def update_order(order_id: UUID, body: OrderUpdate, store: StoreDep, tags: IfMatch, request: Request) -> Response:
    """Change some of an order's fields."""
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    return single(request, await store.update(TABLE, order_id, changes, tags, EMBED))


@router.delete("/{order_id}", status_code=204, response_class=Response)
async def delete_order(order_id: UUID, store: StoreDep, tags: IfMatch) -> Response:
    """Delete an order."""
    await store.delete(TABLE, order_id, if_match=tags, embed=EMBED)
    return Response(status_code=204)


@router.get("/{order_id}/user", response_model=Envelope[UserPublic])
async def get_order_user(order_id: UUID, store: StoreDep, request: Request) -> Response:
    """Fetch the user who placed an order."""
    return single(request, await store.parent(TABLE, order_id, "user_id"))
