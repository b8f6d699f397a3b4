"""The snapshot job: ask the store's snapshotter for a snapshot now and report what it wrote."""

from __future__ import annotations

from typing import Any

from server.jobs.registry import Job
from store.snapshotter import Snapshotter


class SnapshotJob:
    """A job body: one snapshot (after the one in progress, if any)."""

    def __init__(self, snapshotter: Snapshotter) -> None:
        self.snapshotter = snapshotter

    async def __call__(self, job: Job) -> dict[str, Any]:
        taken = await self.snapshotter.take()
        job.progress(taken.rows, taken.rows)
        return {
            "file": taken.path.name,
            "rows": taken.rows,
            "seconds": round(taken.seconds, 3),
            "freed_log_bytes": taken.freed_bytes,
        }
