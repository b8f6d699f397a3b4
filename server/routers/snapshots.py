"""``/snapshots``: take, list, restore and delete named snapshots of the data, for test fixtures (admins only).

A snapshot remembers users and orders (and, if asked, sessions) at one moment;
a restore puts them back exactly, tags included, in one store command. The
work is the store's (:mod:`store.snapshots`); this maps resources to tables.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from server.deps import StoreDep
from server.jobs.registry import Pacer
from server.middleware.concurrency import InFlight
from server.models.common import CollectionEnvelope, Envelope, ErrorEnvelope
from server.models.snapshot import SNAPSHOT_NAME_PATTERN, SnapshotCreate, SnapshotPublic
from server.paths import API_PREFIX
from server.responses import collection, plain
from server.security.access import AuthenticateFirstRoute
from server.security.auth import AdminOnly
from server.tables import ORDERS, SESSIONS, USERS
from store import Conflict, Page, StoreClient
from store.codecs import micros_to_text
from store.snapshots import SnapshotInfo

logger = logging.getLogger("memdb")
router = APIRouter(
    prefix=f"{API_PREFIX}/snapshots", tags=["snapshots"], dependencies=[AdminOnly], route_class=AuthenticateFirstRoute
)

RESOURCES = {USERS.name: "users", ORDERS.name: "orders", SESSIONS.name: "sessions"}
"""Store table -> the resource name clients know it by."""
NameInPath = Annotated[str, Path(pattern=SNAPSHOT_NAME_PATTERN, description="The snapshot's name.")]


def _public(info: SnapshotInfo) -> dict[str, Any]:
    rows: dict[str, int | None] = {"users": None, "orders": None, "sessions": None}
    rows.update({RESOURCES[table]: count for table, count in info.rows.items()})
    return {
        "name": info.name,
        "created_at": micros_to_text(info.created_at),
        "rows": rows,
        "memory_bytes": info.memory_bytes,
    }


async def take_start_snapshot(store: StoreClient, name: str) -> None:
    """``MEMDB_SNAPSHOT_ON_START``: snapshot users and orders once the seed and the start-up admin are in.

    A snapshot of that name already there (replayed from a data directory's log) is kept, not replaced.
    """
    try:
        await store.take_snapshot(name, (USERS.name, ORDERS.name))
    except Conflict:
        logger.info("snapshot %s already exists; kept", name)
    else:
        logger.info("took snapshot %s", name)


@router.post(
    "",
    status_code=201,
    response_model=Envelope[SnapshotPublic],
    responses={
        409: {"model": ErrorEnvelope, "description": "A snapshot of that name exists"},
        507: {"model": ErrorEnvelope, "description": "Taking it would pass the memory limit"},
    },
)
async def take_snapshot(body: SnapshotCreate, request: Request, store: StoreDep) -> Response:
    """Remember users and orders (and sessions if asked) as they are now; 409 if the name is taken."""
    tables = (USERS.name, ORDERS.name, SESSIONS.name) if body.sessions else (USERS.name, ORDERS.name)
    info = await store.take_snapshot(body.name, tables)
    response = plain(_public(info), 201)
    response.headers["Location"] = request.url_for("get_snapshot", name=info.name).path
    return response


@router.get("", response_model=CollectionEnvelope[list[SnapshotPublic]])
async def list_snapshots(request: Request, store: StoreDep) -> Response:
    """Every snapshot, oldest first."""
    found = [_public(info) for info in await store.snapshots()]
    return collection(request, Page(found, len(found), 1, max(len(found), 1)))


@router.get("/{name}", response_model=Envelope[SnapshotPublic])
async def get_snapshot(name: NameInPath, store: StoreDep) -> Response:
    """One snapshot: when it was taken, its rows per table and the memory it holds."""
    return plain(_public(await store.describe_snapshot(name)))


@router.post(
    "/{name}/restore",
    response_model=Envelope[SnapshotPublic],
    responses={409: {"model": ErrorEnvelope, "description": "An import is in progress"}},
)
async def restore_snapshot(name: NameInPath, request: Request, store: StoreDep) -> Response:
    """Put every table the snapshot covers back exactly as it was, at once; 409 while an import runs."""
    in_flight: InFlight = request.app.state.in_flight
    # The new tables are built before the one command that swaps them in, giving way to other requests meanwhile.
    pacer = Pacer(lambda: in_flight.count > 1, burst=0.0005)
    return plain(_public(await store.restore_snapshot(name, pacer.breathe)))


@router.delete("/{name}", status_code=204, response_class=Response)
async def delete_snapshot(name: NameInPath, store: StoreDep) -> Response:
    """Forget a snapshot and free what it holds."""
    await store.drop_snapshot(name)
    return Response(status_code=204)
