"""A request body that stalls is answered ``408 REQUEST_TIMEOUT`` and its connection closed.

Each wait for the next piece of a body is bounded by ``seconds``: a client that announces a body and
stops sending would otherwise hold a request slot (``MEMDB_MAX_CONNECTIONS``) for as long as it likes.
On a stall the client gets the error envelope with ``Connection: close``; the application inside is
told the client has gone (``http.disconnect``), so it stops and its slot is released, and whatever it
still sends is dropped. Requests without a body are not touched (the edge, :mod:`server.middleware.edge`,
wraps only those :func:`announces_body` says have one), and once the body is complete or the
response has begun, waits pass through unbounded (a streaming response listens for the disconnect).
"""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Scope, Send

from server.envelope import send_error

DISCONNECT: Message = {"type": "http.disconnect"}


def announces_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


class TimedBody:
    """One request's ``receive`` and ``send``, with each wait for its body bounded by ``seconds``."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, seconds: float) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.seconds = seconds
        self.body_complete = self.response_started = self.timed_out = False

    async def receive(self) -> Message:
        if self.timed_out:
            return DISCONNECT
        if self.body_complete or self.response_started:
            return await self._receive()
        try:
            async with asyncio.timeout(self.seconds):
                message = await self._receive()
        except TimeoutError:
            self.timed_out = True
            text = f"the request body stalled for more than {self.seconds:g} seconds"
            await send_error(self.scope, self._send, 408, "REQUEST_TIMEOUT", text, [(b"connection", b"close")])
            return DISCONNECT
        self.body_complete = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.timed_out:
            return
        self.response_started = True
        await self._send(message)
