"""The service's own routes: the index ``/``, and the probes ``/health`` (the process lives) and ``/ready``.

The index is where a newcomer (or a client) starts: the name and version, and
where the docs, the OpenAPI document, the probes and the metrics are. It names
paths, not URLs, so it never repeats a ``Host`` header back.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from server import __version__, docs
from server.errors import RETRY_AFTER_SECONDS, APIError
from server.models.common import Envelope
from server.paths import HEALTH_PATH, METRICS_PATH, READY_PATH
from server.responses import plain
from server.shared_store import SharedStore
from store.recovery import Recovery
from store.supervisor import Supervisor

router = APIRouter(tags=["system"])

INDEX_LINKS = {  # every one answers a GET with no token
    "docs": docs.SWAGGER_URL,
    "redoc": docs.REDOC_URL,
    "openapi": docs.OPENAPI_URL,
    "health": HEALTH_PATH,
    "ready": READY_PATH,
    "metrics": METRICS_PATH,
}


class Links(BaseModel):
    docs: str
    redoc: str
    openapi: str
    health: str
    ready: str
    metrics: str


class Index(BaseModel):
    name: str
    version: str
    description: str
    links: Links


class Health(BaseModel):
    status: str
    version: str
    uptime_seconds: float


class Readiness(BaseModel):
    status: str
    queue_depth: int
    queue_capacity: int
    memory_bytes: int
    memory_limit_bytes: int


@router.get("/", response_model=Envelope[Index])
async def index(request: Request) -> Response:
    """What this service is, and the paths of its docs, OpenAPI document, probes and metrics. No token needed.

    Cached like the OpenAPI document: both change only with a new version of the service.
    """
    data = {"name": "memdb", "version": __version__, "description": request.app.description, "links": INDEX_LINKS}
    return plain(data, cache_control=docs.OPENAPI_CACHE_CONTROL)


@router.get(HEALTH_PATH, response_model=Envelope[Health])
async def health(request: Request) -> Response:
    """Liveness: 200 while the process runs."""
    started: float = request.app.state.started
    data = {"status": "ok", "version": __version__, "uptime_seconds": round(time.monotonic() - started, 3)}
    return plain(data)


@router.get(READY_PATH, response_model=Envelope[Readiness], responses={503: {"description": "Not ready"}})
async def ready(request: Request) -> Response:
    """Readiness: 200 while the store runs, has mailbox room and is under its memory limit, else 503."""
    supervisor: Supervisor = request.app.state.supervisor
    actor = supervisor.actor
    shared: SharedStore | None = request.app.state.shared
    if shared is not None and not await shared.ready():
        message = "the store's Redis server cannot be reached"
        raise APIError(503, "SERVICE_UNAVAILABLE", message, headers={"Retry-After": RETRY_AFTER_SECONDS})
    recovery: Recovery | None = request.app.state.recovery
    log_trouble = None if recovery is None else recovery.log.broken or recovery.log.last_error
    recovering = request.app.state.store.recovering
    if recovering or not supervisor.healthy or log_trouble is not None:
        if recovering:
            reason = "the store is recovering its data"
        elif log_trouble is not None:
            reason = f"the data directory refuses writes: {log_trouble}"
        elif supervisor.memory_exhausted:
            reason = "the memory limit is reached"
        elif supervisor.saturated:
            reason = "the store's mailbox is full"
        else:
            reason = "the store is not running"
        raise APIError(503, "SERVICE_UNAVAILABLE", reason, headers={"Retry-After": RETRY_AFTER_SECONDS})
    data: dict[str, Any] = {
        "status": "ready",
        "queue_depth": actor.depth,
        "queue_capacity": actor.capacity,
        "memory_bytes": supervisor.memory_bytes,
        "memory_limit_bytes": supervisor.memory_limit_bytes,
    }
    return plain(data)
