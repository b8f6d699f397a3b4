"""A request body that stalls is answered ``408 REQUEST_TIMEOUT`` and its connection closed.

Each wait for the next piece of a body is bounded by ``seconds``: a client that announces a body and
stops sending would otherwise hold a request slot (``MEMDB_MAX_CONNECTIONS``) for as long as it likes.
On a stall the client gets the error envelope with ``Connection: close``; the application inside is
told the client has gone (``http.disconnect``), so it stops and its slot is released, and whatever it
still sends is dropped. Requests without a body are not touched, and once the body is complete or the
response has begun, waits pass through unbounded (a streaming response listens for the disconnect).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.envelope import send_error

DISCONNECT: Message = {"type": "http.disconnect"}


def announces_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


class BodyTimeoutMiddleware:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not announces_body(scope["headers"]):
            await self.app(scope, receive, send)
            return
        body_complete = False
        response_started = False
        timed_out = False

        async def bounded_receive() -> Message:
            nonlocal body_complete, timed_out
            if timed_out:
                return DISCONNECT
            if body_complete or response_started:
                return await receive()
            try:
                async with asyncio.timeout(self.seconds):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                message_text = f"the request body stalled for more than {self.seconds:g} seconds"
                await send_error(scope, send, 408, "REQUEST_TIMEOUT", message_text, [(b"connection", b"close")])
                return DISCONNECT
            body_complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if timed_out:
                return
            response_started = True
            await send(message)

        await self.app(scope, bounded_receive, guarded_send)
