"""The typed client handlers use: ``await store.get(...)`` and friends.

Each method builds one command and awaits the actor's answer, so callers never
see the mailbox or futures. The point reads and pages (:meth:`~StoreClient.get`,
:meth:`~StoreClient.find`, :meth:`~StoreClient.children`,
:meth:`~StoreClient.parent`) are *direct reads*: they run synchronously against
the tables in the caller's step of the event loop (:meth:`StoreActor.read`),
skipping the mailbox round trip, whenever the actor allows it, and go through
the mailbox otherwise (the actor restarting, a group commit's fsync in flight)
or when :attr:`~StoreClient.direct_reads` is off. Every other call, and every
write, goes through the mailbox. Commands are generic in their result, so every
answer is typed without a cast. A client can be held ``recovering`` (refusing
every call) while the data directory is being read back at start-up. Errors
arrive as :class:`store.errors.StoreError` subclasses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from store import commands as c
from store.actor import StoreActor
from store.collector import collection_paused
from store.database import Page, Snapshot, TableSnapshot
from store.errors import RestoreOutdated, StoreError, StoreRecovering
from store.query import Predicate, Query
from store.snapshots import Prepared, SnapshotInfo, discarding, preparing

T = TypeVar("T")
PATCH_ATTEMPTS = 2
"""Restores prepared as patches before one is prepared by building (writes kept making the patches out of date)."""


class StoreClient:
    """Async, typed access to a :class:`StoreActor`."""

    def __init__(self, actor: StoreActor) -> None:
        self.actor = actor
        self.recovering = False
        """While true every call is refused with :class:`StoreRecovering` (the data is still being loaded)."""
        self.direct_reads = True
        """Whether reads may skip the mailbox (off: every call is a round trip, as before direct reads)."""

    async def _call(self, command: c.Command[T]) -> T:
        if self.recovering:
            raise StoreRecovering
        return await self.actor.call(command)

    async def _read(self, command: c.Command[T]) -> T:
        """A direct read when the actor allows one, else a mailbox round trip."""
        if self.recovering:
            raise StoreRecovering
        actor = self.actor
        if self.direct_reads and actor.reads_directly:
            return actor.read(command)
        return await actor.call(command)

    async def get(
        self, table: str, key: Any, embed: tuple[str, ...] = (), guard: c.Guard = (), reveal: bool = False
    ) -> Snapshot:
        return await self._read(c.Get(table, key, embed, guard, reveal))

    async def find(
        self, table: str, query: Query, embed: tuple[str, ...] = (), reveal: bool = False, presented: bool = False
    ) -> Page:
        """A page; ``presented`` asks for the presenter's items (kept forms) where the database keeps any.

        If the page is a walk of an ordered index not built yet, the index is built first, in steps with a
        turn of the event loop between them (:meth:`OrderedIndex.steps <store.ordered.OrderedIndex.steps>`).
        """
        await self._build_ordered(table, query)
        return await self._read(c.Find(table, query, embed, reveal, presented))

    async def children(
        self,
        parent: str,
        key: Any,
        table: str,
        field: str,
        query: Query,
        embed: tuple[str, ...] = (),
        presented: bool = False,
    ) -> Page:
        return await self._read(c.Children(parent, key, table, field, query, embed, presented))

    async def parent(
        self, table: str, key: Any, field: str, embed: tuple[str, ...] = (), guard: c.Guard = ()
    ) -> Snapshot:
        return await self._read(c.Parent(table, key, field, embed, guard))

    async def _build_ordered(self, table: str, query: Query) -> None:
        actor = self.actor
        if self.recovering or not actor.running:
            return  # the read itself is refused or queued as usual
        try:
            indexes = actor.database.unbuilt_indexes(table, query)
        except StoreError:
            return  # an unknown table: the read answers that
        for index in indexes:
            await _in_steps(index.steps(), _next_turn)

    async def insert(self, table: str, values: Mapping[str, Any], embed: tuple[str, ...] = ()) -> Snapshot:
        return await self._call(c.Insert(table, values, embed))

    async def load(self, batches: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> dict[str, int]:
        return await self._call(c.Load(batches))

    async def insert_each(self, table: str, rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, str]]:
        """Insert each row that can be; return ``(index, reason)`` for those refused."""
        return await self._call(c.InsertEach(table, rows))

    async def begin(self) -> int:
        """Open a transaction: rows staged in it stay invisible to everyone else until committed."""
        return await self._call(c.Begin())

    async def stage(self, transaction: int, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        return await self._call(c.Stage(transaction, table, rows))

    async def commit(self, transaction: int) -> int:
        return await self._call(c.Commit(transaction))

    async def abort(self, transaction: int, limit: int) -> int:
        """Remove up to ``limit`` staged rows; return how many remain."""
        return await self._call(c.Abort(transaction, limit))

    async def update(
        self,
        table: str,
        key: Any,
        changes: Mapping[str, Any],
        if_match: tuple[str, ...] | None = None,
        embed: tuple[str, ...] = (),
        guard: c.Guard = (),
    ) -> Snapshot:
        return await self._call(c.Update(table, key, changes, if_match, embed, guard))

    async def delete(
        self,
        table: str,
        key: Any,
        cascade: bool = False,
        if_match: tuple[str, ...] | None = None,
        embed: tuple[str, ...] = (),
        guard: c.Guard = (),
    ) -> int:
        return await self._call(c.Delete(table, key, cascade, if_match, embed, guard))

    async def purge(self, table: str, predicates: tuple[Predicate, ...]) -> int:
        """Delete every row matching ``predicates``; return how many went."""
        return await self._call(c.Purge(table, predicates))

    async def snapshot(self, tables: tuple[str, ...], reveal: bool = False) -> dict[str, TableSnapshot]:
        """Every row of ``tables`` as of one moment, presentable outside the actor."""
        return await self._call(c.Snapshot(tables, reveal))

    async def checkpoint(self) -> dict[str, int]:
        """A mark for :meth:`rollback`: rows inserted after it can be removed together."""
        return await self._call(c.Checkpoint())

    async def rollback(self, mark: Mapping[str, int]) -> int:
        """Remove every row inserted since :meth:`checkpoint` gave ``mark``; return how many."""
        return await self._call(c.Rollback(mark))

    async def counts(self) -> dict[str, int]:
        return await self._call(c.Counts())

    async def trim_pools(self) -> int:
        """After a bulk load: shared-value pools forget what only one row holds (memory, see ``store.pool``)."""
        return await self._call(c.TrimPools())

    async def take_snapshot(self, name: str, tables: tuple[str, ...]) -> SnapshotInfo:
        """Remember ``tables`` as they are now under ``name`` (a name already taken is a ``Conflict``)."""
        return await self._call(c.TakeSnapshot(name, tables))

    async def restore_snapshot(self, name: str, pause: Pause | None = None) -> SnapshotInfo:
        """Put every table snapshot ``name`` covers back exactly as it was, in one command.

        Each table is compared with the snapshot, or its new structures built,
        here first, in small steps with ``pause`` awaited between them (by
        default: one turn of the event loop), so the command only patches the
        few rows that changed or swaps the new structures in; old ones are freed
        the same way after. A patch a write made out of date meanwhile is
        prepared again (the last try builds every table, which no write upsets).
        """
        for attempt in range(PATCH_ATTEMPTS + 1):
            prepared = Prepared(await self._call(c.FindSnapshot(name)))
            live = self.actor.database if attempt < PATCH_ATTEMPTS else None
            await _in_steps(preparing(prepared, live=live), pause or _next_turn)
            try:
                return await self._call(c.RestoreSnapshot(name, prepared))
            except RestoreOutdated:
                if live is None:  # pragma: no cover - a build without patches is never out of date
                    raise
            finally:
                await _in_steps(discarding(prepared), pause or _next_turn)
        raise AssertionError("unreachable")  # pragma: no cover

    async def drop_snapshot(self, name: str) -> None:
        await self._call(c.DropSnapshot(name))

    async def snapshots(self) -> list[SnapshotInfo]:
        """Every named snapshot, oldest first."""
        return await self._call(c.ListSnapshots())

    async def describe_snapshot(self, name: str) -> SnapshotInfo:
        return await self._call(c.DescribeSnapshot(name))


Pause = Callable[[], Awaitable[None]]
"""Awaited between the steps of work done outside the actor, to let others go first."""


async def _next_turn() -> None:
    await asyncio.sleep(0)


async def _in_steps(steps: Iterator[None], pause: Pause) -> None:
    """Run ``steps`` one at a time, awaiting ``pause`` in between."""
    while True:
        with collection_paused():
            if next(steps, _DONE) is _DONE:
                return
        await pause()


_DONE = object()
