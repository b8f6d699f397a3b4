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

router = APIRouter(tags=["system"])


class Health(BaseModel):
    status: str
    version: str
    uptime_seconds: float


class Readiness(BaseModel):
    status: str
    queue_depth: int
    queue_capacity: int


@router.get("/health", response_model=Envelope[Health])
async def health(request: Request) -> Response:
    """Liveness: 200 while the process runs."""
    started: float = request.app.state.started
    data = {"status": "ok", "version": __version__, "uptime_seconds": round(time.monotonic() - started, 3)}
    return plain(data)


@router.get("/ready", response_model=Envelope[Readiness], responses={503: {"description": "Not ready"}})
async def ready(request: Request) -> Response:
    """Readiness: 200 while the store's actor runs and takes work, else 503."""
    actor = request.app.state.actor
    if not actor.running or actor.closed:
        raise APIError(
            503, "SERVICE_UNAVAILABLE", "the store is not running", headers={"Retry-After": RETRY_AFTER_SECONDS}
        )
    data: dict[str, Any] = {"status": "ready", "queue_depth": actor.depth, "queue_capacity": actor.capacity}
    return plain(data)
