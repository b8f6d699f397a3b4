"""A bound on requests in flight: past ``max_requests`` the answer is an enveloped 503.

Requests beyond the bound are refused at once with ``Retry-After`` instead of
piling up behind the store's mailbox. Probes are always answered, so an
orchestrator can tell a busy service from a dead one. The count lives in an
:class:`InFlight` the app can share, so background jobs can tell when requests
are waiting and step aside.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from server.envelope import send_error
from server.paths import PROBE_PATHS


class InFlight:
    """How many requests (probes aside) are being served right now."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class ConcurrencyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_requests: int, in_flight: InFlight | None = None) -> None:
        self.app = app
        self.max_requests = max_requests
        self.requests = in_flight or InFlight()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBE_PATHS:
            await self.app(scope, receive, send)
            return
        requests = self.requests
        if requests.count >= self.max_requests:
            message = f"more than {self.max_requests} requests in flight; retry shortly"
            await send_error(scope, send, 503, "SERVICE_UNAVAILABLE", message, [(b"retry-after", b"1")])
            return
        requests.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            requests.count -= 1
