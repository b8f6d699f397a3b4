"""The application factory: ``create_app(settings)`` wires routes, errors and the store.

The lifespan starts the storage actor (and loads the seed file, if any) before
the first request and closes it, draining its mailbox, after the last.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from server import __version__, errors
from server.middleware.request_id import RequestIdMiddleware
from server.models.common import ErrorEnvelope
from server.routers import orders, system, users
from server.seed import load_seed
from server.settings import Settings
from server.tables import TABLES
from store import Database, StoreActor, StoreClient

API_PREFIX = "/api/v1"
logger = logging.getLogger("memdb")

_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in {400: "Bad request or query", 404: "Not found", 422: "Validation error"}.items()
}


def create_app(settings: Settings | None = None) -> FastAPI:
    """A ready-to-serve memdb application."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        actor = StoreActor(Database(TABLES), settings.queue_size, settings.queue_wait_seconds)
        app.state.actor = actor
        app.state.store = StoreClient(actor)
        actor.start()
        try:
            if settings.seed_file is not None:
                if settings.production:
                    logger.warning("MEMDB_SEED_FILE is ignored in production")
                else:
                    loaded = await load_seed(settings.seed_file, app.state.store, settings.bcrypt_rounds)
                    logger.info("loaded seed file %s: %s", settings.seed_file, loaded)
            yield
        finally:
            await actor.close()

    app = FastAPI(
        title="memdb",
        version=__version__,
        description="An in-memory database served over a REST API.",
        lifespan=lifespan,
        responses=_ERROR_RESPONSES,
    )
    app.state.settings = settings
    app.state.started = time.monotonic()
    errors.install(app)
    for router in (users.router, orders.router, system.router):
        app.include_router(router, prefix=API_PREFIX)
    app.add_middleware(RequestIdMiddleware)
    return app
