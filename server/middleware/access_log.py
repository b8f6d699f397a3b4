"""Access log: one ``memdb.access`` line per HTTP request, written when its answer is done.

The line gives the method, the path (as sent, percent-encoded, without the query
string, which may hold filter values such as e-mail addresses), the final status
and the duration in milliseconds, both in the message and as ``method``,
``path``, ``status`` and ``duration_ms`` fields for the JSON formatter. It sits
inside the request-id middleware, so the line carries the request's id, and
outside everything that may answer early (rate limits, body caps), so it sees
the status the client got. An error that escapes the application is logged as
``500``, the answer Starlette then sends. No header, body or token is read.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("memdb.access")


def _path(scope: Scope) -> str:
    raw: bytes | None = scope.get("raw_path")
    if raw is None:
        return str(scope["path"])
    return raw.partition(b"?")[0].decode("latin-1")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        except Exception:
            _log(scope, status, started)
            raise
        _log(scope, status, started)


def _log(scope: Scope, status: int, started: float) -> None:
    duration_ms = round((time.perf_counter() - started) * 1000, 3)
    method = str(scope["method"])
    path = _path(scope)
    fields = {"method": method, "path": path, "status": status, "duration_ms": duration_ms}
    logger.info("%s %s %d %.1fms", method, path, status, duration_ms, extra=fields)
