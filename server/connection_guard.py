"""Uvicorn's httptools protocol with a deadline on request headers and room kept for whole requests.

Uvicorn (0.55) has no deadline for a request's headers: ``timeout_keep_alive`` is armed only after a
response, and any byte cancels it, so a client that sends half a request line and stops holds its
socket for good. Its ``limit_concurrency`` counts those sockets too, so a few thousand of them turn
every request, probes included, into a plain-text 503. Here a connection whose headers are not
complete within ``header_timeout`` seconds (from its opening, or from the first byte of its next
request) is closed. Open connections are capped at ``max_open`` instead of Uvicorn's limit: past the
cap, the connection that has waited longest for a request's headers (a slow sender or an idle
keep-alive) is closed to make room, never one whose request is being served, so a caller who sends
a whole request, such as a health checker, still gets in. Requests in flight are bounded by
``server.middleware.concurrency``; memdb runs Uvicorn with ``limit_concurrency=None``. Each
connection closed here is reported to ``on_close`` with its reason, for the metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT = "header_timeout"
OVER_CAPACITY = "over_capacity"
CLOSE_REASONS = (HEADER_TIMEOUT, OVER_CAPACITY)


class ConnectionGuard:
    """What every connection of one server shares: the limits, and who is waiting for headers, oldest first."""

    def __init__(self, header_timeout: float, max_open: int, on_close: Callable[[str], None]) -> None:
        self.header_timeout = header_timeout
        self.max_open = max_open
        self.on_close = on_close
        self.waiting: dict[GuardedHttpToolsProtocol, None] = {}


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    guard: ClassVar[ConnectionGuard]
    header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()
        self._arm_header_deadline()
        if len(self.connections) > self.guard.max_open:
            self._close(next(iter(self.guard.waiting)), OVER_CAPACITY)  # the longest waiting; this one if alone

    def data_received(self, data: bytes) -> None:
        if self.timeout_keep_alive_task is not None:  # an idle keep-alive starts its next request
            self._arm_header_deadline()
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._arm_header_deadline()  # a request pipelined behind one being served
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        self.guard.waiting.pop(self, None)
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:  # idle until the next request
            self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        self.guard.waiting.pop(self, None)
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self.guard.waiting[self] = None  # never already in it: added last, so the dict is oldest first

    def _arm_header_deadline(self) -> None:
        if self.header_deadline is None:
            self.header_deadline = self.loop.call_later(self.guard.header_timeout, self._close, self, HEADER_TIMEOUT)

    def _disarm_header_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _close(self, connection: GuardedHttpToolsProtocol, reason: str) -> None:
        connection._disarm_header_deadline()
        self.guard.waiting.pop(connection, None)
        connection.transport.close()
        self.guard.on_close(reason)


def guarded_protocol(
    header_timeout: float, max_open: int, on_close: Callable[[str], None] = lambda reason: None
) -> type[GuardedHttpToolsProtocol]:
    """A protocol class for ``uvicorn.run(http=...)``: its connections share one :class:`ConnectionGuard`."""

    class Guarded(GuardedHttpToolsProtocol):
        guard = ConnectionGuard(header_timeout, max_open, on_close)

    return Guarded
