"""HTTP metrics: counts and times every request by method, route template and final status.

The route is read after the request has been routed (``server.metrics.route_template``),
so naming it costs nothing per request; a path no route serves is ``<unmatched>``
and an answer given before routing (a ``429`` from the rate limiter, a ``413``
from the body cap) or by static files is ``<other>``, so a scan of random URLs
adds no series. It sits inside the request-id middleware and outside everything
that may answer early, so those answers are counted too; 429s and 401s also
move ``rate_limited_total`` and ``auth_failures_total``. An error that escapes
the application counts as ``500``, the answer Starlette then sends.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.metrics import Metrics, route_template


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
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
            self.metrics.observe_request(scope["method"], route_template(scope, status), status, elapsed)
