"""Helpers for authentication tests: bearer headers, token pairs, hand-made tokens and the 401 check."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import orjson
from joserfc import jwt
from joserfc.jwk import OctKey

from tests.utils.api import assert_error


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


async def token_pair(anon: httpx.AsyncClient, email: str, password: str) -> dict[str, Any]:
    """Log in with JSON and return the ``data`` of the answer (``access_token``, ``refresh_token``, ...)."""
    response = await anon.post("/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def refreshed(anon: httpx.AsyncClient, refresh_token: str) -> dict[str, Any]:
    """Trade ``refresh_token`` for a new pair, which must succeed; return the new pair."""
    response = await anon.post("/auth/refresh", json={"refresh_token": refresh_token})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _b64(part: bytes) -> str:
    return base64.urlsafe_b64encode(part).rstrip(b"=").decode()


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def header_of(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWT, unverified."""
    header: dict[str, Any] = orjson.loads(_unb64(token.split(".")[0]))
    return header


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a compact JWT, unverified."""
    claims: dict[str, Any] = orjson.loads(_unb64(token.split(".")[1]))
    return claims


def signed_token(key: bytes, claims: dict[str, Any], algorithm: str = "HS256") -> str:
    """``claims`` signed with ``key`` (any HMAC algorithm joserfc knows)."""
    return jwt.encode({"alg": algorithm, "typ": "JWT"}, claims, OctKey.import_key(key), algorithms=[algorithm])


def unsigned_token(claims: dict[str, Any]) -> str:
    """``claims`` as an ``alg: none`` JWT: no signature at all."""
    return f"{_b64(orjson.dumps({'alg': 'none', 'typ': 'JWT'}))}.{_b64(orjson.dumps(claims))}."


def expired(claims: dict[str, Any], seconds_ago: int = 60) -> dict[str, Any]:
    """``claims`` issued and expired in the past."""
    now = int(time.time())
    return {**claims, "iat": now - 2 * seconds_ago, "exp": now - seconds_ago}


def assert_unauthorized(response: httpx.Response, code: str = "UNAUTHORIZED") -> dict[str, Any]:
    """A ``401`` error envelope with ``code`` and the ``WWW-Authenticate: Bearer`` challenge."""
    error = assert_error(response, 401, code)
    assert response.headers["www-authenticate"] == "Bearer"
    return error
