"""Datasets as NDJSON: one ``{"section": "users"|"orders", "record": {...}}`` object per line.

:class:`NdjsonCheck` is fed the text a chunk at a time, as it arrives: it
parses each complete line (orjson), checks its shape, counts each section's
records and notes whether some user comes after an order. :func:`ndjson_records`
then reads the records back from a file one line at a time: users before
orders whatever the order of the lines (a second pass over the file, only when
they were mixed). Blank lines are skipped; records are numbered per section in
the order they come.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import orjson

from server.ingest.document import DatasetError, NotJson
from server.ingest.records import SECTIONS, Record


def parse_line(line: bytes, number: int) -> tuple[str, Any]:
    """``(section, record)`` of one line (numbered from 1 in messages)."""
    try:
        item = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise NotJson(f"line {number} is not valid JSON") from None
    section = item.get("section") if isinstance(item, dict) else None
    if section not in SECTIONS or "record" not in item:
        raise DatasetError(f'line {number}: expected {{"section": "users"|"orders", "record": {{...}}}}')
    return section, item["record"]


class NdjsonCheck:
    """Checks NDJSON fed in chunks; afterwards ``counts`` and ``users_after_orders`` describe it."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(SECTIONS, 0)
        self.users_after_orders = False
        self._lines = 0
        self._partial: list[bytes] = []  # the pieces of a line not yet ended

    def feed(self, chunk: bytes) -> None:
        """Check every line the chunk completes."""
        if b"\n" not in chunk:
            self._partial.append(chunk)
            return
        first, *lines, rest = chunk.split(b"\n")
        self._line(b"".join([*self._partial, first]))
        for line in lines:
            self._line(line)
        self._partial = [rest] if rest else []

    def close(self) -> None:
        """The text has ended; its last line needs no newline."""
        if self._partial:
            self._line(b"".join(self._partial))
            self._partial = []

    def _line(self, line: bytes) -> None:
        self._lines += 1
        if not line.strip():
            return
        section, _ = parse_line(line, self._lines)
        self.counts[section] += 1
        if section == "users" and self.counts["orders"]:
            self.users_after_orders = True


def ndjson_records(file: IO[bytes], mixed: bool = True) -> Iterator[Record]:
    """The records of checked NDJSON in ``file``, users first; ``mixed=False`` (no user after an order) reads once."""
    counters = dict.fromkeys(SECTIONS, 0)
    for wanted in SECTIONS if mixed else (None,):
        file.seek(0)
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            section, data = parse_line(line, number)
            if wanted is None or section == wanted:
                yield Record(section, counters[section], data)
                counters[section] += 1
