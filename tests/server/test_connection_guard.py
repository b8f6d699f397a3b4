"""``server.connection_guard`` in process: the header deadline and making room, on a real loopback socket.

The end-to-end cases run against a real server process in ``test_slow_clients.py``; these drive the
protocol class under the test's own event loop with a tiny ASGI app, so each rule is seen alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from server.connection_guard import HEADER_TIMEOUT as TIMED_OUT
from server.connection_guard import OVER_CAPACITY, guarded_protocol

HEADER_TIMEOUT = 0.3
WAIT = 10.0  # how long a test waits for something that must happen: far longer than any timer here
TIMER_SLACK = 0.05
REQUEST = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"
HOLD = b"GET /hold HTTP/1.1\r\nHost: test\r\n\r\n"
PARTIAL = b"GET / HTTP/1.1\r\nHost: te"
OK = b"HTTP/1.1 200 OK\r\n"


class App:
    """Answers ``ok``; ``/hold`` waits until the test releases it. Notes why the guard closed connections."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.closed: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/hold":
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@asynccontextmanager
async def serving(app: App, max_open: int, header_timeout: float = HEADER_TIMEOUT) -> AsyncIterator[tuple[str, int]]:
    """A listening socket served by the guarded protocol; yields its address."""
    config = uvicorn.Config(app, log_config=None, lifespan="off", timeout_keep_alive=60)
    protocol = guarded_protocol(header_timeout, max_open, app.closed.append)
    state = ServerState()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: protocol(config=config, server_state=state, app_state={}), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[:2]
    finally:
        app.release.set()
        server.close()
        for connection in list(state.connections):
            connection.transport.close()
        await server.wait_closed()


@asynccontextmanager
async def connected(address: tuple[str, int], first: bytes = b"") -> AsyncIterator[Connection]:
    reader, writer = await asyncio.open_connection(*address)
    writer.write(first)
    try:
        yield reader, writer
    finally:
        writer.close()
        await writer.wait_closed()


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server ends the stream without having answered anything."""
    return await asyncio.wait_for(reader.read(), WAIT) == b""


async def answer(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    return head + await asyncio.wait_for(reader.readexactly(2), WAIT)


async def test_a_connection_whose_headers_stop_is_closed_at_the_deadline() -> None:
    app = App()
    async with serving(app, max_open=10) as address:
        started = time.monotonic()
        async with connected(address, PARTIAL) as (reader, _):
            assert await closed_by_server(reader)
        assert time.monotonic() - started >= HEADER_TIMEOUT - TIMER_SLACK
    assert app.closed == [TIMED_OUT]


async def test_a_connection_that_never_sends_a_byte_is_closed_at_the_deadline() -> None:
    async with serving(App(), max_open=10) as address, connected(address) as (reader, _):
        assert await closed_by_server(reader)


async def test_an_idle_keep_alive_sending_only_blank_lines_is_closed_at_the_header_deadline() -> None:
    # Uvicorn's own keep-alive timeout (60 s here) is cancelled by any byte; the header deadline is not.
    async with serving(App(), max_open=10) as address, connected(address, REQUEST) as (reader, writer):
        assert (await answer(reader)).startswith(OK)
        started = time.monotonic()
        writer.write(b"\r\n")

        assert await closed_by_server(reader)
        assert time.monotonic() - started >= HEADER_TIMEOUT - TIMER_SLACK


async def test_past_the_cap_the_longest_waiting_connection_makes_room() -> None:
    app = App()
    async with (
        serving(app, max_open=2, header_timeout=60) as address,
        connected(address, PARTIAL) as (oldest, _),
        connected(address, PARTIAL) as (older, _),
        connected(address, PARTIAL) as (newest, newest_writer),
    ):
        assert await closed_by_server(oldest)
        async with connected(address, REQUEST) as (whole, _):
            assert (await answer(whole)).startswith(OK)
            assert await closed_by_server(older)
            newest_writer.write(b"st\r\n\r\n")  # the rest of its headers: it was never closed
            assert (await answer(newest)).startswith(OK)
    assert app.closed == [OVER_CAPACITY, OVER_CAPACITY]


async def test_a_connection_being_served_is_never_closed_to_make_room() -> None:
    app = App()
    async with serving(app, max_open=1, header_timeout=60) as address, connected(address, HOLD) as (held, _):
        async with connected(address, REQUEST) as (refused, _):
            assert await closed_by_server(refused)
        app.release.set()
        assert (await answer(held)).startswith(OK)
    assert app.closed == [OVER_CAPACITY]
