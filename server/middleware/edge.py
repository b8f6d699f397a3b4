"""The edge: every check and header a request meets on its way in and out, in one ASGI layer.

A request meets, in this order: its id (:mod:`.request_id`), the clock and
status capture for its access line and metrics (:mod:`.observe`), the allowed
hosts (:mod:`.allowed_hosts`), CORS (:mod:`.cors`, only when origins are
configured: Starlette's middleware, the one extra layer), the stall bound and
the size cap of its body (:mod:`.body_timeout`, :mod:`.body_limit`, only when
it has one), the bound on requests in flight (:mod:`.concurrency`), the rate
limit (:mod:`.rate_limit`), and gzip (:mod:`.compression`); its answer then
meets them in reverse: rate-limit headers, ``Vary``, CORS, ``Location``
rewritten (:mod:`.public_url`), security headers (:mod:`.security_headers`)
and the request id. Each concern keeps its module of small functions; this
one only calls them in order, so a request pays one ASGI hop instead of one
per concern, and one wrapper of ``send`` for all the headers added on the way
out. An answer given early (a refused host, a busy service, a rate limit, a
body too large) is sent through the same wrappers a normal answer passes at
that point, so it carries exactly the headers it did when each concern was a
middleware of its own.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.metrics import Metrics
from server.middleware.allowed_hosts import HostGate, refuse_host
from server.middleware.body_limit import BodyCap, BodyTooLarge, CountedBody, refuse_too_large
from server.middleware.body_timeout import TimedBody, announces_body
from server.middleware.compression import IdentityAnswer, accepts_gzip, gzip_responder
from server.middleware.concurrency import InFlight, refuse_busy
from server.middleware.cors import ALLOWED_HEADERS, ALLOWED_METHODS, EXPOSED_HEADERS, EnvelopeCORSMiddleware
from server.middleware.observe import record
from server.middleware.public_url import Locator
from server.middleware.rate_limit import RateLimits, rate_headers, refuse_rate_limited
from server.middleware.request_id import CURRENT_REQUEST_ID, assign_request_id, with_request_id
from server.middleware.security_headers import with_security_headers
from server.paths import PROBE_PATHS

CORS_MAX_AGE_SECONDS = 600


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    """What the edge enforces; every field defaults to memdb's own default (``server.settings``)."""

    max_body_bytes: int = 1_048_576
    path_body_limits: Mapping[str, int] = field(default_factory=dict)
    body_timeout_seconds: float = 10.0
    public_url: str | None = None
    allowed_hosts: Sequence[str] = ()
    cors_origins: Sequence[str] = ()
    gzip_minimum_bytes: int = 1024


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        settings: EdgeSettings | None = None,
        *,
        in_flight: InFlight | None = None,
        rate_limits: RateLimits | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        settings = settings or EdgeSettings()
        self.app = app
        self.metrics = metrics
        self.in_flight = in_flight or InFlight()
        self.rate_limits = rate_limits
        self.body_cap = BodyCap(settings.max_body_bytes, settings.path_body_limits)
        self.body_timeout_seconds = settings.body_timeout_seconds
        self.locator = Locator(settings.public_url)
        self.hosts = HostGate(settings.allowed_hosts) if settings.allowed_hosts else None
        self.gzip_minimum_bytes = settings.gzip_minimum_bytes
        # Past CORS (or in its place when no origin is configured), the request goes on to _guarded.
        self._cross_origin: ASGIApp = self._guarded
        if settings.cors_origins:
            self._cross_origin = EnvelopeCORSMiddleware(
                self._guarded,
                allow_origins=list(settings.cors_origins),
                allow_methods=list(ALLOWED_METHODS),
                allow_headers=list(ALLOWED_HEADERS),
                expose_headers=list(EXPOSED_HEADERS),
                allow_credentials=False,
                max_age=CORS_MAX_AGE_SECONDS,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = assign_request_id(scope)
        context = CURRENT_REQUEST_ID.set(request_id.decode())
        started = time.perf_counter()
        status = 500  # what Starlette answers when an error escapes the application
        locator = self.locator

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = with_security_headers(locator.relocate(message.get("headers", [])))
                message = {**message, "headers": with_request_id(headers, request_id)}
            await send(message)

        try:
            if self.hosts is not None and not await self.hosts.admits(scope, receive):
                await refuse_host(scope, answer)
            else:
                await self._cross_origin(scope, receive, answer)
        finally:
            record(self.metrics, scope, status, time.perf_counter() - started)
        # Not in a ``finally``: Starlette logs an unhandled error outside every middleware, after this raises,
        # and that line must still carry the id. (Uvicorn runs each request in a task of its own, so it ends there.)
        CURRENT_REQUEST_ID.reset(context)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Bound the body's stalls and size (when there is a body), then go on."""
        if announces_body(scope["headers"]):
            timed = TimedBody(scope, receive, send, self.body_timeout_seconds)
            receive, send = timed.receive, timed.send
        max_bytes, declared_too_large = self.body_cap.check(scope)
        if max_bytes is None:
            await self._admitted(scope, receive, send)
            return
        if declared_too_large:
            await refuse_too_large(scope, send, max_bytes)
            return
        body = CountedBody(scope, receive, send, max_bytes)
        try:
            await self._admitted(scope, body.receive, body.send)
        except BodyTooLarge:
            await body.refuse()

    async def _admitted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the request in flight (refusing it past the bound), rate-limit it, run the application."""
        if scope["path"] in PROBE_PATHS:  # probes are never refused for being one too many
            await self._limited(scope, receive, send)
            return
        in_flight = self.in_flight
        if in_flight.full:
            await refuse_busy(scope, send, in_flight)
            return
        in_flight.count += 1
        try:
            await self._limited(scope, receive, send)
        finally:
            in_flight.count -= 1

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        limits = self.rate_limits
        if limits is not None and not limits.exempt(scope):
            verdict = await limits.verdict(scope)
            if not verdict.allowed:
                await refuse_rate_limited(scope, send, verdict)
                return
            counted = rate_headers(verdict)
            outer = send

            async def send_counted(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", []), *counted]}
                await outer(message)

            send = send_counted
        if accepts_gzip(scope):
            await gzip_responder(self.app, self.gzip_minimum_bytes)(scope, receive, send)
        else:
            await self.app(scope, receive, IdentityAnswer(send, self.gzip_minimum_bytes).send)
