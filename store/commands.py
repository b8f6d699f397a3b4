"""The messages the actor understands: one frozen dataclass per operation.

Commands are plain data, built by callers outside the actor and applied by it
one at a time. :data:`Command` is the union of all of them; the actor matches
on it exhaustively, so adding a command without handling it fails type checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from store.query import Predicate, Query

Guard = tuple[Predicate, ...]
"""Predicates a row must also satisfy, else it is ``NotFound`` (e.g. "owned by this user")."""


@dataclass(frozen=True, slots=True)
class Get:
    """One row; ``reveal`` includes hidden columns (for the server's own use, never for output)."""

    table: str
    key: Any
    embed: tuple[str, ...] = ()
    guard: Guard = ()
    reveal: bool = False


@dataclass(frozen=True, slots=True)
class Find:
    table: str
    query: Query
    embed: tuple[str, ...] = ()
    reveal: bool = False


@dataclass(frozen=True, slots=True)
class Children:
    """Rows of ``table`` whose ``field`` references row ``key`` of ``parent``."""

    parent: str
    key: Any
    table: str
    field: str
    query: Query
    embed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Parent:
    """The row referenced by foreign key ``field`` of row ``key``."""

    table: str
    key: Any
    field: str
    embed: tuple[str, ...] = ()
    guard: Guard = ()


@dataclass(frozen=True, slots=True)
class Insert:
    table: str
    values: Mapping[str, Any]
    embed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Load:
    """Insert many rows into several tables, all or nothing."""

    batches: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]


@dataclass(frozen=True, slots=True)
class Update:
    table: str
    key: Any
    changes: Mapping[str, Any]
    if_match: tuple[str, ...] | None = None
    embed: tuple[str, ...] = ()
    guard: Guard = ()


@dataclass(frozen=True, slots=True)
class Delete:
    table: str
    key: Any
    cascade: bool = False
    if_match: tuple[str, ...] | None = None
    embed: tuple[str, ...] = ()
    guard: Guard = ()


@dataclass(frozen=True, slots=True)
class Purge:
    """Delete every row matching ``predicates``."""

    table: str
    predicates: tuple[Predicate, ...]


@dataclass(frozen=True, slots=True)
class InsertEach:
    """Insert each row that can be; answer ``(index, reason)`` for those refused."""

    table: str
    rows: Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Begin:
    """Open a transaction whose rows stay invisible until committed."""


@dataclass(frozen=True, slots=True)
class Stage:
    transaction: int
    table: str
    rows: Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Commit:
    transaction: int


@dataclass(frozen=True, slots=True)
class Abort:
    """Remove up to ``limit`` of a transaction's rows; answer how many remain."""

    transaction: int
    limit: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every row of ``tables`` as of one moment (for exports)."""

    tables: tuple[str, ...]
    reveal: bool = False


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A mark (each table's next insertion number) to roll back to."""


@dataclass(frozen=True, slots=True)
class Rollback:
    """Remove every row inserted since ``mark`` (a bulk load that failed part-way)."""

    mark: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Counts:
    """Rows per table."""


Command = (
    Get
    | Find
    | Children
    | Parent
    | Insert
    | Load
    | InsertEach
    | Begin
    | Stage
    | Commit
    | Abort
    | Update
    | Delete
    | Purge
    | Snapshot
    | Checkpoint
    | Rollback
    | Counts
)
