"""The typed client handlers use: ``await store.get(...)`` and friends.

Each method builds one command and awaits the actor's answer, so callers never
see the mailbox or futures. Errors arrive as :class:`store.errors.StoreError`
subclasses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from store import commands as c
from store.actor import StoreActor
from store.database import Page, Snapshot
from store.query import Predicate, Query


class StoreClient:
    """Async, typed access to a :class:`StoreActor`."""

    def __init__(self, actor: StoreActor) -> None:
        self.actor = actor

    async def get(
        self, table: str, key: Any, embed: tuple[str, ...] = (), guard: c.Guard = (), reveal: bool = False
    ) -> Snapshot:
        return cast(Snapshot, await self.actor.call(c.Get(table, key, embed, guard, reveal)))

    async def find(self, table: str, query: Query, embed: tuple[str, ...] = (), reveal: bool = False) -> Page:
        return cast(Page, await self.actor.call(c.Find(table, query, embed, reveal)))

    async def children(
        self, parent: str, key: Any, table: str, field: str, query: Query, embed: tuple[str, ...] = ()
    ) -> Page:
        return cast(Page, await self.actor.call(c.Children(parent, key, table, field, query, embed)))

    async def parent(
        self, table: str, key: Any, field: str, embed: tuple[str, ...] = (), guard: c.Guard = ()
    ) -> Snapshot:
        return cast(Snapshot, await self.actor.call(c.Parent(table, key, field, embed, guard)))

    async def insert(self, table: str, values: Mapping[str, Any], embed: tuple[str, ...] = ()) -> Snapshot:
        return cast(Snapshot, await self.actor.call(c.Insert(table, values, embed)))

    async def load(self, batches: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> dict[str, int]:
        return cast(dict[str, int], await self.actor.call(c.Load(batches)))

    async def update(
        self,
        table: str,
        key: Any,
        changes: Mapping[str, Any],
        if_match: tuple[str, ...] | None = None,
        embed: tuple[str, ...] = (),
        guard: c.Guard = (),
    ) -> Snapshot:
        return cast(Snapshot, await self.actor.call(c.Update(table, key, changes, if_match, embed, guard)))

    async def delete(
        self,
        table: str,
        key: Any,
        cascade: bool = False,
        if_match: tuple[str, ...] | None = None,
        embed: tuple[str, ...] = (),
        guard: c.Guard = (),
    ) -> int:
        return cast(int, await self.actor.call(c.Delete(table, key, cascade, if_match, embed, guard)))

    async def purge(self, table: str, predicates: tuple[Predicate, ...]) -> int:
        """Delete every row matching ``predicates``; return how many went."""
        return cast(int, await self.actor.call(c.Purge(table, predicates)))

    async def counts(self) -> dict[str, int]:
        return cast(dict[str, int], await self.actor.call(c.Counts()))
