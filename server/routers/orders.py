"""``/orders``: the order collection, one order, and an order's user.

Non-admins see and touch only their own orders: every command carries a guard
on ``user_id``, so ownership is checked in the same store command that reads
or writes, and someone else's order is indistinguishable from a missing one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Request, Response

from server.deps import IfMatch, JsonBody, StoreDep, list_query
from server.direct_route import DirectRoute
from server.models.common import CollectionEnvelope, Envelope
from server.models.order import OrderCreate, OrderPublic, OrderUpdate
from server.models.user import UserPublic
from server.paths import API_PREFIX
from server.responses import collection, member_path, single
from server.security.auth import CurrentUser, forbidden, owned_by
from server.tables import ORDERS
from store import Query as StoreQuery

TABLE = ORDERS.name
EMBED = ("user",)

router = APIRouter(prefix=f"{API_PREFIX}/orders", tags=["orders"], route_class=DirectRoute)
OrderQuery = Annotated[StoreQuery, Depends(list_query(ORDERS))]


@router.post("", status_code=201, response_model=Envelope[OrderPublic], dependencies=[JsonBody])
async def create_order(body: OrderCreate, caller: CurrentUser, store: StoreDep, request: Request) -> Response:
    """Create an order (for yourself, or for anyone as an admin)."""
    if not caller.is_admin and body.user_id != caller.id:
        raise forbidden("you may only create orders for yourself")
    values: dict[str, Any] = body.model_dump()
    values["id"] = uuid4()
    snapshot = await store.insert(TABLE, values, EMBED)
    location = member_path(request, snapshot.data["id"])
    return single(request, snapshot, 201, {"Location": location})


@router.get("", response_model=CollectionEnvelope[list[OrderPublic]])
async def list_orders(caller: CurrentUser, query: OrderQuery, store: StoreDep, request: Request) -> Response:
    """List orders (your own; all for admins), with paging, sorting and filters."""
    scoped = replace(query, predicates=(*owned_by(caller), *query.predicates))
    return collection(request, await store.find(TABLE, scoped, EMBED, presented=True))


@router.get("/{order_id}", response_model=Envelope[OrderPublic])
async def get_order(order_id: UUID, caller: CurrentUser, store: StoreDep, request: Request) -> Response:
    """Fetch one order, its user embedded."""
    return single(request, await store.get(TABLE, order_id, EMBED, guard=owned_by(caller)))


@router.patch("/{order_id}", response_model=Envelope[OrderPublic], dependencies=[JsonBody])
async def update_order(
    order_id: UUID, body: OrderUpdate, caller: CurrentUser, store: StoreDep, tags: IfMatch, request: Request
) -> Response:
    """Change some of an order's fields; only admins may move it to another user."""
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    if "user_id" in changes and changes["user_id"] != caller.id and not caller.is_admin:
        await store.get(TABLE, order_id, guard=owned_by(caller))  # someone else's order is still a 404
        raise forbidden("only an admin may change an order's user")
    snapshot = await store.update(TABLE, order_id, changes, tags, EMBED, guard=owned_by(caller))
    return single(request, snapshot)


@router.delete("/{order_id}", status_code=204, response_class=Response)
async def delete_order(order_id: UUID, caller: CurrentUser, store: StoreDep, tags: IfMatch) -> Response:
    """Delete an order."""
    await store.delete(TABLE, order_id, if_match=tags, embed=EMBED, guard=owned_by(caller))
    return Response(status_code=204)


@router.get("/{order_id}/user", response_model=Envelope[UserPublic])
async def get_order_user(order_id: UUID, caller: CurrentUser, store: StoreDep, request: Request) -> Response:
    """Fetch the user who placed an order."""
    return single(request, await store.parent(TABLE, order_id, "user_id", guard=owned_by(caller)))
