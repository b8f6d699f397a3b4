"""Fixtures for every test: settings with cheap bcrypt, an app with its store, HTTP clients.

``client`` is signed in as the start-up admin (most tests exercise data, not
roles); ``anon`` sends no token; ``login`` signs in anyone and returns a client
carrying their token.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
import redis
from fastapi import FastAPI

from server.app import create_app
from server.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample.json"
ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "admin-password-1"

Login = Callable[[str, str], Awaitable[httpx.AsyncClient]]


STORE_URL = os.environ.get("MEMDB_TEST_STORE_URL")
"""Set (``redis://…``, a database the tests may empty) to run the API tests on the Redis backend instead."""


@pytest.fixture
def settings() -> Settings:
    if STORE_URL is not None:
        redis.Redis.from_url(STORE_URL).flushdb()
    return Settings(
        store_url=STORE_URL,
        jwt_secret=None if STORE_URL is None else "a-test-signing-key-for-the-redis-backend-0123",
        bcrypt_rounds=4,
        seed_file=None,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        rate_limit_per_minute=0,
        memory_limit_mb=64 * 1024,  # the test process holds many apps; limits are tested explicitly
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def _http(app: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(transport=transport, base_url="http://testserver/api/v1", headers=headers)


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with _http(app) as http:
        yield http


@pytest.fixture
async def login(app: FastAPI, anon: httpx.AsyncClient) -> AsyncIterator[Login]:
    async with AsyncExitStack() as stack:

        async def sign_in(email: str, password: str) -> httpx.AsyncClient:
            response = await anon.post("/auth/token", json={"email": email, "password": password})
            assert response.status_code == 200, response.text
            return await stack.enter_async_context(_http(app, response.json()["data"]["access_token"]))

        yield sign_in


@pytest.fixture
async def client(login: Login) -> httpx.AsyncClient:
    return await login(ADMIN_EMAIL, ADMIN_PASSWORD)
