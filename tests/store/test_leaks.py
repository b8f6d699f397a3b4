"""Memory stays flat under churn: 50,000 create/delete cycles through the client leave nothing behind.

Cycles alternate between a user-like parent (a unique, case-folded email) and
an order-like child (unique label and JSON values, a foreign-key bucket, a
status bucket, an update that moves it between buckets); each is created and
then deleted. Over all 50,000 cycles the number of live allocator blocks must
not grow (``sys.getallocatedblocks``: no per-call cost, so the cycles run at
full speed); over the last 8,000, tracemalloc must see the store's bytes stay
put. A leak of one row per cycle would be hundreds of thousands of blocks and
megabytes; the tolerances allow for interpreter caches only.

The cycles run in a process of their own (``python -m tests.store.test_leaks``
prints what it measured): a heap that holds only the store, not the test
runner's reports and captured output, and no coverage tracer, which would
triple the time of 50,000 cycles and count allocations of its own.
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

from store import Database, StoreActor, StoreClient
from tests.store.conftest import SPECS, uid

CYCLES = 50_000
TRACED = 10_000
TRACE_WARM_UP = 2_000
WARM_UP = 5_000
BLOCK_TOLERANCE = 2_000
BYTE_TOLERANCE = 64 * 1024


def settle(db: Database) -> None:
    """Collect garbage and let the pools forget what no row holds (they do so on their own as they grow)."""
    for table in db.tables.values():
        table.sweep_pools()
    gc.collect()


async def measure() -> dict[str, Any]:
    """Run the cycles; what the test checks, as JSON-ready values."""
    db = Database(SPECS)
    actor = StoreActor(db)
    actor.start()
    store = StoreClient(actor)
    keeper = uid(1)
    await store.insert("parent", {"id": keeper, "email": "keeper@example.com", "name": "Keeper"})

    async def cycle(n: int) -> None:
        if n % 2:
            parent = uid(10_000_000 + n)
            await store.insert("parent", {"id": parent, "email": f"U{n}@Example.com", "name": f"User {n}"})
            await store.delete("parent", parent)
            return
        child = uid(20_000_000 + n)
        values = {
            "id": child,
            "parent_id": keeper,
            "label": f"order {n}",
            "status": ("pending", "paid", "shipped")[n % 3],
            "amount": f"{n % 1000}.{n % 100:02d}",
            "address": {"city": f"City {n}", "zip": str(n)},
            "metadata": {"n": n},
        }
        await store.insert("child", values)
        await store.update("child", child, {"status": "cancelled"})
        await store.delete("child", child)

    for n in range(WARM_UP):  # interpreter caches, free lists and dict sizes reach their working size
        await cycle(n)
    try:
        settle(db)
        blocks_before = sys.getallocatedblocks()
        for n in range(WARM_UP, WARM_UP + CYCLES - TRACED):
            await cycle(n)
        tracemalloc.start()
        # Tables and indexes re-allocate as they churn; run until they have done so under tracing,
        # else a table allocated before tracing (never counted) and its traced successor look like growth.
        traced_from = WARM_UP + CYCLES - TRACED
        for n in range(traced_from, traced_from + TRACE_WARM_UP):
            await cycle(n)
        settle(db)
        bytes_before = tracemalloc.get_traced_memory()[0]
        for n in range(traced_from + TRACE_WARM_UP, WARM_UP + CYCLES):
            await cycle(n)
        settle(db)
        bytes_grown = tracemalloc.get_traced_memory()[0] - bytes_before
        tracemalloc.stop()
        settle(db)
        blocks_grown = sys.getallocatedblocks() - blocks_before
    finally:
        tracemalloc.stop()
        await actor.close()

    return {
        "counts": db.counts(),
        "child_buckets_empty": all(not buckets for buckets in db.table("child").indexes.values()),
        "blocks_grown": blocks_grown,
        "bytes_grown": bytes_grown,
    }


def test_create_delete_cycles_leave_the_store_the_size_it_was() -> None:
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-m", "tests.store.test_leaks"], cwd=root, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr
    measured = json.loads(run.stdout)

    assert measured["counts"] == {"parent": 1, "child": 0, "note": 0}
    assert measured["child_buckets_empty"]
    blocks_grown, bytes_grown = measured["blocks_grown"], measured["bytes_grown"]
    assert blocks_grown < BLOCK_TOLERANCE, f"{blocks_grown:,} more live blocks after {CYCLES:,} cycles"
    assert bytes_grown < BYTE_TOLERANCE, f"grew {bytes_grown:,} bytes over the last {TRACED - TRACE_WARM_UP:,} cycles"


if __name__ == "__main__":
    print(json.dumps(asyncio.run(measure())))
