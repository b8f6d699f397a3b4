"""``server.one_write``: a response's headers leave with its body, in one write, and nothing a client reads changes.

The write count is seen on a recording transport under the real protocol class; every other case runs
the protocol on a real loopback socket with a tiny ASGI app (as ``test_connection_guard.py`` does).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from server.one_write import OneWriteHttpToolsProtocol

WAIT = 10.0
BODY = b"x" * 5000


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/stream`` sends two chunks with a pause; ``/upload`` reads its body first; ``/broken`` fails mid-answer."""
    path = scope["path"]
    if path == "/upload":
        received = b""
        while True:
            message = await receive()
            received += message.get("body", b"")
            if not message.get("more_body"):
                break
        start = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(received))]}
        await send(start)
        await send({"type": "http.response.body", "body": received})
        return
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"transfer-encoding", b"chunked")]})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"second"})
        return
    headers = [(b"content-length", b"%d" % len(BODY)), (b"x-answer", b"yes")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if path == "/broken":
        raise RuntimeError("the app failed after starting its answer")
    await send({"type": "http.response.body", "body": BODY})


def config() -> uvicorn.Config:
    loaded = uvicorn.Config(app, log_config=None, lifespan="off", date_header=False)
    loaded.load()
    return loaded


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def test_headers_and_body_leave_in_one_write() -> None:
    transport = RecordingTransport()
    protocol = OneWriteHttpToolsProtocol(config=config(), server_state=ServerState(), app_state={})
    protocol.connection_made(transport)
    for _ in range(2):  # two requests on one keep-alive connection: one write each
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        await asyncio.wait_for(asyncio.gather(*protocol.tasks), WAIT)
    assert len(transport.writes) == 2
    for written in transport.writes:
        head, _, body = written.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"x-answer: yes" in head
        assert body == BODY
    protocol.connection_lost(None)


@asynccontextmanager
async def serving() -> AsyncIterator[tuple[str, int]]:
    loaded, state = config(), ServerState()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: OneWriteHttpToolsProtocol(config=loaded, server_state=state, app_state={}), "127.0.0.1", 0
    )
    try:
        yield server.sockets[0].getsockname()[:2]
    finally:
        server.close()
        for connection in list(state.connections):
            connection.shutdown()
        await server.wait_closed()


async def exchange(address: tuple[str, int], request: bytes) -> bytes:
    """Send ``request`` and read until the server closes the connection."""
    reader, writer = await asyncio.open_connection(*address)
    writer.write(request)
    try:
        return await asyncio.wait_for(reader.read(), WAIT)
    finally:
        writer.close()


async def test_a_head_request_gets_its_headers() -> None:
    async with serving() as address:
        answer = await exchange(address, b"HEAD / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\n")
    assert b"x-answer: yes" in answer


async def test_a_streamed_body_arrives_whole() -> None:
    async with serving() as address:
        answer = await exchange(address, b"GET /stream HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head
    assert body == b"5\r\nfirst\r\n6\r\nsecond\r\n0\r\n\r\n"


async def test_100_continue_is_sent_before_the_body_comes() -> None:
    async with serving() as address:
        reader, writer = await asyncio.open_connection(*address)
        head = b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        writer.write(head)
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"ping")
        answer = await asyncio.wait_for(reader.readuntil(b"ping"), WAIT)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


async def test_an_answer_broken_after_its_start_still_sends_the_headers_then_closes() -> None:
    async with serving() as address:
        answer = await exchange(address, b"GET /broken HTTP/1.1\r\nHost: test\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\n")
