"""In-process apps built from settings a test chooses, and clients that say where they connect from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from server.app import create_app
from server.settings import Settings

BASE_URL = "http://testserver/api/v1"


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[FastAPI]:
    """An app for ``settings`` with its lifespan running (store started, admin created)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def asgi_client(app: FastAPI, token: str | None = None, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """A client of ``app`` connecting from ``address``, with ``token`` as its bearer token if given."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 50000))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers)


async def sign_in(app: FastAPI, email: str, password: str, address: str = "127.0.0.1") -> str:
    """An access token for ``email``, logging in from ``address``."""
    async with asgi_client(app, address=address) as http:
        response = await http.post("/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["data"]["access_token"]
    return token
