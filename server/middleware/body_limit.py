"""Request body cap, counted as the body streams: nothing is buffered here.

A declared ``Content-Length`` over the cap is ``413`` at once, before a byte
of the body is read. Otherwise the application's ``receive`` is wrapped with a
byte counter (:class:`CountedBody`): the moment the body passes the cap
(chunked bodies too), the read raises :class:`BodyTooLarge` and the answer is
``413``, whatever the application was doing with the body. Some paths (bulk
imports) have a cap of their own. The application reads the body itself, when
it wants it, so a request refused before then (``401``, ``403``, ``429``, ...)
has none of it read.

Any answer that leaves a body unread carries ``Connection: close``: uvicorn
would otherwise read and discard the rest of the body to keep the connection
alive, spending time on bytes nobody wanted.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import Message, Receive, Scope, Send

from server.envelope import send_error

CLOSE = (b"connection", b"close")


class BodyTooLarge(Exception):
    """The body passed its cap while the application was reading it."""


class BodyCap:
    """``max_bytes`` per request body, or the cap of the request's path in ``path_limits``."""

    def __init__(self, max_bytes: int, path_limits: Mapping[str, int] | None = None) -> None:
        self.max_bytes = max_bytes
        self.path_limits = dict(path_limits or {})

    def check(self, scope: Scope) -> tuple[int | None, bool]:
        """The cap to count the body against (``None``: no body to count), and whether the declared size passes it."""
        declared: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        if not chunked and (declared is None or declared in (b"0", b"")):
            return None, False
        max_bytes = self.path_limits.get(scope["path"], self.max_bytes)
        return max_bytes, declared is not None and declared.isdigit() and int(declared) > max_bytes


class CountedBody:
    """One request's ``receive`` and ``send``, counting the body against its cap as it streams."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.max_bytes = max_bytes
        self.received = 0
        self.complete = self.too_large = self.started = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.max_bytes:
                self.too_large = True
                raise BodyTooLarge
            self.complete = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.too_large:  # the application answered the failed read its own way: the 413 stands instead
            await self.refuse()
            return
        if message["type"] == "http.response.start":
            self.started = True
            if not self.complete:
                message = {**message, "headers": [*message.get("headers", []), CLOSE]}
        await self._send(message)

    async def refuse(self) -> None:
        """Answer ``413``, unless an answer has begun."""
        if not self.started:
            self.started = True
            await refuse_too_large(self.scope, self._send, self.max_bytes)


async def refuse_too_large(scope: Scope, send: Send, max_bytes: int) -> None:
    message = f"request body larger than {max_bytes} bytes"
    await send_error(scope, send, 413, "PAYLOAD_TOO_LARGE", message, [CLOSE])
