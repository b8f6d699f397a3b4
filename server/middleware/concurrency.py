"""A bound on requests in flight: past ``max_requests`` the answer is an enveloped 503.

Requests beyond the bound are refused at once with ``Retry-After`` instead of
piling up behind the store's mailbox. Probes are always answered (the edge,
:mod:`server.middleware.edge`, does not count them), so an orchestrator can
tell a busy service from a dead one. The count lives in an :class:`InFlight`
the app can share, so background jobs can tell when requests are waiting and
step aside.
"""

from __future__ import annotations

from starlette.types import Scope, Send

from server.envelope import send_error


class InFlight:
    """How many requests (probes aside) are being served right now, and how many may be."""

    __slots__ = ("count", "limit")

    def __init__(self, limit: int = 1000) -> None:
        self.count = 0
        self.limit = limit

    @property
    def full(self) -> bool:
        return self.count >= self.limit


async def refuse_busy(scope: Scope, send: Send, in_flight: InFlight) -> None:
    message = f"more than {in_flight.limit} requests in flight; retry shortly"
    await send_error(scope, send, 503, "SERVICE_UNAVAILABLE", message, [(b"retry-after", b"1")])
