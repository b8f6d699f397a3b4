"""Named snapshots in a snapshot file, so a restore logged after a compaction still finds its snapshot.

A snapshot file (:mod:`store.snapshot`) holds the live tables; after them come
the named snapshots (:mod:`store.snapshots`) of that moment, each table's
image as parts written in chunks: its keys, its rows, each unique map's two
lists and each index's flattened buckets. A row the live table held at that
moment — the very same tuple, which is what an unchanged row is — is written
as ``None`` and read back as the live row, so rows a snapshot shares with the
live tables are written once and shared again after loading; only rows changed
or deleted since the snapshot was taken are written out in full. Keys read back
are the live rows' key objects, and unique values (emails) whose holder still
has them are the live rows' value objects, as in a running process, so a
loaded snapshot costs what it cost before the restart.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from store.schema import Kind
from store.snapshots import NamedSnapshot
from store.table import Buckets, Row, Table, TableImage, image_of

if TYPE_CHECKING:
    from store.database import Database, Image

CHUNK = 10_000
MARK = "named"
"""First element of a named snapshot's record: ``(MARK, snapshot, table, part, chunk)``."""


def named_header(image: Image) -> list[dict[str, Any]]:
    """What the file's header says of each named snapshot, oldest first."""
    return [
        {
            "name": snapshot.name,
            "created_at": snapshot.created_at,
            "tables": {
                name: {
                    "rows": len(table),
                    "in_default_order": table.in_default_order,
                    "last_default": table.last_default,
                    "unique": list(table.unique),
                    "indexes": list(table.indexes),
                }
                for name, table in snapshot.images.items()
            },
        }
        for snapshot in image.named.values()
    ]


def named_records(image: Image) -> Iterator[tuple[str, str, str, str, list[Any]]]:
    """Every named snapshot's parts, in chunks; rows the live tables hold as ``None``."""
    for snapshot in image.named.values():
        for name, table in snapshot.images.items():
            parts: list[tuple[str, list[Any]]] = [("keys", table.keys)]
            parts.append(("rows", [None if same else row for row, same in _unchanged(image, name, table.rows)]))
            for column, (held, holders) in table.unique.items():  # holders first: they let held values be shared
                parts += [(f"unique.{column}.holders", holders), (f"unique.{column}.held", held)]
            for column, buckets in table.indexes.items():
                parts += [(f"index.{column}.values", buckets.values), (f"index.{column}.keys", buckets.keys)]
                parts.append((f"index.{column}.lengths", list(buckets.lengths)))
            for part, values in parts:
                for start in range(0, len(values), CHUNK):
                    yield MARK, snapshot.name, name, part, values[start : start + CHUNK]


def _unchanged(image: Image, table: str, rows: list[Row]) -> Iterator[tuple[Row, bool]]:
    """Each row with whether the live table held that very tuple, walking both by insertion number.

    Both lists ascend by ``seq`` (a table's rows are kept in insertion order),
    so one pass finds every shared row without a map of the live table; were
    the order ever different, a shared row would only be written out in full.
    """
    live = image.tables[table].rows
    position, end = 0, len(live)
    for row in rows:
        seq = row[0]
        while position < end and live[position][0] < seq:
            position += 1
        yield row, position < end and live[position] is row


class NamedLoader:
    """Collects a file's named snapshot parts, then builds the snapshots on the loaded live tables."""

    def __init__(self, header: list[dict[str, Any]], database: Database) -> None:
        self.header = header
        self.database = database
        self.parts: dict[tuple[str, str], dict[str, list[Any]]] = {}
        self._extra: dict[tuple[str, str], dict[Any, Any]] = {}

    def add(self, snapshot: str, table_name: str, part: str, chunk: list[Any]) -> None:
        parts = self.parts.setdefault((snapshot, table_name), {})
        table = self.database.tables[table_name]
        held = parts.setdefault(part, [])
        canonical = self._canonical(snapshot, table)
        if part == "keys" or part.endswith((".holders", ".keys")):
            held.extend(map(canonical, chunk))
        elif part == "rows":
            keys, start = parts["keys"], len(held)
            share = self.database.sharing(table)

            def share_key(values: list[Any]) -> None:
                share(values)
                values[table.pk_position] = canonical(values[table.pk_position])

            written = iter(table.revive([row for row in chunk if row is not None], share_key))
            held.extend(table.rows[keys[start + i]] if row is None else next(written) for i, row in enumerate(chunk))
        elif part.startswith("index.") and part.endswith(".values"):
            held.extend(map(self._index_value(table, part.split(".")[1]), chunk))
        elif part.startswith("unique.") and part.endswith(".held"):
            holders = parts.get(part.removesuffix(".held") + ".holders", [])
            live = self._unique_value(table, part.split(".")[1])
            start = len(held)
            if len(holders) >= start + len(chunk):
                held.extend(map(live, chunk, holders[start : start + len(chunk)]))
            else:  # written before holders came first
                held.extend(chunk)
        else:
            held.extend(chunk)

    def _canonical(self, snapshot: str, table: Table) -> Callable[[Any], Any]:
        """The live row's key object for ``key``; a key only snapshots hold, one object per snapshot table."""
        extra = self._extra.setdefault((snapshot, table.name), {})
        rows, position = table.rows, table.pk_position

        def canonical(key: Any) -> Any:
            live = rows.get(key)
            return live[position] if live is not None else extra.setdefault(key, key)

        return canonical

    def _unique_value(self, table: Table, column_name: str) -> Callable[[Any, Any], Any]:
        """The live row's own value object for a unique value its holder still has (else the value read back).

        A live table's unique map shares its keys with its rows, and so does a
        snapshot taken in a running process; read back, each would otherwise be
        a string of its own (an email per user).
        """
        rows, position = table.rows, table.position[column_name]

        def live(value: Any, holder: Any) -> Any:
            row = rows.get(holder)
            current = None if row is None else row[position]
            return current if current == value else value

        return live

    def _index_value(self, table: Table, column_name: str) -> Callable[[Any], Any]:
        column = next(column for column in table.columns if column.name == column_name)
        if column.kind is Kind.ENUM:
            return sys.intern
        targets = [self.database.tables[fk.target] for fk in table.spec.foreign_keys if fk.field == column_name]
        return _referenced(targets[0]) if targets else _same

    def finish(self) -> dict[str, NamedSnapshot]:
        """The named snapshots, oldest first; ``ValueError`` if a part is missing or of the wrong length."""
        snapshots = {}
        for described in self.header:
            images: dict[str, TableImage] = {}
            for name, info in described["tables"].items():
                parts = self.parts.get((described["name"], name), {})
                keys, rows = parts.get("keys", []), parts.get("rows", [])
                if len(keys) != info["rows"] or len(rows) != info["rows"]:
                    raise ValueError(f"named snapshot {described['name']}: {name} is not whole")
                unique = {
                    column: (parts.get(f"unique.{column}.held", []), parts.get(f"unique.{column}.holders", []))
                    for column in info["unique"]
                }
                indexes = {
                    column: Buckets(
                        parts.get(f"index.{column}.values", []),
                        parts.get(f"index.{column}.keys", []),
                        array("Q", parts.get(f"index.{column}.lengths", [])),
                    )
                    for column in info["indexes"]
                }
                images[name] = image_of(keys, rows, unique, indexes, info["in_default_order"], info["last_default"])
            snapshots[described["name"]] = NamedSnapshot(described["name"], described["created_at"], images)
        return snapshots


def _same(value: Any) -> Any:
    return value


def _referenced(target: Table) -> Callable[[Any], Any]:
    """The referenced live row's key object for a foreign key value (the value itself if that row is gone)."""
    rows, position = target.rows, target.pk_position

    def referenced(value: Any) -> Any:
        row = None if value is None else rows.get(value)
        return value if row is None else row[position]

    return referenced
