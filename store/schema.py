"""Table definitions the store is handed at start-up.

A :class:`TableSpec` says which columns a table has, of which kind, which one is
the primary key, which are unique, which reference another table and which get
a secondary index. The store derives its row layout, indexes and integrity
rules from these alone; it never sees the models they were derived from.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Kind(enum.Enum):
    """How a column's values are stored, compared and presented."""

    UUID = "uuid"
    STR = "str"
    ENUM = "enum"
    INT = "int"
    BOOL = "bool"
    DECIMAL = "decimal"
    DATETIME = "datetime"
    JSON = "json"


class Auto(enum.Enum):
    """Timestamps the store fills in itself."""

    ON_CREATE = "on_create"
    ON_WRITE = "on_write"


@dataclass(frozen=True, slots=True)
class ForeignKey:
    """``field`` holds the primary key of a row in ``target``, embedded as ``name``.

    ``cascade`` rows go when their target goes; otherwise the target cannot be
    deleted while they exist, unless the caller asks to cascade.
    """

    field: str
    target: str
    name: str
    cascade: bool = False


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its kind and the rules the store enforces or uses for it."""

    name: str
    kind: Kind
    nullable: bool = False
    unique: bool = False
    indexed: bool = False
    case_insensitive: bool = False
    hidden: bool = False
    scale: int = 0
    choices: tuple[str, ...] = ()
    auto: Auto | None = None
    children: Mapping[str, Kind] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A table: its columns in order, primary key and foreign keys."""

    name: str
    columns: tuple[Column, ...]
    primary_key: str = "id"
    foreign_keys: tuple[ForeignKey, ...] = ()
    default_sort: str = "created_at"

    def column(self, name: str) -> Column | None:
        for column in self.columns:
            if column.name == name:
                return column
        return None

    def foreign_key(self, field_name: str) -> ForeignKey | None:
        for fk in self.foreign_keys:
            if fk.field == field_name:
                return fk
        return None
