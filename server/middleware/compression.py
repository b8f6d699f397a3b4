"""Gzip for answers of ``minimum_size`` bytes or more, to clients that accept it.

A request whose ``Accept-Encoding`` names gzip is answered through Starlette's
``GZipResponder``, which compresses. Any other request is answered as it is,
with ``Vary: Accept-Encoding`` added where Starlette's ``IdentityResponder``
(what ``GZipMiddleware`` uses for them) adds it: on answers of at least
``minimum_size`` bytes, or streamed, that are not already encoded, partial or
of an excluded type (server-sent events). :class:`IdentityAnswer` decides that
from the ``Content-Length`` when the answer has one, so the common answer is
passed on at once rather than held until its body arrives.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipResponder
from starlette.types import ASGIApp, Message, Scope, Send

EXCLUDED_MEDIA_TYPES = frozenset(kind.partition(";")[0].strip().lower() for kind in DEFAULT_EXCLUDED_CONTENT_TYPES)


def accepts_gzip(scope: Scope) -> bool:
    value = next((value for name, value in scope["headers"] if name == b"accept-encoding"), b"")
    return b"gzip" in value


def gzip_responder(app: ASGIApp, minimum_size: int) -> ASGIApp:
    return GZipResponder(app, minimum_size)


def _varies(message: Message) -> bool:
    """Whether an answer starting with ``message`` is one the encoding could change."""
    if message["status"] == 206:
        return False
    media_type = b""
    for name, value in message.get("headers", ()):
        lowered = name.lower()
        if lowered == b"content-encoding":
            return False
        if lowered == b"content-type":
            media_type = value
    kind = media_type.decode("latin-1").partition(";")[0].strip().lower()
    return EXCLUDED_MEDIA_TYPES.isdisjoint({kind, kind.partition("/")[0] + "/*"})


def _with_vary(message: Message) -> Message:
    raw = message.get("headers", ())
    if not any(name.lower() == b"vary" for name, _ in raw):  # the common case: what ``add_vary_header`` appends
        return {**message, "headers": [*raw, (b"vary", b"Accept-Encoding")]}
    headers = MutableHeaders(raw=list(message.get("headers", ())))
    headers.add_vary_header("Accept-Encoding")
    return {**message, "headers": headers.raw}


class IdentityAnswer:
    """One uncompressed answer's ``send``, adding ``Vary: Accept-Encoding`` where gzip could have applied."""

    __slots__ = ("_send", "minimum_size", "pending")

    def __init__(self, send: Send, minimum_size: int) -> None:
        self._send = send
        self.minimum_size = minimum_size
        self.pending: Message | None = None

    async def send(self, message: Message) -> None:
        pending = self.pending
        if pending is not None:  # the first body of an answer that announced no length
            self.pending = None
            if message["type"] == "http.response.body" and (
                message.get("more_body", False) or len(message.get("body", b"")) >= self.minimum_size
            ):
                pending = _with_vary(pending)
            await self._send(pending)
        elif message["type"] == "http.response.start" and _varies(message):
            headers = message.get("headers", ())
            length = next((value for name, value in headers if name.lower() == b"content-length"), None)
            if length is None or not length.isdigit():
                self.pending = message
                return
            if int(length) >= self.minimum_size:
                message = _with_vary(message)
        await self._send(message)
