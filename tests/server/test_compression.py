"""Responses over 1 KB are gzip-compressed for clients that accept it; small ones are not.

The others say ``Vary: Accept-Encoding`` exactly where Starlette's ``GZipMiddleware`` would have.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.middleware.edge import Edge
from tests.utils.api import create_order, create_user


async def test_a_large_collection_is_gzipped_when_accepted(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    for _ in range(10):
        await create_order(client, user["id"])

    raw = await client.get("/orders", params={"per_page": 100}, headers={"Accept-Encoding": "gzip"})
    plain = await client.get("/orders", params={"per_page": 100}, headers={"Accept-Encoding": "identity"})

    assert raw.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in raw.headers["vary"].lower()
    assert "content-encoding" not in plain.headers
    assert len(plain.content) > 1024
    assert raw.json() == plain.json()
    assert int(raw.headers["content-length"]) < len(plain.content)


async def test_small_answers_are_not_compressed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"Accept-Encoding": "gzip"})

    assert "content-encoding" not in response.headers


ANSWERS: dict[str, list[Message]] = {
    "small, with a length": [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]},
        {"type": "http.response.body", "body": b"{}"},
    ],
    "large, with a length": [
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"2000"), (b"vary", b"Origin")],
        },
        {"type": "http.response.body", "body": b"x" * 2000},
    ],
    "not modified, no length": [
        {"type": "http.response.start", "status": 304, "headers": [(b"etag", b'"1"')]},
        {"type": "http.response.body", "body": b""},
    ],
    "streamed": [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/csv")]},
        {"type": "http.response.body", "body": b"a,b\n", "more_body": True},
        {"type": "http.response.body", "body": b""},
    ],
    "small, no length": [
        {"type": "http.response.start", "status": 200, "headers": []},
        {"type": "http.response.body", "body": b"short"},
    ],
    "large, no length": [
        {"type": "http.response.start", "status": 200, "headers": []},
        {"type": "http.response.body", "body": b"y" * 5000},
    ],
    "already encoded": [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-encoding", b"br")]},
        {"type": "http.response.body", "body": b"z" * 5000},
    ],
    "partial": [
        {"type": "http.response.start", "status": 206, "headers": [(b"content-length", b"5000")]},
        {"type": "http.response.body", "body": b"z" * 5000},
    ],
    "event stream": [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]},
        {"type": "http.response.body", "body": b"data: 1\n\n" * 500, "more_body": True},
        {"type": "http.response.body", "body": b""},
    ],
}


async def served(middleware: Callable[[ASGIApp], ASGIApp], messages: list[Message]) -> list[Message]:
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send({**message, "headers": list(message.get("headers", []))} if "headers" in message else message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [(b"accept-encoding", b"identity")]}
    await middleware(app)(scope, receive, send)
    return sent


def varies(sent: list[Message]) -> list[bytes]:
    return [value for name, value in sent[0]["headers"] if name.lower() == b"vary"]


@pytest.mark.parametrize("answer", list(ANSWERS))
async def test_uncompressed_answers_vary_on_the_encoding_exactly_where_starlette_says(answer: str) -> None:
    messages = ANSWERS[answer]

    starlette = await served(lambda app: GZipMiddleware(app, minimum_size=1024), messages)
    edge = await served(Edge, messages)

    assert varies(edge) == varies(starlette)
    assert [message.get("body") for message in edge] == [message.get("body") for message in starlette]
