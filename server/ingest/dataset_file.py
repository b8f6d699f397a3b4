"""The seed's fast reader: a dataset file (``{"users": [...], "orders": [...]}``) one record at a time.

A million-record file is hundreds of megabytes of JSON; parsed whole it is
gigabytes of dicts. :func:`stream_records` reads it in blocks and parses one
record at a time, so memory holds one block and one record, whatever the
file's size.

How a record is cut out of the stream: every element of the two lists is an
object, and an object element can only end at a ``}`` followed by ``,`` and
the next element's ``{``, or by the list's closing ``]``. The reader finds the
next such candidate and hands the slice to orjson. A candidate that is not the
real end (a ``}`` of a nested object, or one inside a string) leaves the slice
unbalanced or inside an open string, which never parses, so the reader
extends the slice to the next candidate. The first slice that parses is
exactly the element. orjson does all the parsing; nothing here interprets
JSON text beyond whitespace, brackets and the section keys.

Anything else a valid JSON document may contain — a list element that is not
an object, ``orders`` before ``users``, a section given twice — raises
:class:`Irregular`; the caller then reads the file with the general streaming
reader (:mod:`server.ingest.document`, ijson), which takes every document and
words every error, at about half the speed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from server.ingest.records import SECTIONS, Record

BLOCK_BYTES = 1 << 20
_WHITESPACE = b" \t\r\n"
_ELEMENT_END = re.compile(rb"\}[ \t\r\n]*(?:,[ \t\r\n]*(?=\{)|\])")
_KEY = re.compile(rb'"((?:[^"\\]|\\.)*)"[ \t\r\n]*:')


class Irregular(Exception):
    """The file is not in the shape this reader handles; read it with :mod:`server.ingest.document` instead."""


def stream_records(path: Path, block_bytes: int = BLOCK_BYTES) -> Iterator[Record]:
    """The file's records, section by section in file order, read incrementally."""
    with path.open("rb") as file:
        yield from _Reader(file, block_bytes).records()


class _Reader:
    def __init__(self, file: BinaryIO, block_bytes: int) -> None:
        self.file = file
        self.block_bytes = block_bytes
        self.data = b""
        self.pos = 0
        self.eof = False

    def records(self) -> Iterator[Record]:
        self._expect(b"{")
        seen: list[str] = []
        if self._peek() == b"}":
            self.pos += 1
        else:
            while True:
                section = self._key()
                if section not in SECTIONS or section in seen or SECTIONS.index(section) < len(seen):
                    raise Irregular(section)  # unknown, repeated, or orders before users
                seen.append(section)
                self._expect(b"[")
                yield from self._elements(section)
                if self._next() == b"}":
                    break
                self.pos -= 1
                self._expect(b",")
        if self._peek() != b"":
            raise Irregular("content after the document")

    def _elements(self, section: str) -> Iterator[Record]:
        if self._peek() == b"]":
            self.pos += 1
            return
        index = 0
        while True:
            if self._peek() != b"{":
                raise Irregular(f"{section}[{index}] is not an object")
            record, closing = self._object()
            yield Record(section, index, record)
            index += 1
            if closing:
                return

    def _object(self) -> tuple[Any, bool]:
        """Parse the object at ``pos``; return it and whether the list ended right after it."""
        searched = 0  # bytes of the object already known not to hold its end
        while True:
            match = _ELEMENT_END.search(self.data, self.pos + searched)
            if match is None:
                if not self._fill():  # keeps the object's start at ``pos``
                    raise Irregular("unterminated list")
                continue
            try:
                record = orjson.loads(self.data[self.pos : match.start() + 1])
            except orjson.JSONDecodeError:
                searched = match.start() + 1 - self.pos
                continue
            self.pos = match.end()
            return record, self.data[match.end() - 1 : match.end()] == b"]"

    def _key(self) -> str:
        self._peek()
        while True:
            match = _KEY.match(self.data, self.pos)
            if match is not None:
                break
            if not self._fill():
                raise Irregular("expected a section name")
        try:
            key = orjson.loads(self.data[self.pos : match.start(1) + len(match.group(1)) + 1])
        except orjson.JSONDecodeError:
            raise Irregular("bad section name") from None
        self.pos = match.end()
        return str(key)

    def _expect(self, token: bytes) -> None:
        if self._next() != token:
            raise Irregular(f"expected {token.decode()}")

    def _next(self) -> bytes:
        token = self._peek()
        self.pos += len(token)
        return token

    def _peek(self) -> bytes:
        """The next non-whitespace byte (not consumed), or ``b""`` at the end of the file."""
        while True:
            while self.pos < len(self.data) and self.data[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.data):
                return self.data[self.pos : self.pos + 1]
            if not self._fill():
                return b""

    def _fill(self) -> bool:
        """Read another block, dropping what was consumed; False at the end of the file."""
        if self.eof:
            return False
        block = self.file.read(self.block_bytes)
        if not block:
            self.eof = True
            return False
        self.data = self.data[self.pos :] + block
        self.pos = 0
        return True
