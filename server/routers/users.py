"""``/users``: sign-up, the user collection, one user, and a user's orders."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Query, Request, Response

from server.deps import IfMatch, JsonBody, SettingsDep, StoreDep, list_query
from server.direct_route import DirectRoute
from server.models.common import CollectionEnvelope, Envelope
from server.models.order import OrderPublic
from server.models.user import Role, UserCreate, UserPublic, UserUpdate
from server.paths import API_PREFIX
from server.responses import collection, member_path, single
from server.security.auth import AdminOnly, CurrentUser, MaybeUser, forbidden, require_self_or_admin
from server.security.passwords import hash_password
from server.tables import ORDERS, SESSION_QUERIES, SESSIONS, USERS
from store import Query as StoreQuery

TABLE = USERS.name
ORDER_EMBED = ("user",)

router = APIRouter(prefix=f"{API_PREFIX}/users", tags=["users"], route_class=DirectRoute)
UserQuery = Annotated[StoreQuery, Depends(list_query(USERS))]
OrderQuery = Annotated[StoreQuery, Depends(list_query(ORDERS))]


@router.post("", status_code=201, response_model=Envelope[UserPublic], dependencies=[JsonBody])
async def create_user(
    body: UserCreate, caller: MaybeUser, store: StoreDep, settings: SettingsDep, request: Request
) -> Response:
    """Sign up (anyone; role ``user``) or create a user of any role (admins)."""
    if body.role is Role.admin and (caller is None or not caller.is_admin):
        raise forbidden("only an admin may create an admin")
    values: dict[str, Any] = body.model_dump(exclude={"password"})
    values["id"] = uuid4()
    values["password_hash"] = await hash_password(body.password, settings.bcrypt_rounds)
    snapshot = await store.insert(TABLE, values)
    location = member_path(request, snapshot.data["id"])
    return single(request, snapshot, 201, {"Location": location})


@router.get("", response_model=CollectionEnvelope[list[UserPublic]], dependencies=[AdminOnly])
async def list_users(query: UserQuery, store: StoreDep, request: Request) -> Response:
    """List users, with paging, sorting and filters (admins)."""
    return collection(request, await store.find(TABLE, query, presented=True))


@router.get("/{user_id}", response_model=Envelope[UserPublic])
async def get_user(user_id: UUID, caller: CurrentUser, store: StoreDep, request: Request) -> Response:
    """Fetch one user (yourself, or anyone for admins)."""
    require_self_or_admin(caller, user_id, TABLE)
    return single(request, await store.get(TABLE, user_id))


@router.patch("/{user_id}", response_model=Envelope[UserPublic], dependencies=[JsonBody])
async def update_user(
    user_id: UUID,
    body: UserUpdate,
    caller: CurrentUser,
    store: StoreDep,
    settings: SettingsDep,
    tags: IfMatch,
    request: Request,
) -> Response:
    """Change some of a user's fields; a new password ends all of their sessions."""
    require_self_or_admin(caller, user_id, TABLE)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"password"})
    if "role" in changes and changes["role"] != caller.role and not caller.is_admin:
        raise forbidden("only an admin may change a role")
    if body.password is not None:
        changes["password_hash"] = await hash_password(body.password, settings.bcrypt_rounds)
    snapshot = await store.update(TABLE, user_id, changes, tags)
    if body.password is not None:
        await store.purge(SESSIONS.name, (SESSION_QUERIES.predicate("user_id", str(user_id)),))
    return single(request, snapshot)


@router.delete("/{user_id}", status_code=204, response_class=Response)
async def delete_user(
    user_id: UUID,
    caller: CurrentUser,
    store: StoreDep,
    tags: IfMatch,
    cascade: Annotated[bool, Query(description="Also delete the user's orders, atomically.")] = False,
) -> Response:
    """Delete a user (and, with ``cascade=true``, their orders); their sessions end."""
    require_self_or_admin(caller, user_id, TABLE)
    await store.delete(TABLE, user_id, cascade, tags)
    return Response(status_code=204)


@router.get("/{user_id}/orders", response_model=CollectionEnvelope[list[OrderPublic]])
async def list_user_orders(
    user_id: UUID, caller: CurrentUser, query: OrderQuery, store: StoreDep, request: Request
) -> Response:
    """List one user's orders, with paging, sorting and filters."""
    require_self_or_admin(caller, user_id, TABLE)
    page = await store.children(TABLE, user_id, ORDERS.name, "user_id", query, ORDER_EMBED, presented=True)
    return collection(request, page)
