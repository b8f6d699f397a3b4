"""``/auth``: log in, refresh (rotating), log out, and who am I."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Body, Request, Response
from pydantic import ValidationError

from server.deps import SettingsDep, StoreDep
from server.errors import APIError
from server.models.common import Envelope, utc_now
from server.models.session import LoginForm, LoginRequest, Me, RefreshRequest, TokenPair
from server.paths import API_PREFIX
from server.responses import plain
from server.security.access import AuthenticateFirstRoute
from server.security.auth import CurrentUser, TokensDep, unauthorized
from server.security.passwords import LoginCheck, hash_password, verify_password
from server.security.tokens import InvalidToken, RefreshToken
from server.tables import SESSION_QUERIES, SESSIONS, USER_QUERIES, USERS
from server.validation import details
from store import MissingReference, NotFound, Predicate

router = APIRouter(prefix=f"{API_PREFIX}/auth", tags=["auth"], route_class=AuthenticateFirstRoute)

FORM = "application/x-www-form-urlencoded"
_LOGIN_EXAMPLES = {"json": {"value": {"email": "admin@memdb.dev", "password": "memdb-admin-2026"}}}


def _bad_credentials() -> APIError:
    return unauthorized("wrong email or password", "INVALID_CREDENTIALS")


async def _login_fields(request: Request) -> LoginRequest:
    """JSON ``{email, password}`` or the OAuth2 password form (``username``, ``password``)."""
    raw = await request.body()
    try:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() == FORM:
            form = {key: values[0] for key, values in parse_qs(raw.decode(), keep_blank_values=True).items()}
            fields = {"email": form.get("username", form.get("email")), "password": form.get("password")}
            # A missing field is a validation error, as in JSON, not an attempt with an empty value.
            return LoginRequest.model_validate({name: value for name, value in fields.items() if value is not None})
        return LoginRequest.model_validate(orjson.loads(raw))
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        raise APIError(400, "BAD_REQUEST", "the request body is not valid JSON or form data") from None
    except ValidationError as error:
        raise APIError(422, "VALIDATION_ERROR", "request validation failed", details(error.errors(), "body")) from None


async def _start_session(
    store: StoreDep, settings: SettingsDep, tokens: TokensDep, user: dict[str, Any], checked_hash: str, password: str
) -> Response:
    """Open a session for ``user``, whose ``password`` was just checked against ``checked_hash``."""
    session_id = uuid.uuid4()
    refresh = tokens.refresh_token(session_id, 0)
    expires = utc_now() + timedelta(days=settings.refresh_token_days)
    values = {"id": session_id, "user_id": user["id"], "refresh_generation": 0, "refresh_expires_at": expires}
    try:
        await store.insert(SESSIONS.name, values)
        # bcrypt ran in a thread: the password may have changed (revoking every session) or the user gone
        # since. Looking after the insert means either that revocation or this check catches the session.
        current = await store.get(USERS.name, uuid.UUID(user["id"]), reveal=True)
    except (MissingReference, NotFound):
        raise _bad_credentials() from None
    stored_now = current.data["password_hash"]
    # A concurrent login may have re-hashed the same password at the configured cost: that is no change.
    if stored_now != checked_hash and not await verify_password(password, stored_now):
        await _revoke_quietly(store, session_id)
        raise _bad_credentials()
    return _token_response(tokens, current.data, refresh)


def _token_response(tokens: TokensDep, user: dict[str, Any], refresh: RefreshToken) -> Response:
    access = tokens.issue(uuid.UUID(user["id"]), user["role"], refresh.session_id)
    pair = TokenPair(access_token=access, refresh_token=str(refresh), expires_in=tokens.access_seconds)
    return plain(pair.model_dump())


@router.post(
    "/token",
    response_model=Envelope[TokenPair],
    responses={401: {"description": "Wrong email or password."}},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": LoginRequest.model_json_schema(), "examples": _LOGIN_EXAMPLES},
                FORM: {"schema": LoginForm.model_json_schema()},
            },
            "required": True,
        }
    },
)
async def login(request: Request, store: StoreDep, settings: SettingsDep, tokens: TokensDep) -> Response:
    """Exchange email and password for an access token and a refresh token."""
    fields = await _login_fields(request)
    found = await store.find(USERS.name, USER_QUERIES.parse([("email", fields.email)], None, per_page=1), reveal=True)
    user = found.items[0] if found.items else None
    check: LoginCheck = request.app.state.login_check
    stored_hash = user["password_hash"] if user else None
    # Unknown emails and locked accounts cost a bcrypt check at the configured cost too: failures look alike.
    if not await check.matches(fields.password, stored_hash) or user is None or stored_hash is None:
        raise _bad_credentials()
    expired = [("user_id", user["id"]), ("refresh_expires_at__lt", utc_now().isoformat())]
    await store.purge(SESSIONS.name, SESSION_QUERIES.parse(expired, None).predicates)
    response = await _start_session(store, settings, tokens, user, stored_hash, fields.password)
    if check.outdated(stored_hash):
        await _rehash(store, user["id"], fields.password, stored_hash, check.rounds)
    return response


async def _rehash(store: StoreDep, user_id: str, password: str, stored_hash: str, rounds: int) -> None:
    """Store ``password`` hashed at the configured cost, unless the password changed meanwhile."""
    new_hash = await hash_password(password, rounds)
    unchanged = (Predicate(("password_hash",), "eq", stored_hash),)
    with contextlib.suppress(NotFound):  # deleted, or given another password while bcrypt ran
        await store.update(USERS.name, uuid.UUID(user_id), {"password_hash": new_hash}, guard=unchanged)


@router.post(
    "/refresh", response_model=Envelope[TokenPair], responses={401: {"description": "Not a current refresh token."}}
)
async def refresh(
    body: Annotated[RefreshRequest, Body()], store: StoreDep, settings: SettingsDep, tokens: TokensDep
) -> Response:
    """Trade a refresh token for a new pair; the old one stops working, and reusing it revokes the session."""
    try:
        presented = tokens.parse_refresh_token(body.refresh_token)
    except InvalidToken:
        raise unauthorized("invalid refresh token") from None
    rotated = tokens.refresh_token(presented.session_id, presented.generation + 1)
    expires = utc_now() + timedelta(days=settings.refresh_token_days)
    try:
        session = await store.update(
            SESSIONS.name,
            presented.session_id,
            {"refresh_generation": rotated.generation, "refresh_expires_at": expires},
            embed=("user",),
            guard=_current(presented),
        )
    except NotFound:
        raise await _refusal(store, presented) from None
    return _token_response(tokens, session.data["user"], rotated)


def _current(presented: RefreshToken) -> tuple[Predicate, ...]:
    """The session's refresh token is still this one, and it has not expired."""
    current = [("refresh_generation", str(presented.generation)), ("refresh_expires_at__gt", utc_now().isoformat())]
    return SESSION_QUERIES.parse(current, None).predicates


async def _refusal(store: StoreDep, presented: RefreshToken) -> APIError:
    """Why a genuine refresh token was not current; a spent one revokes its session."""
    try:
        session = await store.get(SESSIONS.name, presented.session_id)
    except NotFound:
        return unauthorized("invalid refresh token")
    if session.data["refresh_generation"] > presented.generation:
        # Traded in already, so it has been copied: whoever holds the session now may not be its owner.
        await _revoke_quietly(store, presented.session_id)
        return unauthorized("refresh token already used; the session is revoked")
    return unauthorized("refresh token expired")


async def _revoke_quietly(store: StoreDep, session_id: uuid.UUID) -> None:
    with contextlib.suppress(NotFound):
        await store.delete(SESSIONS.name, session_id)


@router.post("/logout", status_code=204, response_class=Response)
async def logout(caller: CurrentUser, store: StoreDep) -> Response:
    """End this session: its access and refresh tokens stop working."""
    await _revoke_quietly(store, caller.session_id)
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@router.get("/me", response_model=Envelope[Me])
async def me(caller: CurrentUser) -> Response:
    """The caller's own user record."""
    return plain(caller.data)
