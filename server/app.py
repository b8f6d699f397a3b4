"""The application factory: ``create_app(settings)`` wires routes, errors, middleware and the store.

The lifespan starts the storage actor, loads the seed file (development only)
and the start-up admin before the first request, and closes the actor,
draining its mailbox, after the last.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.middleware.gzip import GZipMiddleware

from server import __version__, docs, errors
from server.accounts import ensure_admin
from server.jobs.registry import JobRegistry
from server.metrics import Metrics
from server.metrics import router as metrics_router
from server.middleware.body_limit import BodyLimitMiddleware
from server.middleware.concurrency import ConcurrencyLimitMiddleware, InFlight
from server.middleware.cors import ALLOWED_HEADERS, ALLOWED_METHODS, EXPOSED_HEADERS, EnvelopeCORSMiddleware
from server.middleware.observe import ObserveMiddleware
from server.middleware.rate_limit import RateLimitMiddleware
from server.middleware.request_id import RequestIdMiddleware
from server.middleware.security_headers import SecurityHeadersMiddleware
from server.models.common import ErrorEnvelope
from server.paths import API_PREFIX, LOGIN_PATH
from server.routers import auth, jobs, orders, system, users
from server.security.auth import Caller
from server.security.callers import CallerCache
from server.security.limits import RateLimiter
from server.security.passwords import hash_password
from server.security.tokens import TokenService
from server.seed import load_seed
from server.settings import Settings
from server.tables import SESSIONS, TABLES, USERS
from store import Database, StoreActor, StoreClient
from store.supervisor import Supervisor

GZIP_MINIMUM_BYTES = 1024
logger = logging.getLogger("memdb")

_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in {
        400: "Bad request or invalid query",
        401: "Missing, invalid or expired token",
        403: "Not allowed for your role",
        404: "Not found (or not yours)",
        422: "Validation error",
        429: "Rate limited",
    }.items()
}


NO_OPENTELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
"""memdb exports its own Prometheus metrics and JSON logs; FastAPI's OpenTelemetry hooks would only
cost a check of the global providers on every request."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """A ready-to-serve memdb application."""
    settings = settings or Settings()
    metrics = Metrics(settings.memory_limit_mb * 1024 * 1024)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        actor = StoreActor(
            Database(TABLES), settings.queue_size, settings.queue_wait_seconds, observer=metrics.observe_command
        )
        metrics.watch_store(actor)
        app.state.callers = callers = CallerCache[Caller](frozenset({SESSIONS.name, USERS.name}))
        actor.watch(callers.watch)
        app.state.actor = actor
        app.state.store = store = StoreClient(actor)
        # Unknown emails are checked against this, so a failed login costs the same either way.
        app.state.dummy_hash = await hash_password(secrets.token_hex(16), settings.bcrypt_rounds)
        actor.start()
        app.state.supervisor = supervisor = Supervisor(
            actor,
            settings.memory_limit_mb * 1024 * 1024,
            interval=settings.memory_check_seconds,
            on_restart=metrics.actor_restarted,
        )
        supervisor.start()
        app.state.jobs = registry = JobRegistry(settings.jobs_keep_count, settings.jobs_keep_seconds)
        try:
            if settings.seed_file is not None:
                if settings.production:
                    logger.warning("MEMDB_SEED_FILE is ignored in production")
                else:
                    loaded = await load_seed(settings.seed_file, store, settings.bcrypt_rounds)
                    logger.info("loaded seed file %s: %s", settings.seed_file, loaded)
            await ensure_admin(store, settings)
            yield
        finally:
            await registry.close()
            await supervisor.stop()
            await actor.close()

    app = FastAPI(
        title="memdb",
        version=__version__,
        description="An in-memory database served over a REST API.",
        lifespan=lifespan,
        responses=_ERROR_RESPONSES,
        openapi_url=None,  # server.docs serves it, with the docs pages
        telemetry=NO_OPENTELEMETRY,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.started = time.monotonic()
    app.state.in_flight = InFlight()  # counted by ConcurrencyLimitMiddleware; background jobs give way to requests
    app.state.tokens = tokens = TokenService(settings.signing_key, settings.access_token_minutes * 60)
    errors.install(app)
    # Added flat, as app-level routes, not through include_router: FastAPI matches an included router
    # by walking its routes, then walks them again inside it, a fifth of a small request's cost here.
    # The routers carry their full prefixes and their own dependencies, so nothing is lost.
    # The busiest first: routes are tried in order.
    for router in (users.router, orders.router, auth.router, jobs.router, system.router, metrics_router):
        app.router.routes.extend(router.routes)
    docs.install(app, token_url=LOGIN_PATH)

    # Added innermost first: a request meets them bottom-up.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        path_limits={f"{API_PREFIX}/jobs": settings.import_max_bytes},
    )
    if settings.rate_limit_per_minute:
        app.add_middleware(
            RateLimitMiddleware,
            limiter=RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_max_clients),
            login_limiter=RateLimiter(
                settings.login_rate_limit_per_minute or settings.rate_limit_per_minute, settings.rate_limit_max_clients
            ),
            subject_of=tokens.subject,
        )
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_BYTES)
    app.add_middleware(ConcurrencyLimitMiddleware, max_requests=settings.max_connections, in_flight=app.state.in_flight)
    # Outside everything that may refuse a request (busy, rate limited, too big), so a browser can read the refusal.
    if settings.cors_origins:
        app.add_middleware(
            EnvelopeCORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=list(ALLOWED_METHODS),
            allow_headers=list(ALLOWED_HEADERS),
            expose_headers=list(EXPOSED_HEADERS),
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(ObserveMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)
    return app
