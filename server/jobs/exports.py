"""Export as a background job: a consistent snapshot, rendered in slices.

One store command takes the snapshot — every row of the chosen tables as of one
moment (rows are immutable, so the snapshot stays consistent while writes go
on) — and the job then renders it outside the actor, a slice at a time, as a
JSON document in the seed/import format or as NDJSON lines
(``{"section": "users", "record": {...}}``). Password hashes are included only
when asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import orjson

from server.ingest.records import TABLE_OF
from server.jobs.registry import Job, Pacer
from store import StoreClient

SLICE = 100
"""Rows rendered between two looks at whether others need the event loop."""
Format = Literal["json", "ndjson"]
MEDIA_TYPES = {"json": "application/json", "ndjson": "application/x-ndjson"}


class Exporter:
    """Runs one export job; the rendered file becomes the job's payload."""

    def __init__(
        self,
        store: StoreClient,
        sections: Sequence[str],
        output: Format,
        include_password_hashes: bool,
        pacer: Pacer | None = None,
    ) -> None:
        self.store = store
        self.sections = [section for section in TABLE_OF if section in sections]
        self.output = output
        self.include_password_hashes = include_password_hashes
        self.pacer = pacer or Pacer()

    async def __call__(self, job: Job) -> dict[str, Any]:
        tables = tuple(TABLE_OF[section] for section in self.sections)
        snapshot = await self.store.snapshot(tables, reveal=self.include_password_hashes)
        counts = {section: len(snapshot[TABLE_OF[section]]) for section in self.sections}
        job.progress(0, sum(counts.values()))
        parts: list[bytes] = []
        done = 0
        for section in self.sections:
            rows = snapshot[TABLE_OF[section]]
            rendered: list[bytes] = []
            for start in range(0, len(rows), SLICE):
                rendered.extend(self._render(section, record) for record in rows.present(start, start + SLICE))
                done += min(SLICE, len(rows) - start)
                job.progress(done)
                await self.pacer.breathe()  # let ordinary requests run between slices
            parts.append(self._join(section, rendered))
        job.payload = self._document(parts)
        job.media_type = MEDIA_TYPES[self.output]
        return {"counts": counts, "format": self.output, "bytes": len(job.payload)}

    def _render(self, section: str, record: dict[str, Any]) -> bytes:
        if self.output == "ndjson":
            return orjson.dumps({"section": section, "record": record})
        return orjson.dumps(record)

    def _join(self, section: str, rendered: list[bytes]) -> bytes:
        if self.output == "ndjson":
            return b"".join(line + b"\n" for line in rendered)
        return b'"' + section.encode() + b'":[' + b",".join(rendered) + b"]"

    def _document(self, parts: list[bytes]) -> bytes:
        if self.output == "ndjson":
            return b"".join(parts)
        return b"{" + b",".join(parts) + b"}"
