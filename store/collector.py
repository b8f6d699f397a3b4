"""Pausing Python's cyclic garbage collector around work that makes many objects holding no cycles.

Making hundreds of thousands of containers (an ordered index's entries, a
snapshot's index buckets) sets off collections, and the oldest generation's
walks every object of the database: they tripled such work at 50,000 rows.
None of those objects can form a cycle, so nothing is lost by waiting.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic collection inside the block (the collector's previous state is put back after)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
