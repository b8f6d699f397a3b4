"""A ``Location`` never echoes the ``Host`` a client sent.

Routes answer with paths (``/api/v1/users/…``), but the framework's own
trailing-slash redirect builds an absolute URL from the request's ``Host``
(``Host: evil.example`` → ``location: http://evil.example/api/v1/users``). Every
``Location`` leaving the app is cut to its path and query here, then, when
``MEMDB_PUBLIC_URL`` is set, put under that origin. ``Link`` headers are built
the same way where they are made (``server.responses.link_header``).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class PublicURLMiddleware:
    def __init__(self, app: ASGIApp, public_url: str | None) -> None:
        self.app = app
        self.origin = public_url or ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_located(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (name, self._located(value)) if name.lower() == b"location" else (name, value)
                    for name, value in message.get("headers", [])
                ]
            await send(message)

        await self.app(scope, receive, send_located)

    def _located(self, location: bytes) -> bytes:
        parts = urlsplit(location.decode("latin-1"))
        return (self.origin + urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))).encode("latin-1")
