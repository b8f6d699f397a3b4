"""Request body cap, counted as the body streams: nothing is buffered here.

A declared ``Content-Length`` over the cap is ``413`` at once, before a byte
of the body is read. Otherwise the application's ``receive`` is wrapped with a
byte counter: the moment the body passes the cap (chunked bodies too), the
read raises :class:`BodyTooLarge` and the answer is ``413``, whatever the
application was doing with the body. Some paths (bulk imports) have a cap of
their own. The application reads the body itself, when it wants it, so a
request refused before then (``401``, ``403``, ``429``, ...) has none of it
read.

Any answer that leaves a body unread carries ``Connection: close``: uvicorn
would otherwise read and discard the rest of the body to keep the connection
alive, spending time on bytes nobody wanted.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.envelope import send_error

CLOSE = (b"connection", b"close")


class BodyTooLarge(Exception):
    """The body passed its cap while the application was reading it."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, path_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = path_limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        if not chunked and (declared is None or declared in (b"0", b"")):
            await self.app(scope, receive, send)  # no body to count
            return
        max_bytes = self.path_limits.get(scope["path"], self.max_bytes)
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._refuse(scope, send, max_bytes)
            return
        received = 0
        complete = too_large = started = False

        async def counted() -> Message:
            nonlocal received, complete, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    too_large = True
                    raise BodyTooLarge
                complete = not message.get("more_body", False)
            return message

        async def answer(message: Message) -> None:
            nonlocal started
            if too_large:  # the application answered the failed read its own way: the 413 stands instead
                if not started:
                    started = True
                    await self._refuse(scope, send, max_bytes)
                return
            if message["type"] == "http.response.start":
                started = True
                if not complete:
                    message = {**message, "headers": [*message.get("headers", []), CLOSE]}
            await send(message)

        try:
            await self.app(scope, counted, answer)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, send, max_bytes)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, max_bytes: int) -> None:
        message = f"request body larger than {max_bytes} bytes"
        await send_error(scope, send, 413, "PAYLOAD_TOO_LARGE", message, [CLOSE])
