"""One table: compact rows, the primary-key map and the table's own indexes.

A row is a tuple ``(seq, version, col0, col1, ...)`` of encoded values: ``seq``
is the insertion number (ties in every sort are broken by it, so paging is
stable), ``version`` counts the row's writes (it makes up the row's tag).
Rows are immutable; a write replaces the tuple, so a row handed to a reader is
a consistent snapshot. The table keeps its unique and secondary indexes in
step with every add, replace and remove; integrity across tables (foreign
keys) is the database's job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from store.codecs import Codec, codec_for
from store.errors import Conflict, InvalidValue
from store.schema import Column, TableSpec

Row = tuple[Any, ...]
ROW_HEADER = 2  # seq, version


def fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


class Table:
    """Rows of one :class:`TableSpec`, with a primary-key map and indexes."""

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.columns: tuple[Column, ...] = spec.columns
        self.codecs: dict[str, Codec] = {c.name: codec_for(c) for c in spec.columns}
        self.position: dict[str, int] = {c.name: i + ROW_HEADER for i, c in enumerate(spec.columns)}
        self.pk_position = self.position[spec.primary_key]
        self.rows: dict[Any, Row] = {}
        self.unique: dict[str, dict[Any, Any]] = {c.name: {} for c in spec.columns if c.unique}
        indexed = {c.name for c in spec.columns if c.indexed} | {fk.field for fk in spec.foreign_keys}
        self.indexes: dict[str, dict[Any, set[Any]]] = {name: {} for name in sorted(indexed)}
        self.folded = frozenset(c.name for c in spec.columns if c.case_insensitive)
        self.every_column = tuple((c.name, self.position[c.name], self.codecs[c.name].present) for c in spec.columns)
        self.visible = tuple(entry for entry, c in zip(self.every_column, spec.columns, strict=True) if not c.hidden)
        self.default_position = self.position[spec.default_sort]
        # True while rows were inserted in default-sort order; lets a query walk
        # the insertion order instead of sorting.
        self.in_default_order = True
        self._last_default: Any = None
        self._next_seq = 0
        self.rows_examined = 0

    def __len__(self) -> int:
        return len(self.rows)

    def encode(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Encode ``values`` column by column; unknown names are refused."""
        encoded: dict[str, Any] = {}
        for name, value in values.items():
            codec = self.codecs.get(name)
            if codec is None:
                raise InvalidValue(self.name, name, "no such column")
            if value is None:
                if codec.column.auto is not None:
                    continue
                if not codec.column.nullable:
                    raise InvalidValue(self.name, name, "may not be null")
                encoded[name] = None
                continue
            try:
                encoded[name] = codec.encode(value)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise InvalidValue(self.name, name, str(exc)) from None
        return encoded

    def new_row(self, encoded: Mapping[str, Any]) -> Row:
        values: list[Any] = [self._next_seq, 1]
        for column in self.columns:
            value = encoded.get(column.name)
            if value is None and not column.nullable:
                raise InvalidValue(self.name, column.name, "is required")
            values.append(value)
        return tuple(values)

    def changed_row(self, row: Row, encoded: Mapping[str, Any]) -> Row:
        values = list(row)
        values[1] = row[1] + 1
        for name, value in encoded.items():
            values[self.position[name]] = value
        return tuple(values)

    def check_unique(self, row: Row, previous: Row | None = None) -> None:
        """Raise :class:`Conflict` if ``row`` would duplicate a key held by another row."""
        pk = row[self.pk_position]
        if previous is None and pk in self.rows:
            raise Conflict(
                self.name,
                self.spec.primary_key,
                f"{self.name} {self.codecs[self.spec.primary_key].present(pk)} already exists",
            )
        for name, index in self.unique.items():
            key = self._key(name, row)
            if key is None:
                continue
            holder = index.get(key)
            if holder is not None and holder != pk:
                raise Conflict(self.name, name, f"a {self.name} with this {name} already exists")

    def add(self, row: Row) -> None:
        pk = row[self.pk_position]
        self.rows[pk] = row
        self._next_seq = max(self._next_seq, row[0] + 1)
        default = row[self.default_position]
        if len(self.rows) > 1 and (default is None or self._last_default is None or default < self._last_default):
            self.in_default_order = False
        self._last_default = default
        for name, index in self.unique.items():
            key = self._key(name, row)
            if key is not None:
                index[key] = pk
        for name, buckets in self.indexes.items():
            buckets.setdefault(self._key(name, row), set()).add(pk)

    def remove(self, row: Row) -> None:
        pk = row[self.pk_position]
        del self.rows[pk]
        for name, index in self.unique.items():
            key = self._key(name, row)
            if key is not None:
                index.pop(key, None)
        for name, buckets in self.indexes.items():
            value = self._key(name, row)
            bucket = buckets[value]
            bucket.discard(pk)
            if not bucket:
                del buckets[value]
        if not self.rows:
            self.in_default_order = True
            self._last_default = None

    def replace(self, old: Row, new: Row) -> None:
        pk = old[self.pk_position]
        self.rows[pk] = new
        for name, index in self.unique.items():
            old_key, new_key = self._key(name, old), self._key(name, new)
            if old_key != new_key:
                if old_key is not None:
                    index.pop(old_key, None)
                if new_key is not None:
                    index[new_key] = pk
        if old[self.default_position] != new[self.default_position]:
            self.in_default_order = False
        for name, buckets in self.indexes.items():
            old_value, new_value = self._key(name, old), self._key(name, new)
            if old_value != new_value:
                bucket = buckets[old_value]
                bucket.discard(pk)
                if not bucket:
                    del buckets[old_value]
                buckets.setdefault(new_value, set()).add(pk)

    def lookup(self, name: str, value: Any) -> set[Any] | None:
        """Primary keys whose ``name`` equals ``value``, if an index answers that."""
        if name == self.spec.primary_key:
            return {value} if value in self.rows else set()
        key = fold(value) if name in self.folded else value
        unique = self.unique.get(name)
        if unique is not None:
            holder = unique.get(key)
            return set() if holder is None else {holder}
        buckets = self.indexes.get(name)
        if buckets is not None:
            return buckets.get(key, set())
        return None

    def present(self, row: Row, reveal: bool = False) -> dict[str, Any]:
        """The row as JSON-ready values, hidden columns left out unless ``reveal``."""
        columns = self.every_column if reveal else self.visible
        return {name: (None if row[pos] is None else present(row[pos])) for name, pos, present in columns}

    def tag(self, row: Row) -> str:
        """A strong version tag, unique over the row's whole life."""
        return f"{row[0]:x}.{row[1]:x}"

    def value(self, row: Row, name: str) -> Any:
        return row[self.position[name]]

    def rows_in_order(self, keys: Iterable[Any]) -> list[Row]:
        """The rows of ``keys`` sorted by insertion order."""
        rows = self.rows
        found = [rows[key] for key in keys]
        found.sort(key=_seq)
        return found

    def _key(self, name: str, row: Row) -> Any:
        value = row[self.position[name]]
        return fold(value) if name in self.folded else value


def _seq(row: Row) -> int:
    return row[0]  # type: ignore[no-any-return]
