"""Where a table's rows and indexes live in Redis, and how a row is packed there.

Every key starts with the store's prefix. A row is one hash ``r:<table>:<pk>``
with fields ``s`` (insertion number), ``v`` (version: the two make its tag),
``d`` (the packed column values), ``o`` (its default-sort value, for the
insertion-order shortcut), ``x`` (the index entries it holds, so a script can
remove them without understanding the columns) and, while an import holds it
unseen, ``t`` (the transaction). Visible rows are in the sorted set
``all:<table>`` by insertion number; an equality index is one sorted set per
value, ``i:<table>:<column>:<value>``, by insertion number too, so a page of
it is a range and its total a cardinality; staged rows sit in the twin sets
``s:…`` until their commit moves them. A unique column is one hash
``u:<table>:<column>`` from the (case-folded) value to the primary key.

The packed form holds exactly the values the embedded table holds (see
:mod:`store.table`), as a JSON array: UUIDs as 32 hex digits, stored JSON as
text, integers past 64 bits as decimal text. Unpacking gives back the same row
tuple, so presenting, filtering and tagging are the embedded store's own code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from store.schema import Kind, TableSpec
from store.table import ROW_HEADER, Row, Table, fold

_INT64 = (-(2**63), 2**63 - 1)
_WIDE_KINDS = (Kind.INT, Kind.DECIMAL, Kind.DATETIME)


def key_text(kind: Kind, value: Any) -> str:
    """A column value as the text of an index key or primary key (one spelling per value of a kind)."""
    if kind is Kind.UUID:
        return f"{value:032x}"
    if kind is Kind.BOOL:
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def _pack_wide(value: Any) -> Any:
    return value if value is None or _INT64[0] <= value <= _INT64[1] else str(value)


def _pack_uuid(value: Any) -> Any:
    return None if value is None else f"{value:032x}"


def _pack_json(value: Any) -> Any:
    return None if value is None else value.decode()


class Layout:
    """Keys and packing for one table (built once per table, read by every command on it)."""

    def __init__(self, prefix: str, table: Table) -> None:
        spec = table.spec
        self.prefix = prefix
        self.table = table
        self.spec: TableSpec = spec
        self.name = spec.name
        self.kinds = {c.name: c.kind for c in spec.columns}
        self.pk_kind = self.kinds[spec.primary_key]
        self.all = f"{prefix}all:{self.name}"
        self.seq = f"{prefix}seq:{self.name}"
        self.disorder = f"{prefix}disorder:{self.name}"
        self.row_prefix = f"{prefix}r:{self.name}:"
        self.index_prefix = f"{prefix}i:"
        packers: list[tuple[int, Callable[[Any], Any]]] = []
        for position, column in enumerate(spec.columns):
            if column.kind is Kind.UUID:
                packers.append((position, _pack_uuid))
            elif column.kind is Kind.JSON:
                packers.append((position, _pack_json))
            elif column.kind in _WIDE_KINDS:
                packers.append((position, _pack_wide))
        self._packers = tuple(packers)
        # Unpacking runs for every row a page shows: by kind, in plain loops (no call per value).
        self._uuid_positions = tuple(p for p, pack in packers if pack is _pack_uuid)
        self._json_positions = tuple(p for p, pack in packers if pack is _pack_json)
        self._wide_positions = tuple(p for p, pack in packers if pack is _pack_wide)
        self._unique = tuple(
            (c.name, table.position[c.name], c.kind, c.name in table.folded) for c in spec.columns if c.unique
        )
        self._indexed = tuple(
            (name, table.position[name], self.kinds[name], name in table.folded) for name in table.indexes
        )
        self._ordered = tuple(
            (c.name, table.position[c.name]) for c in spec.columns if c.kind in (Kind.DECIMAL, Kind.DATETIME)
        )
        """Columns Redis can keep in order (their values are exact as a sorted set's double scores)."""
        self.default_position = table.position[spec.default_sort]
        self.default_numeric = self.kinds[spec.default_sort] in _WIDE_KINDS

    # -- keys ----------------------------------------------------------------

    def pk_text(self, pk: Any) -> str:
        return key_text(self.pk_kind, pk)

    def row_key(self, pk: Any) -> str:
        return self.row_prefix + key_text(self.pk_kind, pk)

    def index_suffix(self, column: str, value: Any) -> str:
        """The index set's name after ``i:`` (or ``s:`` for staged rows)."""
        if column in self.table.folded:
            value = fold(value)
        return f"{self.name}:{column}:{key_text(self.kinds[column], value)}"

    def index_key(self, column: str, value: Any) -> str:
        return self.index_prefix + self.index_suffix(column, value)

    def unique_hash(self, column: str) -> str:
        return f"{self.prefix}u:{self.name}:{column}"

    def unique_field(self, column: str, value: Any) -> str:
        if column in self.table.folded:
            value = fold(value)
        return key_text(self.kinds[column], value)

    # -- rows ----------------------------------------------------------------

    def pack(self, row: Row, stamped: Sequence[int] = ()) -> tuple[bytes, list[list[int]]]:
        """The packed row, and the byte spans ``[start, end)`` of the ``stamped`` row positions' values.

        A script may rewrite those spans in place (a timestamp, when the store's clock is ahead of ours).
        """
        values = list(row[ROW_HEADER:])
        for position, pack in self._packers:
            values[position] = pack(values[position])
        if not stamped:
            return orjson.dumps(values), []
        parts: list[bytes] = []
        spans: list[list[int]] = []
        length = 1  # the opening bracket
        wanted = {position - ROW_HEADER for position in stamped}
        for position, value in enumerate(values):
            part = orjson.dumps(value)
            if position in wanted:
                spans.append([length, length + len(part)])
            parts.append(part)
            length += len(part) + 1
        return b"[" + b",".join(parts) + b"]", spans

    def unpack(self, seq: bytes | int, version: bytes | int, data: bytes) -> Row:
        values = orjson.loads(data)
        for position in self._uuid_positions:
            value = values[position]
            if value is not None:
                values[position] = int(value, 16)
        for position in self._json_positions:
            value = values[position]
            if value is not None:
                values[position] = value.encode()
        for position in self._wide_positions:
            value = values[position]
            if type(value) is str:  # past 64 bits: packed as text
                values[position] = int(value)
        return (int(seq), int(version), *values)

    def orderable(self, column: str) -> bool:
        """Whether a page sorted by ``column`` alone can be a range of its ordered sets."""
        return any(name == column for name, _ in self._ordered)

    def entries(self, row: Row, stamped: Sequence[int] = ()) -> dict[str, Any]:
        """The index entries ``row`` holds: unique ``[hash, field]`` pairs, equality-set suffixes and
        ``[column, value or "", stamped]`` for the ordered sets (stamped: the script may put its time there)."""
        unique = [
            [self.unique_hash(name), key_text(kind, fold(row[pos]) if folded else row[pos])]
            for name, pos, kind, folded in self._unique
            if row[pos] is not None
        ]
        indexes = [
            f"{self.name}:{name}:{key_text(kind, fold(row[pos]) if folded else row[pos])}"
            for name, pos, kind, folded in self._indexed
            if row[pos] is not None
        ]
        ordered = [
            [name, "" if row[pos] is None else str(row[pos]), 1 if pos in stamped else 0] for name, pos in self._ordered
        ]
        return {"u": unique, "i": indexes, "z": ordered}

    def default_score(self, row: Row) -> str:
        """The default-sort value as text for the scripts' order check ("" when it cannot be compared)."""
        value = row[self.default_position]
        return str(value) if self.default_numeric and value is not None else ""

    def parents(self, row: Row) -> list[list[Any]]:
        """``[field, key text of the row it names, or False if null]`` for each foreign key (kept for pages)."""
        found: list[list[Any]] = []
        for fk in self.spec.foreign_keys:
            value = row[self.table.position[fk.field]]
            found.append([fk.field, False if value is None else key_text(self.kinds[fk.field], value)])
        return found

    def references(self, row: Row, tables: dict[str, Layout]) -> list[list[str]]:
        """``[field, target row key]`` for each foreign key the row sets."""
        found = []
        for fk in self.spec.foreign_keys:
            value = row[self.table.position[fk.field]]
            if value is not None:
                found.append([fk.field, tables[fk.target].row_key(value)])
        return found


def referrers(specs: Iterable[TableSpec]) -> dict[str, list[list[Any]]]:
    """For each table, ``[child table, field, cascades]`` of every foreign key naming it (for delete scripts)."""
    found: dict[str, list[list[Any]]] = {spec.name: [] for spec in specs}
    for spec in specs:
        for fk in spec.foreign_keys:
            found[fk.target].append([spec.name, fk.field, fk.cascade])
    return found


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
