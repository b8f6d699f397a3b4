"""The edge's body timeout in process: which waits it bounds and what a stalled client gets.

Over a real socket against a real server, see ``test_slow_clients.py``; here the ASGI messages are
scripted, so a stall is exact and the application's side of it can be watched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
from starlette.types import Message, Receive, Scope, Send

from server.middleware.edge import Edge, EdgeSettings

SECONDS = 0.05
WAIT = 10.0  # how long a test lets the application run: far longer than SECONDS
BODY_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"100")]

Handler = Callable[[Receive, Send], Awaitable[None]]


def scope(headers: list[tuple[bytes, bytes]]) -> Scope:
    return {"type": "http", "method": "POST", "path": "/api/v1/users", "headers": headers, "state": {}}


def client(*messages: Message) -> Receive:
    """Hands out ``messages`` in turn, then stalls like a client that stopped sending."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


async def run(handler: Handler, receive: Receive, headers: list[tuple[bytes, bytes]] = BODY_HEADERS) -> list[Message]:
    """What the client is sent when ``handler`` runs behind the middleware."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await handler(receive, send)

    edge = Edge(app, EdgeSettings(body_timeout_seconds=SECONDS))
    await asyncio.wait_for(edge(scope(headers), receive, send), WAIT)
    return sent


async def answer(send: Send, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


async def test_a_stalled_body_is_answered_408_and_the_application_is_told_the_client_left() -> None:
    seen: list[Message] = []

    async def handler(receive: Receive, send: Send) -> None:
        while (message := await receive())["type"] == "http.request":
            seen.append(message)
        seen.append(message)
        seen.append(await receive())  # asked again, the answer stays the same
        await answer(send, 400)  # what an application might say about a body cut short: never sent

    sent = await run(handler, client({"type": "http.request", "body": b"{", "more_body": True}))

    assert [message["type"] for message in seen] == ["http.request", "http.disconnect", "http.disconnect"]
    assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    error = orjson.loads(sent[1]["body"])["error"]
    assert error["code"] == "REQUEST_TIMEOUT"
    assert "0.05 seconds" in error["message"]


async def test_a_body_whose_pieces_each_arrive_in_time_is_passed_whole() -> None:
    pieces = [{"type": "http.request", "body": bytes([n]), "more_body": n < 5} for n in range(6)]
    received: list[bytes] = []

    async def handler(receive: Receive, send: Send) -> None:
        more = True
        while more:
            message = await receive()
            received.append(message["body"])
            more = message["more_body"]
        await answer(send)

    sent = await run(handler, client(*pieces))

    assert received == [bytes([n]) for n in range(6)]
    assert sent[0]["status"] == 200


async def test_waits_after_the_body_or_the_response_began_or_without_a_body_are_not_bounded() -> None:
    # Each handler waits on the client far past SECONDS, as a streaming response listening for a disconnect does.
    async def after_the_body(receive: Receive, send: Send) -> None:
        assert not (await receive())["more_body"]
        await waits_unbounded(receive)
        await answer(send)

    async def after_the_response_began(receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await waits_unbounded(receive)
        await send({"type": "http.response.body", "body": b""})

    async def without_a_body(receive: Receive, send: Send) -> None:
        await waits_unbounded(receive)
        await answer(send)

    whole = {"type": "http.request", "body": b"{}", "more_body": False}
    assert (await run(after_the_body, client(whole)))[0]["status"] == 200
    assert (await run(after_the_response_began, client()))[0]["status"] == 200
    assert (await run(without_a_body, client(), headers=[(b"content-length", b"0")]))[0]["status"] == 200


async def waits_unbounded(receive: Receive) -> None:
    """Waits on ``receive`` for four times SECONDS; a bounded wait would have answered 408 and ended it sooner."""
    try:
        message = await asyncio.wait_for(receive(), 4 * SECONDS)
    except TimeoutError:
        return
    raise AssertionError(f"the client stalls, yet receive gave {message}")


async def test_chunked_bodies_are_bounded_like_announced_ones() -> None:
    async def handler(receive: Receive, send: Send) -> None:
        await receive()
        await answer(send)

    sent = await run(handler, client(), headers=[(b"transfer-encoding", b"chunked")])

    assert sent[0]["status"] == 408
