"""Request body cap: anything over ``max_bytes`` is ``413`` before the app sees it.

A declared ``Content-Length`` over the cap is refused at once. Otherwise (and
for chunked bodies with no length) the body is read up to the cap and no
further; only a body that fits is replayed to the application. Some paths
(bulk imports) have a cap of their own.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.envelope import send_error


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, path_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = path_limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        max_bytes = self.path_limits.get(scope["path"], self.max_bytes)
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._refuse(scope, send, max_bytes)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                await self._refuse(scope, send, max_bytes)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, max_bytes: int) -> None:
        message = f"request body larger than {max_bytes} bytes"
        await send_error(scope, send, 413, "PAYLOAD_TOO_LARGE", message, [(b"connection", b"close")])
