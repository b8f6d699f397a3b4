"""Uvicorn's httptools protocol sending a response's headers and its body in one write.

Uvicorn writes a response's status line and headers to the socket as soon as the app sends
``http.response.start``, and the body when it sends ``http.response.body``: two ``send`` system
calls, two trips through the kernel's loopback or network path and two wake-ups of the client per
response. Over HTTP that second trip was the largest single cost of a memdb request (the headers'
write took a fifth of the server's time serving a user's orders under wrk). Here the headers are
held back and written together with the first piece of the body, which the app sends right after
(memdb's answers are one body message). Anything that ends the response without a body write
(a ``HEAD``, a closed connection) writes the headers first, so nothing a client receives changes,
only how many writes it arrives in; a streamed body's headers leave with its first chunk.
``100 Continue`` is written at once, as before: the headers held are only the response's own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class HeldHeaders:
    """A cycle's view of its connection's transport that holds the response's headers until its body comes."""

    __slots__ = ("_completed", "_cycle", "_held", "_started", "transport")

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self.transport = transport
        self._cycle = cycle
        self._started = False
        self._held: bytes | None = None
        self._completed = cycle.on_response
        cycle.transport = self  # type: ignore[assignment]
        cycle.on_response = self._complete

    def write(self, data: bytes) -> None:
        if not self._started and self._cycle.response_started:  # the write of http.response.start: its headers
            self._started = True
            self._held = data
            return
        held = self._held
        if held is not None:
            self._held = None
            data = held + data
        self.transport.write(data)

    def flush(self) -> None:
        """Write the headers if they are still held (a response that ended without writing a body)."""
        held = self._held
        if held is not None:
            self._held = None
            self.transport.write(held)

    def _complete(self) -> None:
        self.flush()  # a HEAD's headers: its body wrote nothing
        self._completed()

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """Each request's cycle writes through :class:`HeldHeaders`; the headers go out with the body."""

    def on_headers_complete(self) -> None:
        existing = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not existing:  # not a websocket upgrade
            HeldHeaders(self.transport, cycle)
