"""Who is calling, and may they: one :func:`authenticate`, and the dependencies built on it.

A bearer token resolves to a :class:`Caller`: the token must be correctly
signed and unexpired, and its session must still exist (so logout, password
changes and deleting the user revoke it at once); the caller's role is read
from the store, not trusted from the token. The session and its user are read
once per session and then kept in a :class:`CallerCache` that the store's
writes empty (on Redis, the writes of every node: the cache asks first whether
any changed). :func:`authenticate` does this once per request and keeps the
answer in the request's scope: :mod:`server.security.access` calls it before a
route reads its body, and the route's own dependencies (``MaybeUser``,
``CurrentUser``, ``AdminOnly``) then find it there. Everything that decides
"who may do what" lives here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any, cast
from uuid import UUID

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from fastapi.security.base import SecurityBase

from server.errors import APIError
from server.models.user import Role
from server.paths import LOGIN_PATH
from server.security.bearer import Bearer, checked_bearer
from server.security.callers import CallerCache
from server.security.tokens import TokenService
from server.tables import ORDER_QUERIES, SESSIONS
from store import NotFound, Predicate, StoreClient

CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True, slots=True)
class Caller:
    id: UUID
    role: Role
    session_id: UUID
    data: dict[str, Any]

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin


def unauthorized(message: str = "authentication required", code: str = "UNAUTHORIZED") -> APIError:
    return APIError(401, code, message, headers=CHALLENGE)


def forbidden(message: str) -> APIError:
    return APIError(403, "FORBIDDEN", message)


async def get_tokens(request: Request) -> TokenService:
    tokens: TokenService = request.app.state.tokens
    return tokens


TokensDep = Annotated[TokenService, Depends(get_tokens)]


async def _caller(request: Request, bearer: Bearer) -> Caller:
    # Read from app state, not through sub-dependencies: this runs on every request, and each
    # dependency FastAPI resolves costs tens of microseconds.
    state = request.app.state
    callers: CallerCache[Caller] = state.callers
    claims = bearer.claims
    if claims is None:
        raise unauthorized("invalid or expired token")
    if callers.check is not None:
        await callers.check()
    caller = callers.get(claims.session_id)
    if caller is None:
        epoch = callers.epoch
        store: StoreClient = state.store
        try:
            session = await store.get(SESSIONS.name, claims.session_id, embed=("user",))
        except NotFound:
            raise unauthorized("invalid or expired token") from None
        user = session.data["user"]
        if user is None:
            raise unauthorized("invalid or expired token")
        caller = Caller(UUID(user["id"]), Role(user["role"]), claims.session_id, user)
        callers.remember(claims.session_id, caller, epoch)
    if caller.id != claims.user_id:
        raise unauthorized("invalid or expired token")
    return caller


class Access(IntEnum):
    """What a route asks of its caller, each level including the ones before it."""

    PUBLIC = 0
    """Anyone; a bearer token is not looked at."""
    OPTIONAL = 1
    """Anyone, but a bearer token, if sent, must be valid."""
    TOKEN = 2
    """A valid bearer token."""
    ADMIN = 3
    """A valid bearer token of an admin."""


CALLER_SCOPE_KEY = "memdb.caller"
"""Where :func:`authenticate` keeps a request's caller (``None``: no token was sent)."""
_UNRESOLVED: Any = object()


async def authenticate(request: Request, access: Access) -> Caller | None:
    """The request's caller, checked against ``access``: ``401`` or ``403`` if they fall short.

    Decided from the headers alone, and resolved once per request: the answer is
    kept in the request's scope, so checking again (before the body, then as a
    dependency) costs a dictionary lookup.
    """
    scope = request.scope
    caller: Caller | None = scope.get(CALLER_SCOPE_KEY, _UNRESOLVED)
    if caller is _UNRESOLVED:
        bearer = checked_bearer(scope, request.app.state.tokens)  # already checked by the rate limit, if it is on
        caller = None if bearer is None else await _caller(request, bearer)
        scope[CALLER_SCOPE_KEY] = caller
    if caller is None:
        if access >= Access.TOKEN:
            raise unauthorized()
    elif access is Access.ADMIN and not caller.is_admin:
        raise forbidden("this needs the admin role")
    return caller


class OptionalBearer(SecurityBase):
    """The caller if a bearer token was sent (it must then be valid), else ``None``.

    A security scheme itself (OAuth2 password flow, so the docs can log in), not a
    dependency on one: FastAPI resolves it in one step rather than two.
    """

    access = Access.OPTIONAL

    def __init__(self) -> None:
        scheme = OAuth2PasswordBearer(tokenUrl=LOGIN_PATH, auto_error=False)
        self.model = scheme.model
        self.scheme_name = scheme.scheme_name

    async def __call__(self, request: Request) -> Caller | None:
        return await authenticate(request, self.access)


class RequiredBearer(OptionalBearer):
    """The caller, who must have sent a valid bearer token."""

    access = Access.TOKEN

    async def __call__(self, request: Request) -> Caller:
        return cast(Caller, await authenticate(request, self.access))  # never None: that is a 401


class AdminBearer(RequiredBearer):
    """The caller, who must have sent a valid bearer token and hold the admin role."""

    access = Access.ADMIN


optional_caller = OptionalBearer()
current_caller = RequiredBearer()
admin_caller = AdminBearer()
MaybeUser = Annotated[Caller | None, Depends(optional_caller)]
CurrentUser = Annotated[Caller, Depends(current_caller)]
AdminUser = Annotated[Caller, Depends(admin_caller)]
AdminOnly = Depends(admin_caller)


def owned_by(caller: Caller) -> tuple[Predicate, ...]:
    """A guard for order rows: non-admins may touch only their own; admins anything."""
    return () if caller.is_admin else (ORDER_QUERIES.predicate("user_id", str(caller.id)),)


def require_self_or_admin(caller: Caller, user_id: UUID, table: str) -> None:
    """Another user's record looks exactly like a missing one."""
    if not caller.is_admin and caller.id != user_id:
        raise NotFound(table, user_id)
