"""The messages the actor understands: one frozen dataclass per operation, in one place.

A command is plain data built by callers outside the actor. It knows the three
things about itself everything else needs: how to :meth:`~Command.apply` itself
to a :class:`~store.database.Database` (the actor only calls that), whether it
``writes`` (writes are logged for durability; reads never are), and its stable
encoded form (:meth:`~Command.encode` / :func:`decode`: ``[op, version,
{field: value}]`` in JSON, see :mod:`store.plain`), which the log writes and
replays. Each class registers itself under its short ``op`` name, so adding an
operation is one class here and one client method. ``Command[T]`` is generic in
its result, so ``actor.call(Get(...))`` is typed ``Snapshot`` without a cast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import orjson

from store import snapshots
from store.plain import from_plain, to_plain
from store.query import Predicate, Query

if TYPE_CHECKING:
    from store import database as d
    from store.database import Database, Page, TableSnapshot
    from store.snapshots import NamedSnapshot, Prepared, SnapshotInfo

Guard = tuple[Predicate, ...]
"""Predicates a row must also satisfy, else it is ``NotFound`` (e.g. "owned by this user")."""

T = TypeVar("T", covariant=True)

REGISTRY: dict[str, type[Command[Any]]] = {}
"""Every command class by its ``op``: how :func:`decode` finds the class of a logged command."""


class Command(Generic[T]):
    """One operation on the database, answering a ``T``."""

    __slots__ = ()
    op: ClassVar[str]
    """Short, stable name in the encoded form; never reuse one for a different meaning."""
    version: ClassVar[int] = 1
    """Bumped when the fields change meaning, so an old log can still be read (or refused clearly)."""
    writes: ClassVar[bool] = False
    """Whether it may change the database (then it is logged when it succeeds)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        op = cls.__dict__.get("op")
        if op is not None:
            # ``dataclass(slots=True)`` makes the class a second time: the final one wins.
            known = REGISTRY.get(op)
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise TypeError(f"command op {op!r} is taken by {known.__qualname__}")
            REGISTRY[op] = cls

    def apply(self, db: Database) -> T:
        raise NotImplementedError

    def encode(self) -> bytes:
        """The stable encoded form: ``[op, version, {field: value}]`` as JSON."""
        values = {field.name: to_plain(getattr(self, field.name)) for field in fields(self)}  # type: ignore[arg-type]
        return orjson.dumps([self.op, self.version, values])


def decode(data: bytes | memoryview) -> Command[Any]:
    """The command :meth:`Command.encode` wrote; ``ValueError`` if it is not one this code knows."""
    try:
        op, version, values = orjson.loads(data)
        cls = REGISTRY[op]
    except (orjson.JSONDecodeError, ValueError, TypeError, KeyError):
        raise ValueError("not an encoded command") from None
    if version != cls.version:
        raise ValueError(f"{op} version {version} is not {cls.version}")
    try:
        return cls(**{name: from_plain(value) for name, value in values.items()})
    except TypeError as error:
        raise ValueError(f"{op}: {error}") from None


# -- reads ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Get(Command["d.Snapshot"]):
    """One row; ``reveal`` includes hidden columns (for the server's own use, never for output)."""

    op: ClassVar[str] = "get"
    table: str
    key: Any
    embed: tuple[str, ...] = ()
    guard: Guard = ()
    reveal: bool = False

    def apply(self, db: Database) -> d.Snapshot:
        return db.get(self.table, self.key, self.embed, self.guard, self.reveal)


@dataclass(frozen=True, slots=True)
class Find(Command["Page"]):
    op: ClassVar[str] = "find"
    table: str
    query: Query
    embed: tuple[str, ...] = ()
    reveal: bool = False
    presented: bool = False

    def apply(self, db: Database) -> Page:
        return db.query(self.table, self.query, self.embed, self.reveal, self.presented)


@dataclass(frozen=True, slots=True)
class Children(Command["Page"]):
    """Rows of ``table`` whose ``field`` references row ``key`` of ``parent``."""

    op: ClassVar[str] = "children"
    parent: str
    key: Any
    table: str
    field: str
    query: Query
    embed: tuple[str, ...] = ()
    presented: bool = False

    def apply(self, db: Database) -> Page:
        return db.children(self.parent, self.key, self.table, self.field, self.query, self.embed, self.presented)


@dataclass(frozen=True, slots=True)
class Parent(Command["d.Snapshot"]):
    """The row referenced by foreign key ``field`` of row ``key``."""

    op: ClassVar[str] = "parent"
    table: str
    key: Any
    field: str
    embed: tuple[str, ...] = ()
    guard: Guard = ()

    def apply(self, db: Database) -> d.Snapshot:
        return db.parent(self.table, self.key, self.field, self.embed, self.guard)


@dataclass(frozen=True, slots=True)
class Snapshot(Command["dict[str, TableSnapshot]"]):
    """Every row of ``tables`` as of one moment (for exports)."""

    op: ClassVar[str] = "snapshot"
    tables: tuple[str, ...]
    reveal: bool = False

    def apply(self, db: Database) -> dict[str, TableSnapshot]:
        return db.snapshot(self.tables, self.reveal)


@dataclass(frozen=True, slots=True)
class Checkpoint(Command["dict[str, int]"]):
    """A mark (each table's next insertion number) to roll back to."""

    op: ClassVar[str] = "checkpoint"

    def apply(self, db: Database) -> dict[str, int]:
        return db.checkpoint()


@dataclass(frozen=True, slots=True)
class Counts(Command["dict[str, int]"]):
    """Rows per table."""

    op: ClassVar[str] = "counts"

    def apply(self, db: Database) -> dict[str, int]:
        return db.counts()


@dataclass(frozen=True, slots=True)
class TrimPools(Command[int]):
    """After a bulk load, pools forget the values one row holds (no row changes, so it is not logged)."""

    op: ClassVar[str] = "trim_pools"

    def apply(self, db: Database) -> int:
        return db.trim_pools()


@dataclass(frozen=True, slots=True)
class ListSnapshots(Command["list[SnapshotInfo]"]):
    """Every named snapshot, oldest first."""

    op: ClassVar[str] = "snapshot_list"

    def apply(self, db: Database) -> list[SnapshotInfo]:
        return snapshots.listing(db)


@dataclass(frozen=True, slots=True)
class FindSnapshot(Command["NamedSnapshot"]):
    """The snapshot itself, for a client to build a restore's structures from (its images never change)."""

    op: ClassVar[str] = "snapshot_find"
    name: str

    def apply(self, db: Database) -> NamedSnapshot:
        return snapshots.find(db, self.name)


@dataclass(frozen=True, slots=True)
class DescribeSnapshot(Command["SnapshotInfo"]):
    op: ClassVar[str] = "snapshot_describe"
    name: str

    def apply(self, db: Database) -> SnapshotInfo:
        return snapshots.describe(snapshots.find(db, self.name))


# -- writes --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Insert(Command["d.Snapshot"]):
    op: ClassVar[str] = "insert"
    writes: ClassVar[bool] = True
    table: str
    values: Mapping[str, Any]
    embed: tuple[str, ...] = ()

    def apply(self, db: Database) -> d.Snapshot:
        return db.insert(self.table, self.values, self.embed)


@dataclass(frozen=True, slots=True)
class Load(Command["dict[str, int]"]):
    """Insert many rows into several tables, all or nothing."""

    op: ClassVar[str] = "load"
    writes: ClassVar[bool] = True
    batches: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]

    def apply(self, db: Database) -> dict[str, int]:
        return db.load(self.batches)


@dataclass(frozen=True, slots=True)
class InsertEach(Command["list[tuple[int, str]]"]):
    """Insert each row that can be; answer ``(index, reason)`` for those refused."""

    op: ClassVar[str] = "insert_each"
    writes: ClassVar[bool] = True
    table: str
    rows: Sequence[Mapping[str, Any]]

    def apply(self, db: Database) -> list[tuple[int, str]]:
        return db.insert_each(self.table, self.rows)


@dataclass(frozen=True, slots=True)
class Begin(Command[int]):
    """Open a transaction whose rows stay invisible until committed (it numbers them, so it is logged)."""

    op: ClassVar[str] = "begin"
    writes: ClassVar[bool] = True

    def apply(self, db: Database) -> int:
        return db.begin()


@dataclass(frozen=True, slots=True)
class Stage(Command[int]):
    op: ClassVar[str] = "stage"
    writes: ClassVar[bool] = True
    transaction: int
    table: str
    rows: Sequence[Mapping[str, Any]]

    def apply(self, db: Database) -> int:
        return db.stage(self.transaction, self.table, self.rows)


@dataclass(frozen=True, slots=True)
class Commit(Command[int]):
    op: ClassVar[str] = "commit"
    writes: ClassVar[bool] = True
    transaction: int

    def apply(self, db: Database) -> int:
        return db.commit(self.transaction)


@dataclass(frozen=True, slots=True)
class Abort(Command[int]):
    """Remove up to ``limit`` of a transaction's rows; answer how many remain."""

    op: ClassVar[str] = "abort"
    writes: ClassVar[bool] = True
    transaction: int
    limit: int

    def apply(self, db: Database) -> int:
        return db.abort(self.transaction, self.limit)


@dataclass(frozen=True, slots=True)
class Update(Command["d.Snapshot"]):
    op: ClassVar[str] = "update"
    writes: ClassVar[bool] = True
    table: str
    key: Any
    changes: Mapping[str, Any]
    if_match: tuple[str, ...] | None = None
    embed: tuple[str, ...] = ()
    guard: Guard = ()

    def apply(self, db: Database) -> d.Snapshot:
        return db.update(self.table, self.key, self.changes, self.if_match, self.embed, self.guard)


@dataclass(frozen=True, slots=True)
class Delete(Command[int]):
    op: ClassVar[str] = "delete"
    writes: ClassVar[bool] = True
    table: str
    key: Any
    cascade: bool = False
    if_match: tuple[str, ...] | None = None
    embed: tuple[str, ...] = ()
    guard: Guard = ()

    def apply(self, db: Database) -> int:
        return db.delete(self.table, self.key, self.cascade, self.if_match, self.embed, self.guard)


@dataclass(frozen=True, slots=True)
class Purge(Command[int]):
    """Delete every row matching ``predicates``."""

    op: ClassVar[str] = "purge"
    writes: ClassVar[bool] = True
    table: str
    predicates: tuple[Predicate, ...]

    def apply(self, db: Database) -> int:
        return db.purge(self.table, self.predicates)


@dataclass(frozen=True, slots=True)
class Rollback(Command[int]):
    """Remove every row inserted since ``mark`` (a bulk load that failed part-way)."""

    op: ClassVar[str] = "rollback"
    writes: ClassVar[bool] = True
    mark: Mapping[str, int]

    def apply(self, db: Database) -> int:
        return db.rollback(self.mark)


@dataclass(frozen=True, slots=True)
class TakeSnapshot(Command["SnapshotInfo"]):
    """Remember ``tables`` as they are now, under a new ``name`` (a write: the restore it allows depends on it).

    Replaying it from a log recreates the snapshot at the same point, so a
    logged :class:`RestoreSnapshot` after it replays exactly.
    """

    op: ClassVar[str] = "snapshot_take"
    writes: ClassVar[bool] = True
    name: str
    tables: tuple[str, ...]

    def apply(self, db: Database) -> SnapshotInfo:
        return snapshots.take(db, self.name, self.tables)


@dataclass(frozen=True, slots=True)
class RestoreSnapshot(Command["SnapshotInfo"]):
    """Put every table snapshot ``name`` covers back as it was, at once.

    ``prepared`` (structures the client built from the snapshot beforehand, see
    :mod:`store.snapshots`) only makes it quicker: it is not part of the encoded
    form, which names the snapshot and not its content, so replaying it needs
    the :class:`TakeSnapshot` that made it replayed first (named snapshots are
    kept nowhere but in memory).
    """

    op: ClassVar[str] = "snapshot_restore"
    writes: ClassVar[bool] = True
    name: str
    prepared: Prepared | None = field(default=None, compare=False, repr=False)

    def apply(self, db: Database) -> SnapshotInfo:
        return snapshots.restore(db, self.name, self.prepared)

    def encode(self) -> bytes:
        return orjson.dumps([self.op, self.version, {"name": self.name}])


@dataclass(frozen=True, slots=True)
class DropSnapshot(Command[None]):
    op: ClassVar[str] = "snapshot_drop"
    writes: ClassVar[bool] = True
    name: str

    def apply(self, db: Database) -> None:
        snapshots.drop(db, self.name)
