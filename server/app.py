"""The application factory: ``create_app(settings)`` wires routes, errors, middleware and the store.

The lifespan starts the storage actor, loads the seed file (development only)
and the start-up admin before the first request. With ``MEMDB_DATA_DIR`` set it
first recovers the data directory, in the background while probes are answered
(``/ready`` says ``503`` and the store refuses requests until it is done), and
loads the seed file only into an empty directory. After the last request it
takes a final snapshot and closes the actor, draining its mailbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from server import __version__, docs, errors, openapi
from server.accounts import ensure_admin
from server.jobs.registry import JobRegistry
from server.jobs.upload import ImportSlots
from server.json_forms import json_forms
from server.metrics import Metrics
from server.metrics import router as metrics_router
from server.middleware.concurrency import InFlight
from server.middleware.edge import Edge, EdgeSettings
from server.middleware.rate_limit import RateLimits
from server.paths import API_PREFIX, LOGIN_PATH
from server.routers import auth, jobs, orders, snapshots, system, users
from server.routers.snapshots import take_start_snapshot
from server.security.auth import Caller
from server.security.callers import CallerCache
from server.security.passwords import LoginCheck
from server.security.tokens import TokenService
from server.seed import load_seed
from server.settings import Settings
from server.shared_store import SharedStore, rate_limiter
from server.tables import SESSIONS, TABLES, USERS
from store import CorruptLog, Database, StoreActor, StoreClient
from store.recovery import Recovery, open_data_directory
from store.snapshotter import Snapshotter
from store.supervisor import Supervisor

GZIP_MINIMUM_BYTES = 1024
logger = logging.getLogger("memdb")

NO_OPENTELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
"""memdb exports its own Prometheus metrics and JSON logs; FastAPI's OpenTelemetry hooks would only
cost a check of the global providers on every request."""


def recover(settings: Settings, database: Database) -> Recovery:
    """Open ``MEMDB_DATA_DIR``: rebuild ``database`` from it, or stop start-up with a one-line reason."""
    assert settings.data_dir is not None
    try:
        recovery = open_data_directory(settings.data_dir, database, settings.fsync, settings.recover)
    except (CorruptLog, OSError) as error:
        message = error.message if isinstance(error, CorruptLog) else f"{settings.data_dir}: {error}"
        raise RuntimeError(f"cannot open the data directory: {message}") from None
    logger.info(
        "recovered %d commands from %s in %.3fs (fsync %s)",
        recovery.records,
        settings.data_dir,
        recovery.seconds,
        settings.fsync,
    )
    for damage in recovery.cut:
        logger.warning("cut off damaged log data: %s", damage)
    return recovery


async def _open(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    """Recover the data directory (if any), start the store, load the seed file and the start-up admin.

    Without a data directory this runs before the first request, as always. With
    one it runs in the background while the store client refuses requests
    (``503``); if it fails the process exits with status 1, logging the reason.
    """
    actor: StoreActor = app.state.actor
    store: StoreClient = app.state.store
    try:
        recovery = None
        if settings.data_dir is not None:
            # In a thread: the event loop keeps answering the probes meanwhile.
            recovery = await asyncio.to_thread(recover, settings, actor.database)
            snapshots = Snapshotter(actor.database, recovery.log, settings.snapshot_log_bytes)
            actor.journal = recovery.log
            metrics.watch_persistence(recovery, snapshots)
            app.state.recovery, app.state.snapshotter = recovery, snapshots
        actor.start()
        app.state.supervisor.start()
        if app.state.snapshotter is not None:
            app.state.snapshotter.start()
        # Not held back while recovering: the seed and admin come first (on Redis nothing is recovered).
        starting = StoreClient(actor) if app.state.shared is None else store
        if settings.seed_file is not None:
            if recovery is not None and not recovery.empty:
                logger.info("MEMDB_SEED_FILE is ignored: %s already holds data", settings.data_dir)
            elif settings.production:
                logger.warning("MEMDB_SEED_FILE is ignored in production")
            else:
                loaded = await load_seed(settings.seed_file, starting, settings.bcrypt_rounds)
                logger.info("loaded seed file %s: %s", settings.seed_file, loaded)
        await ensure_admin(starting, settings)
        if settings.snapshot_on_start is not None:
            await take_start_snapshot(starting, settings.snapshot_on_start)
    except Exception as error:
        if settings.data_dir is None:
            raise  # start-up fails before serving, as it always has
        logger.critical("start-up failed: %s", str(error) or type(error).__name__)
        # Nothing was served but probes (the store refused every request), so stop at once and
        # non-zero, as a failed start-up before listening does; the OS releases the directory's lock.
        logging.shutdown()
        os._exit(1)
    store.recovering = False


async def _final_snapshot(snapshots: Snapshotter) -> None:
    """At a clean shutdown the next start loads one snapshot and replays nothing."""
    try:
        await snapshots.take()
    except Exception:
        logger.exception("the shutdown snapshot failed; the log still holds everything")


def create_app(settings: Settings | None = None) -> FastAPI:
    """A ready-to-serve memdb application."""
    settings = settings or Settings()
    metrics = Metrics(settings.memory_limit_mb * 1024 * 1024)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(TABLES, forms=json_forms(settings.presented_cache_mb * 1024 * 1024))
        actor = StoreActor(database, settings.queue_size, settings.queue_wait_seconds, observer=metrics.observe_command)
        metrics.watch_store(actor)
        app.state.callers = callers = CallerCache[Caller](frozenset({SESSIONS.name, USERS.name}))
        actor.watch(callers.watch)
        app.state.actor = actor
        # MEMDB_STORE_URL: the data lives in Redis, shared by every node (the actor then holds nothing).
        app.state.shared = shared = None if settings.store_url is None else SharedStore(settings.store_url, callers)
        app.state.store = store = StoreClient(actor) if shared is None else shared.store
        app.state.login_check = await LoginCheck.create(settings.bcrypt_rounds)
        app.state.supervisor = supervisor = Supervisor(
            actor,
            settings.memory_limit_mb * 1024 * 1024,
            interval=settings.memory_check_seconds,
            on_restart=metrics.actor_restarted,
        )
        app.state.jobs = registry = JobRegistry(settings.jobs_keep_count, settings.jobs_keep_seconds)
        opening = None
        try:
            if settings.data_dir is None:
                await _open(app, settings, metrics)
            else:
                # Serve /health (200) and /ready (503) while the data directory is read back, so a
                # liveness probe does not kill a process that is busy recovering a large dataset.
                store.recovering = True
                opening = asyncio.get_running_loop().create_task(_open(app, settings, metrics), name="memdb-open")
            app.state.opening = opening
            yield
        finally:
            if opening is not None and not opening.done():
                opening.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await opening
            await registry.close()
            snapshots: Snapshotter | None = app.state.snapshotter
            if snapshots is not None:
                await snapshots.stop()
                await _final_snapshot(snapshots)
            await supervisor.stop()
            await actor.close()
            if shared is not None:
                await shared.close()

    app = FastAPI(
        title="memdb",
        version=__version__,
        description="An in-memory database served over a REST API.",
        lifespan=lifespan,
        openapi_url=None,  # server.docs serves it, with the docs pages
        telemetry=NO_OPENTELEMETRY,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.recovery = app.state.snapshotter = None  # set by the lifespan when MEMDB_DATA_DIR is
    app.state.opening = None  # the background start-up task while MEMDB_DATA_DIR is recovered
    app.state.started = time.monotonic()
    app.state.import_slots = ImportSlots(settings.import_concurrency)
    # Counted (and bounded) at the edge; background jobs give way to requests.
    app.state.in_flight = InFlight(settings.max_connections)
    app.state.tokens = tokens = TokenService(settings.signing_key, settings.access_token_minutes * 60)
    errors.install(app)
    # Added flat, as app-level routes, not through include_router: FastAPI matches an included router
    # by walking its routes, then walks them again inside it, a fifth of a small request's cost here.
    # The routers carry their full prefixes and their own dependencies, so nothing is lost.
    # The busiest first: routes are tried in order.
    routers = (users.router, orders.router, auth.router, jobs.router, snapshots.router, system.router, metrics_router)
    for router in routers:
        app.router.routes.extend(router.routes)
    openapi.install(app)
    docs.install(app, token_url=LOGIN_PATH)

    # One layer for every check and header at the edge (server.middleware.edge), not one per concern.
    rate_limits = None
    if settings.rate_limit_per_minute:
        login_limit = settings.login_rate_limit_per_minute or settings.rate_limit_per_minute
        rate_limits = RateLimits(
            rate_limiter(settings, settings.rate_limit_per_minute, "requests"),
            rate_limiter(settings, login_limit, "logins"),
            tokens,
        )
    edge = EdgeSettings(
        max_body_bytes=settings.max_body_bytes,
        path_body_limits={f"{API_PREFIX}/jobs": settings.import_max_bytes},
        body_timeout_seconds=settings.body_timeout_seconds,
        public_url=settings.public_url,
        allowed_hosts=settings.allowed_hosts,
        cors_origins=settings.cors_origins,
        gzip_minimum_bytes=GZIP_MINIMUM_BYTES,
    )
    app.add_middleware(Edge, settings=edge, in_flight=app.state.in_flight, rate_limits=rate_limits, metrics=metrics)
    return app
