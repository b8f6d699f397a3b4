"""Watching each request: its access-log line and its metrics, from one status-and-timing capture.

Each HTTP request is timed and its final status read from the answer it sends;
when the answer is done the request is written as one ``memdb.access`` line and
counted and timed in the app's :class:`~server.metrics.Metrics`.

The access line gives the method, the path (as sent, percent-encoded, without
the query string, which may hold filter values such as e-mail addresses), the
status and the duration in milliseconds, both in the message and as
``method``, ``path``, ``status`` and ``duration_ms`` fields for the JSON
formatter. No header, body or token is read.

Metrics label the request by method, route template and status. The route is
read after the request has been routed (:func:`server.metrics.route_template`),
so naming it costs nothing per request; a path no route serves is
``<unmatched>`` and an answer given before routing (a ``429`` from the rate
limiter, a ``413`` from the body cap) or by static files is ``<other>``, so a
scan of random URLs adds no series. 429s and 401s also move
``rate_limited_total`` and ``auth_failures_total``.

It sits inside the request-id middleware, so the line carries the request's id,
and outside everything that may answer early (rate limits, body caps), so it
sees the status the client got. An error that escapes the application is
recorded as ``500``, the answer Starlette then sends.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.metrics import Metrics, route_template

logger = logging.getLogger("memdb.access")


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

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
        finally:
            elapsed = time.perf_counter() - started
            if self.metrics is not None:
                self.metrics.observe_request(scope["method"], route_template(scope, status), status, elapsed)
            if logger.isEnabledFor(logging.INFO):
                _log(scope, status, elapsed)


def _path(scope: Scope) -> str:
    raw: bytes | None = scope.get("raw_path")
    if raw is None:
        return str(scope["path"])
    return raw.partition(b"?")[0].decode("latin-1")


def _log(scope: Scope, status: int, elapsed: float) -> None:
    duration_ms = round(elapsed * 1000, 3)
    method = str(scope["method"])
    path = _path(scope)
    fields = {"method": method, "path": path, "status": status, "duration_ms": duration_ms}
    logger.info("%s %s %d %.1fms", method, path, status, duration_ms, extra=fields)
