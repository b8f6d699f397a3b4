"""Records of a dataset: the sections, a record's name in messages, batches of one section, a refused record.

Every message about a record names it the same way, wherever it came from:
its section, its place in that section and its ``id`` when it has one
(``orders[25000] (id …)``), then what is wrong with it in plain words.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from server.tables import ORDERS, USERS

SECTIONS = ("users", "orders")
"""The sections a dataset may have, in the order they are loaded (orders reference users)."""
TABLE_OF = {"users": USERS.name, "orders": ORDERS.name}


def describe(section: str, index: int, data: Any) -> str:
    """A record's name: ``users[3] (id …)``."""
    record_id = data.get("id") if isinstance(data, dict) else None
    return f"{section}[{index}]" + (f" (id {record_id})" if record_id else "")


class Record(NamedTuple):
    """One record as read: its section, its place in that section and the parsed JSON."""

    section: str
    number: int
    """The record's place in its section, from 0."""
    data: Any

    @property
    def name(self) -> str:
        return describe(self.section, self.number, self.data)


class RecordError(Exception):
    """One record was refused; ``str()`` is ``"<its name>: <the reason>"``."""

    def __init__(self, section: str, index: int, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.section = section
        self.index = index
        self.name = name
        self.reason = reason

    @classmethod
    def of(cls, record: Record, reason: str) -> RecordError:
        return cls(record.section, record.number, record.name, reason)


def batches(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    """``records`` in runs of at most ``size``, each of one section."""
    batch: list[Record] = []
    for record in records:
        if batch and (len(batch) >= size or record.section != batch[0].section):
            yield batch
            batch = []
        batch.append(record)
    if batch:
        yield batch
