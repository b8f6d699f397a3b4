"""Named snapshots: the state of some tables at one moment, put back whole by one command.

Rows are immutable tuples, so a snapshot shares them with the live tables and
keeps only each table's own structures (:class:`~store.table.TableImage`:
the primary-key map, unique maps and index buckets as compact lists), taken in
one command. Restoring swaps in fresh structures built from the image, in one
command, so no reader ever sees a mixture, and the snapshot stays reusable.

Most restores change little: a test suite's fixture puts back the few rows
its tests changed, added or deleted. So a table that differs from the image
by at most :data:`~store.table.PATCH_LIMIT` rows changed or added since, none
of the image's rows gone, is *patched* in place
(:meth:`~store.table.Table.revert`): nothing is built, and no step grows a
large dict. Which rows differ, the table knows from its log of the writes
since it last was that image (taken or restored:
:attr:`~store.table.Table.touched`), in one short step; without such a log
(another snapshot taken or restored since, a restart, too many writes) the
client compares every row with the image, a thousand per turn of the event
loop, by identity (an unchanged row is the very tuple the image holds)
(:func:`~store.table.patching`). A write to the table between the client's
preparation and the command makes the patch out of date: the command refuses
it (:class:`~store.errors.RestoreOutdated`) before changing anything, and the
client prepares again.

Any other table is built afresh (a dict entry per row): the client builds its
structures *before* sending the restore (:class:`Prepared`, :func:`preparing`),
a few thousand entries per turn of the event loop, and the command itself only
swaps them in; the structures it swaps out are let go of the same way
afterwards (:func:`discarding`). Such a build has steps that take longer: a
dict growing past a power of two copies all it holds (about 30 ms at 800k
entries). A restore without anything prepared (a replayed log, a snapshot
re-taken under the same name meanwhile) builds inside the command: the same
result, held longer.

The rules that span tables live here:

* A snapshot covers a set of tables closed under foreign keys (a table it
  covers may only reference tables it covers). A table it does not cover keeps
  its rows on restore, except rows whose foreign keys would name a row the
  restore removed: those go, as a cascading delete would take them.
* Rows an open transaction staged are left out of a snapshot, and a restore is
  refused (:class:`~store.errors.Conflict`) while any table has staged rows:
  the import owning them is still running.
* Taking one counts against the memory limit: refused with
  :class:`~store.errors.InsufficientStorage` when growth is off or the
  snapshot's own size would pass :attr:`Database.memory_headroom`.
* Insertion numbers, versions and the clock never go back (see
  :meth:`Table.restore <store.table.Table.restore>`), so tags stay unique over
  a row's life while restored rows get back exactly the tags they had.

Named snapshots live in memory, in the database's ``snapshots`` map. The
commands that take, drop and restore them are logged like any write (a restore
as just the name), and every snapshot file of the data directory holds the
named snapshots of its moment (:mod:`store.named_images`), so a logged restore
finds its snapshot however the log before it was compacted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from store.collector import collection_paused
from store.errors import Conflict, InsufficientStorage, InvalidValue, NotFound, RestoreOutdated
from store.table import Patch, Structures, TableImage, building, built, logged_patch, patching, releasing

STEP = 4096
"""Entries built or freed per turn of the event loop (about a quarter of a millisecond)."""
COMPARE_STEP = 1024
"""Rows compared per turn of the event loop: a lookup in a large map each, so about a quarter of a millisecond too."""

if TYPE_CHECKING:
    from store.database import Database


@dataclass(frozen=True, slots=True)
class NamedSnapshot:
    """The images of the tables a snapshot covers, with when it was taken."""

    name: str
    created_at: int
    """Microseconds since the epoch, UTC (the database's own clock)."""
    images: dict[str, TableImage]

    @property
    def size(self) -> int:
        return sum(image.size for image in self.images.values())


@dataclass(slots=True)
class Prepared:
    """Fresh structures for each table of ``snapshot``, built outside the actor for one restore to swap in."""

    snapshot: NamedSnapshot
    tables: dict[str, Structures] | None = None
    """Set once built; taken (and emptied) by the restore that uses them: they are good for one restore."""
    patches: dict[str, Patch] = field(default_factory=dict)
    """Tables to be patched in place rather than swapped (they have no entry in ``tables``)."""
    discarded: list[Structures] = field(default_factory=list)
    """The structures the restore swapped out, for the caller to let go of with :func:`discarding`."""


def preparing(
    prepared: Prepared, step: int = STEP, live: Database | None = None, compare_step: int = COMPARE_STEP
) -> Iterator[None]:
    """Build ``prepared``'s structures ``step`` entries at a time, yielding in between.

    Given the ``live`` database, a table that a :class:`~store.table.Patch`
    can put back is compared instead of built (see the module's docstring).
    """
    tables: dict[str, Structures] = {}
    for name, image in prepared.snapshot.images.items():
        if live is not None:
            patch = yield from patching(live.tables[name], image, compare_step)
            if patch is not None:
                prepared.patches[name] = patch
                continue
        tables[name] = yield from building(image, step)
    prepared.tables = tables


def discarding(prepared: Prepared, step: int = STEP) -> Iterator[None]:
    """Empty the structures a restore swapped out, ``step`` entries at a time."""
    while prepared.discarded:
        yield from releasing(prepared.discarded.pop(), step)


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """What a client may know of a snapshot: rows per table and the memory its structures hold."""

    name: str
    created_at: int
    rows: dict[str, int]
    memory_bytes: int


def describe(snapshot: NamedSnapshot) -> SnapshotInfo:
    rows = {name: len(image) for name, image in snapshot.images.items()}
    return SnapshotInfo(snapshot.name, snapshot.created_at, rows, snapshot.size)


def take(db: Database, name: str, table_names: Sequence[str]) -> SnapshotInfo:
    """Remember ``table_names`` as they are now under ``name``; names are unique."""
    if name in db.snapshots:
        raise Conflict("snapshot", "name", f"a snapshot named {name} already exists")
    if not db.accepting_growth:
        raise InsufficientStorage
    tables = [db.table(table_name) for table_name in dict.fromkeys(table_names)]
    if not tables:
        raise InvalidValue("snapshot", "tables", "name at least one table")
    covered = {table.name for table in tables}
    for table in tables:
        for fk in table.spec.foreign_keys:
            if fk.target not in covered:
                raise InvalidValue("snapshot", "tables", f"{table.name} references {fk.target}, which is left out")
    with collection_paused():
        images = {table.name: table.image() for table in tables}
    snapshot = NamedSnapshot(name, db._now(), images)
    size = snapshot.size
    if db.memory_headroom is not None:
        if size >= db.memory_headroom:
            raise InsufficientStorage
        db.memory_headroom -= size  # until the supervisor's next sample sees it
    db.snapshots[name] = snapshot
    for table in tables:
        if not table.staged:  # else the image leaves out rows the table holds
            table.remember(images[table.name])
    return describe(snapshot)


def restore(db: Database, name: str, prepared: Prepared | None = None) -> SnapshotInfo:
    """Make every table the snapshot covers exactly what it was; drop what now dangles elsewhere.

    With ``prepared`` built from this very snapshot, its structures are swapped
    in and the old ones handed back in it; otherwise they are built here.
    """
    snapshot = find(db, name)
    importing = [table.name for table in db.tables.values() if table.staged]
    if importing:
        raise Conflict("snapshot", None, f"an import into {', '.join(importing)} is in progress; wait or cancel it")
    usable = prepared is not None and prepared.snapshot is snapshot and prepared.tables is not None
    ready = prepared.tables if usable and prepared is not None else None
    patches: dict[str, Patch] = prepared.patches if usable and prepared is not None else {}
    for table_name, planned in patches.items():
        if not db.tables[table_name].is_patchable(planned):
            raise RestoreOutdated(table_name)
    if prepared is not None:
        prepared.tables, prepared.patches = None, {}  # good for one restore: from now on they are live tables' own
    with collection_paused():
        for table_name, image in snapshot.images.items():
            table = db.tables[table_name]
            patch = patches.get(table_name)
            if patch is None and ready is None:  # nothing prepared (a replayed log): the table's log may do
                patch = logged_patch(table, image)
            if patch is not None:
                table.revert(image, patch)
                continue
            structures = ready[table_name] if ready is not None else built(building(image, len(image) + 1))
            previous = table.swap_in(image, structures)
            if prepared is not None:
                prepared.discarded.append(previous)
        _drop_dangling(db, snapshot.images.keys())
    return describe(snapshot)


def drop(db: Database, name: str) -> None:
    snapshot = find(db, name)
    del db.snapshots[name]
    for table_name, image in snapshot.images.items():
        db.tables[table_name].forget(image)  # the log would keep the image (and its memory) alive


def find(db: Database, name: str) -> NamedSnapshot:
    try:
        return db.snapshots[name]
    except KeyError:
        raise NotFound("snapshot", name) from None


def listing(db: Database) -> list[SnapshotInfo]:
    """Every snapshot, oldest first."""
    return [describe(snapshot) for snapshot in db.snapshots.values()]


def _drop_dangling(db: Database, covered: Any) -> None:
    """Delete rows of uncovered tables whose foreign key names a row that no longer exists."""
    restored = set(covered)
    for table in db.tables.values():
        if table.name in restored:
            continue
        for fk in table.spec.foreign_keys:
            if fk.target not in restored:
                continue
            target = db.tables[fk.target].rows
            keys = [
                key
                for value, bucket in table.indexes[fk.field].items()
                if value is not None and value not in target
                for key in bucket
            ]
            if keys:
                db._remove(table, table.rows_in_order(keys), cascade=True)
