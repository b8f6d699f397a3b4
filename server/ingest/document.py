"""Datasets in JSON documents, streamed with ijson: a check fed as bytes arrive, and a record reader.

The dataset sits at the top of the document (a seed file) or under one member
(an import request's ``data``). :class:`DocumentCheck` is fed the document a
chunk at a time (ijson's push interface, C backend): it checks that the text
is JSON and the dataset has the right shape, and counts each section's
records, without building any of them. Members outside the dataset (an import
request's ``type`` and ``mode``) are built, up to :data:`HEADER_EVENTS`, for
the caller to validate. :func:`document_records` then reads the records back
from a file one at a time, a pass per section, so they can stand in any order
in the document. Memory holds one block of the file and one record.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any

import ijson

from server.ingest.records import SECTIONS, Record

HEADER_EVENTS = 10_000
"""Most parser events the members outside the dataset may take (an import's are a handful)."""
_STARTS = frozenset({"start_map", "start_array", "string", "number", "boolean", "null"})
"""The events that begin a value: one per list element, whatever its type."""


class DatasetError(ValueError):
    """The input is not a dataset of the right shape; the message says what is wrong, in plain words."""


class NotJson(DatasetError):
    """The input is not valid JSON (a client's ``400``)."""


def _path(at: str, *keys: str) -> str:
    return ".".join(filter(None, (at, *keys)))


class DocumentCheck:
    """Checks a JSON document fed in chunks; counts its records and keeps its other top-level members.

    ``at`` names the top-level member holding the dataset (``""``: the
    document is the dataset). After :meth:`close`, ``counts`` has each
    section's number of records, ``found`` says whether the dataset member was
    there at all, and ``header`` holds the other top-level members.
    """

    def __init__(self, at: str = "") -> None:
        self.at = at
        self.counts = dict.fromkeys(SECTIONS, 0)
        self.found = not at
        self.header: dict[str, Any] = {}
        self._events = ijson.sendable_list()
        # Numbers as ijson's C parser reads them without use_float: any size of integer (with use_float it
        # refuses those past 64 bits as invalid JSON, which they are not).
        self._parser = ijson.parse_coro(self._events)
        self._sections = {_path(at, section): section for section in SECTIONS}
        self._items = {_path(at, section, "item"): section for section in SECTIONS}
        self._member: str | None = None  # the top-level member being read, when ``at`` is set
        self._builder: Any = None  # builds a header member
        self._header_events = 0

    def feed(self, chunk: bytes) -> None:
        """Check the next chunk of the document."""
        if not chunk:
            return  # to the parser, an empty chunk would mean the end
        try:
            self._parser.send(chunk)
        except ijson.JSONError:
            raise NotJson("not valid JSON") from None
        self._take()

    def close(self) -> None:
        """The document has ended: it must be complete."""
        try:
            self._parser.close()
        except ijson.JSONError:
            raise NotJson("not valid JSON") from None
        self._take()
        self._finish_member()

    def _take(self) -> None:
        for prefix, event, value in self._events:
            if self.at and not prefix:
                self._top(event, value)
            elif self._builder is not None:
                self._header_event(event, value)
            elif prefix in self._items:
                if event in _STARTS:
                    self.counts[self._items[prefix]] += 1
            elif prefix == self.at:
                self._dataset(event, value)
            elif prefix in self._sections and event not in ("start_array", "end_array"):
                raise DatasetError(f"'{self._sections[prefix]}' must be a list of records")
        del self._events[:]

    def _top(self, event: str, value: Any) -> None:
        """An event of the document itself, when the dataset is one of its members."""
        if event == "map_key":
            self._finish_member()
            if value == self.at:
                self.found = True
            elif not value:
                raise DatasetError("a member of the document has an empty name")
            else:
                self._member = value
                self._builder = ijson.ObjectBuilder()
        elif event == "end_map":
            self._finish_member()
        elif event != "start_map":
            raise DatasetError("expected a JSON object")

    def _header_event(self, event: str, value: Any) -> None:
        self._header_events += 1
        if self._header_events > HEADER_EVENTS:
            raise DatasetError(f"the members beside '{self.at}' are too large")
        self._builder.event(event, value)

    def _finish_member(self) -> None:
        if self._builder is not None and self._member is not None:
            self.header[self._member] = self._builder.value
        self._builder = self._member = None

    def _dataset(self, event: str, value: Any) -> None:
        """An event of the dataset's own object: it holds nothing but the sections."""
        if (event == "map_key" and value not in SECTIONS) or event not in ("start_map", "map_key", "end_map"):
            where = f"'{self.at}' must be an object" if self.at else "expected an object"
            raise DatasetError(f"{where} with 'users' and 'orders' lists")


def document_records(file: IO[bytes], at: str = "") -> Iterator[Record]:
    """The records of a checked document in ``file``: every user, then every order, one at a time."""
    for section in SECTIONS:
        file.seek(0)
        items = ijson.items(file, _path(at, section, "item"))
        for index, data in enumerate(items):
            yield Record(section, index, _floats(data))


def _floats(value: Any) -> Any:
    """``value`` with ijson's ``Decimal`` fractions as floats, as any other JSON parser gives them.

    Parsed with ``use_float`` instead, ijson's C parser would refuse integers past 64 bits as if
    they were not JSON; here they stay Python integers, and the models say what is out of range.
    """
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: _floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_floats(item) for item in value]
    return value
