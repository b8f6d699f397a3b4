"""A request's bearer token, checked once and kept in its scope for whoever asks next.

The rate limit at the edge keys an authenticated client by its user id, and
authentication (:mod:`server.security.auth`) needs the token's claims: both
call :func:`checked_bearer`, which reads the ``Authorization`` header and
verifies the token (:meth:`TokenService.verify`) the first time it is asked
within a request and hands later callers the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.types import Scope

from server.security.tokens import AccessClaims, InvalidToken, TokenService

BEARER_SCOPE_KEY = "memdb.bearer"
_UNREAD: Any = object()


@dataclass(frozen=True, slots=True)
class Bearer:
    token: str
    claims: AccessClaims | None
    """``None``: not a correctly signed, unexpired access token of ours."""


def bearer_token(scope: Scope) -> str | None:
    """The token of the request's first ``Authorization: Bearer …`` header, if it has one."""
    value = next((value for name, value in scope["headers"] if name == b"authorization"), None)
    if not value:
        return None
    scheme, _, token = value.decode("latin-1").partition(" ")
    token = token.strip()
    return token if token and scheme.lower() == "bearer" else None


def checked_bearer(scope: Scope, tokens: TokenService) -> Bearer | None:
    """The request's bearer token and its claims (``None``: no bearer token was sent), verified once."""
    bearer: Bearer | None = scope.get(BEARER_SCOPE_KEY, _UNREAD)
    if bearer is _UNREAD:
        token = bearer_token(scope)
        if token is None:
            bearer = None
        else:
            try:
                bearer = Bearer(token, tokens.verify(token))
            except InvalidToken:
                bearer = Bearer(token, None)
        scope[BEARER_SCOPE_KEY] = bearer
    return bearer
