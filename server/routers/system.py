"""Probes: ``/health`` (the process lives) and ``/ready`` (the store can take work)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from server import __version__
from server.errors import RETRY_AFTER_SECONDS, APIError
from server.models.common import Envelope
from server.responses import plain
from server.routers import API_PREFIX
from store.recovery import Recovery
from store.supervisor import Supervisor

router = APIRouter(prefix=API_PREFIX, tags=["system"])


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


@router.get("/health", response_model=Envelope[Health])
async def health(request: Request) -> Response:
    """Liveness: 200 while the process runs."""
    started: float = request.app.state.started
    data = {"status": "ok", "version": __version__, "uptime_seconds": round(time.monotonic() - started, 3)}
    return plain(data)


@router.get("/ready", response_model=Envelope[Readiness], responses={503: {"description": "Not ready"}})
async def ready(request: Request) -> Response:
    """Readiness: 200 while the store runs, has mailbox room and is under its memory limit, else 503."""
    supervisor: Supervisor = request.app.state.supervisor
    actor = supervisor.actor
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
