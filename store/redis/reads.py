"""The store on Redis, its reading half: connections, rows, pages and the read methods of the client API.

:class:`RedisReads` holds what every call needs (the tables' layouts, the
connections, the scripts, the watchers) and answers the client API's reads
with the embedded store's semantics: values go through the same codecs, rows
come back as the same tuples (so presenting, filtering, sorting and tags are
the embedded code). A point read is one command; a page is one read-only
script (its total, its rows and the rows they embed); filters an index answers
read candidate rows and filter them here. The writes are
:class:`store.redis.client.RedisStore`'s.

Calls go over two auto-pipelined connections (:mod:`store.redis.link`): one
for the small calls every request makes, one for loads, imports and exports.
Lost connections raise :class:`~store.errors.StoreUnavailable` (the next call
connects again); Redis's ``maxmemory`` refusal raises
:class:`~store.errors.InsufficientStorage`. ``redis`` (a redis-py client) names
the server and stays available for administrative calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NoReturn, TypeVar, cast

import hiredis
import orjson
from redis.asyncio import Redis

from store import commands as c
from store import query as q
from store.client import StoreClient
from store.codecs import datetime_to_micros
from store.database import Page, Snapshot, TableSnapshot, utc_now
from store.errors import (
    InsufficientStorage,
    InvalidValue,
    NotFound,
    StoreUnavailable,
    Unsupported,
)
from store.redis import scripts
from store.redis.changes import ChangeFeed
from store.redis.layout import Layout, chunks, referrers
from store.redis.link import CONNECT_SECONDS, REPLY_SECONDS, Address, Link, LinkLost, Script
from store.schema import TableSpec
from store.table import Row, Table

logger = logging.getLogger("memdb.store.redis")

T = TypeVar("T")
Watcher = Callable[["c.Command[Any]"], None]
Parents = dict[tuple[str, int], Row | None]
"""Embedded rows by (foreign-key name, row index); ``None`` when the key is null or names no row."""

BATCH = 2000
"""Rows per script call when staging a load or an import: long enough to be cheap, short enough not to stall Redis."""
FETCH_CHUNK = 5000
PING_SECONDS = 2.0
"""How long the readiness check waits for Redis's PONG before it says Redis cannot be reached."""


class RedisReads(StoreClient):
    """The reading half of :class:`~store.redis.client.RedisStore` (see the module docstring)."""

    def __init__(
        self,
        redis: Redis,
        specs: Iterable[TableSpec],
        prefix: str = "memdb:",
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.recovering = False  # the client API's; Redis recovers its own data before it answers
        specs = tuple(specs)
        self.tables = {spec.name: Table(spec) for spec in specs}
        self.layouts = {name: Layout(prefix, table) for name, table in self.tables.items()}
        self.refs = referrers(specs)
        self._clock = clock
        self._last_now = 0
        self._watchers: list[Watcher] = []
        address = Address.of_pool(redis.connection_pool, CONNECT_SECONDS)
        self.link = Link(address, REPLY_SECONDS)
        """Every small call: requests' commands issued in one event-loop turn share one write and one round trip."""
        self.bulk = Link(address)
        """Loads, imports and exports: their large scripts and replies do not hold up the small calls' replies."""
        self._put_script = Script(scripts.PUT)
        self._remove_script = Script(scripts.REMOVE)
        self._begin_script = Script(scripts.BEGIN)
        self._commit_script = Script(scripts.COMMIT)
        self._abort_script = Script(scripts.ABORT)
        self._page_script = Script(scripts.PAGE)
        self._fetch_script = Script(scripts.FETCH)
        self._export_script = Script(scripts.EXPORT)
        self._order_build_script = Script(scripts.ORDER_BUILD)
        self._ordered_page_script = Script(scripts.ORDERED_PAGE)

    # -- plumbing ------------------------------------------------------------

    @property
    def actor(self) -> NoReturn:  # type: ignore[override]
        """There is no actor: a client method this class does not answer itself is refused, clearly."""
        raise Unsupported("Redis")

    async def _call(self, command: c.Command[T]) -> T:
        """A command only the embedded actor answers (named snapshots, for one): refused, clearly."""
        raise Unsupported("Redis")

    def watch(self, watcher: Watcher) -> None:
        """Show ``watcher`` every write command this node applied (as the actor shows its watchers)."""
        self._watchers.append(watcher)

    def _tell(self, command: c.Command[Any]) -> None:
        for watcher in self._watchers:
            watcher(command)

    async def ping(self) -> bool:
        """Whether Redis answers within :data:`PING_SECONDS` (a readiness probe must not wait a request's deadline)."""
        try:
            async with asyncio.timeout(PING_SECONDS):
                return bool(await self.link.call("PING") == b"PONG")
        except (LinkLost, TimeoutError):
            return False

    async def close(self) -> None:
        await self.link.close()
        await self.bulk.close()
        await self.redis.aclose()

    def change_feed(self, tables: Sequence[str], on_change: Callable[[], None]) -> ChangeFeed:
        """A subscription that calls ``on_change`` whenever any node changes or removes rows of ``tables``."""
        return ChangeFeed(self.link.address, [f"{self.prefix}changed:{name}" for name in tables], on_change)

    async def changes(self, tables: Sequence[str]) -> tuple[int, ...]:
        """How many times rows of each of ``tables`` were changed or removed, by any node (one round trip).

        A cache of rows from these tables is exact while these counts stay where they were when it was filled.
        """
        counts = await self._send(self.link.call("MGET", *[f"{self.prefix}changed:{name}" for name in tables]))
        return tuple(int(count or 0) for count in counts)

    async def _send(self, action: Awaitable[Any]) -> Any:
        """One call to Redis; Redis's refusals as the store's errors."""
        try:
            return await action
        except hiredis.ReplyError as error:
            if str(error).startswith("OOM"):
                raise InsufficientStorage from None
            raise
        except LinkLost:
            raise StoreUnavailable("the store's Redis server cannot be reached; retry shortly") from None

    async def _script(self, script: Script, request: Mapping[str, Any], bulk: bool = False) -> list[Any]:
        link = self.bulk if bulk else self.link
        answer = await self._send(script(link, self.prefix, orjson.dumps(request)))
        return cast(list[Any], answer)

    def _layout(self, name: str) -> Layout:
        try:
            return self.layouts[name]
        except KeyError:
            raise NotFound("table", name) from None

    def _now(self) -> int:
        self._last_now = max(self._last_now, datetime_to_micros(self._clock()))
        return self._last_now

    # -- reading rows ----------------------------------------------------------

    async def _fetch_rows(self, keys: Sequence[str]) -> list[tuple[Any, ...]]:
        """``(seq, version, data, staged)`` per row key (all ``None`` for a missing row)."""
        if len(keys) == 1:  # a plain command: no script to run for the commonest read
            return [tuple(await self._send(self.link.call("HMGET", keys[0], "s", "v", "d", "t")))]
        found: list[tuple[Any, ...]] = []
        for part in chunks(keys, FETCH_CHUNK):
            flat = await self._send(self._fetch_script(self.link if len(part) < BATCH else self.bulk, *part))
            found.extend(tuple(flat[i : i + 4]) for i in range(0, len(flat), 4))
        return found

    async def _visible_rows(self, layout: Layout, pks: Sequence[str]) -> list[Row]:
        rows = []
        for seq, version, data, staged in await self._fetch_rows([layout.row_prefix + pk for pk in pks]):
            if seq is not None and staged is None:
                rows.append(layout.unpack(seq, version, data))
        return rows

    async def _row(self, layout: Layout, key: Any, guard: Sequence[q.Predicate] = (), encoded: bool = False) -> Row:
        """Row ``key`` (as the caller gives it, or already ``encoded``); ``NotFound`` also if it fails ``guard``."""
        table = layout.table
        if encoded:
            encoded_key = key
        else:
            try:
                encoded_key = table.codecs[table.spec.primary_key].encode(key)
            except (ValueError, TypeError):
                raise NotFound(layout.name, key) from None
        ((seq, version, data, staged),) = await self._fetch_rows([layout.row_key(encoded_key)])
        if seq is None or staged is not None:
            raise NotFound(layout.name, key)
        row = layout.unpack(seq, version, data)
        if guard and not q.matches(table, row, guard):
            raise NotFound(layout.name, key)
        return row

    async def _parents(self, layout: Layout, rows: Sequence[Row], embed: Sequence[str]) -> Parents:
        wanted: list[tuple[str, int, str]] = []
        for fk in layout.spec.foreign_keys:
            if fk.name not in embed:
                continue
            position = layout.table.position[fk.field]
            target = self.layouts[fk.target]
            for index, row in enumerate(rows):
                if row[position] is not None:
                    wanted.append((fk.name, index, target.row_key(row[position])))
        parents: Parents = {}
        if not wanted:
            return parents
        unique_keys = list(dict.fromkeys(key for _, _, key in wanted))
        fetched = dict(zip(unique_keys, await self._fetch_rows(unique_keys), strict=True))
        targets = {fk.name: self.layouts[fk.target] for fk in layout.spec.foreign_keys}
        for name, index, key in wanted:
            seq, version, data, _ = fetched[key]
            parents[name, index] = None if seq is None else targets[name].unpack(seq, version, data)
        return parents

    def _embedded(
        self, layout: Layout, index: int, parents: Parents, embed: Sequence[str]
    ) -> list[tuple[str, Layout, Row | None]]:
        return [
            (fk.name, self.layouts[fk.target], parents.get((fk.name, index)))
            for fk in layout.spec.foreign_keys
            if fk.name in embed
        ]

    def _tag(self, layout: Layout, row: Row, index: int, parents: Parents, embed: Sequence[str]) -> str:
        parts = [layout.table.tag(row)]
        for _, target, other in self._embedded(layout, index, parents, embed):
            parts.append("-" if other is None else target.table.tag(other))
        return "-".join(parts)

    def _present(
        self, layout: Layout, row: Row, index: int, parents: Parents, embed: Sequence[str], reveal: bool = False
    ) -> dict[str, Any]:
        data = layout.table.present(row, reveal)
        for name, target, other in self._embedded(layout, index, parents, embed):
            data[name] = None if other is None else target.table.present(other)
        return data

    async def _snapshot(self, layout: Layout, row: Row, embed: Sequence[str], reveal: bool = False) -> Snapshot:
        parents = await self._parents(layout, [row], embed)
        return Snapshot(
            self._present(layout, row, 0, parents, embed, reveal), self._tag(layout, row, 0, parents, embed)
        )

    # -- queries ---------------------------------------------------------------

    async def _page(
        self, layout: Layout, zset: str, start: int, stop: int, embed: Sequence[str] = ()
    ) -> tuple[int, bool, list[Row], Parents]:
        """Ranks ``start..stop`` of ``zset``: the set's size, whether the table is out of default order, the
        rows and the ``embed``-ded rows they reference, all in one round trip."""
        fks = [fk for fk in layout.spec.foreign_keys if fk.name in embed]
        arguments: list[Any] = [zset, layout.row_prefix, start, stop, layout.disorder]
        for fk in fks:
            arguments += [fk.field, f"{layout.name}:{fk.field}:", self.layouts[fk.target].row_prefix]
        flat = await self._send(self._page_script(self.link, *arguments))
        width = 3 * (1 + len(fks))
        rows: list[Row] = []
        parents: Parents = {}
        for index, at in enumerate(range(2, len(flat), width)):
            rows.append(layout.unpack(flat[at], flat[at + 1], flat[at + 2]))
            for number, fk in enumerate(fks):
                seq, version, data = flat[at + 3 * (number + 1) : at + 3 * (number + 2)]
                parents[fk.name, index] = None if seq is None else self.layouts[fk.target].unpack(seq, version, data)
        return int(flat[0]), bool(flat[1]), rows, parents

    async def _ordered_page(self, layout: Layout, sort: q.SortKey, offset: int, end: int) -> tuple[list[Row], int]:
        """Rows ``offset:end`` of the table sorted by one column: a range of its ordered sets (built on first use)."""
        request = {
            "table": layout.name,
            "column": sort.column,
            "descending": sort.descending,
            "offset": offset,
            "stop": end,
        }
        flat = await self._script(self._ordered_page_script, request)
        if flat[0] == -1:
            await self._script(self._order_build_script, request)
            flat = await self._script(self._ordered_page_script, request)
        rows = [layout.unpack(flat[i], flat[i + 1], flat[i + 2]) for i in range(1, len(flat), 3)]
        return rows, int(flat[0])

    async def _candidates(
        self, layout: Layout, predicates: tuple[q.Predicate, ...]
    ) -> tuple[list[list[str]] | None, tuple[q.Predicate, ...]]:
        """Primary keys an index gives for the most selective predicate (buckets in seq order), and the rest."""
        table = layout.table
        pk_name = table.spec.primary_key
        options: list[tuple[q.Predicate, list[tuple[str, str]]]] = []
        for predicate in predicates:
            if len(predicate.path) != 1 or predicate.op not in ("eq", "in"):
                continue
            column = predicate.path[0]
            values = (predicate.value,) if predicate.op == "eq" else predicate.value
            if any(value is None for value in values):
                continue
            if column == pk_name:
                lookups = [("pk", layout.pk_text(value)) for value in values if _fits(layout, column, value)]
            elif column in table.unique:
                hash_key = layout.unique_hash(column)
                lookups = [
                    (hash_key, layout.unique_field(column, value)) for value in values if _fits(layout, column, value)
                ]
            elif column in table.indexes:
                lookups = [("z", layout.index_key(column, value)) for value in values if _fits(layout, column, value)]
            else:
                continue
            options.append((predicate, list(dict.fromkeys(lookups))))
        if not options:
            return None, predicates
        calls = []
        for _, lookups in options:
            for kind, key in lookups:
                if kind == "pk":
                    calls.append(self.link.call("EXISTS", layout.row_prefix + key))
                elif kind == "z":
                    calls.append(self.link.call("ZCARD", key))
                else:
                    calls.append(self.link.call("HGET", kind, key))
        answers = iter(await self._send(asyncio.gather(*calls)))
        best: tuple[int, q.Predicate, list[tuple[str, str, Any]]] | None = None
        for predicate, lookups in options:
            found = [(kind, key, next(answers)) for kind, key in lookups]
            total = sum(_size(kind, answer) for kind, _, answer in found)
            if best is None or total < best[0]:
                best = (total, predicate, found)
        assert best is not None
        _, chosen, found = best
        buckets: list[list[str]] = []
        zsets: list[str] = []
        for kind, key, answer in found:
            if kind == "pk":
                if answer:
                    buckets.append([key])
            elif kind == "z":
                if answer:
                    zsets.append(key)
            elif answer is not None:
                buckets.append([answer.decode()])
        if zsets:
            ranges = [self.link.call("ZRANGE", zset, 0, -1) for zset in zsets]
            for members in await self._send(asyncio.gather(*ranges)):
                buckets.append([member.decode() for member in members])
        return buckets, tuple(p for p in predicates if p is not chosen)

    async def _run(
        self, layout: Layout, query: q.Query, paged: bool = True, embed: Sequence[str] = ()
    ) -> tuple[list[Row], int, Parents | None]:
        """The page of rows ``query`` asks for (every match if not ``paged``), the number that matched, and
        the ``embed``-ded rows when the page came with them."""
        table = layout.table
        spec = table.spec
        sort = query.sort or (q.SortKey(spec.default_sort),)
        offset = (query.page - 1) * query.per_page
        end = offset + query.per_page
        insertion_order = len(sort) == 1 and not sort[0].descending and sort[0].column == spec.default_sort
        single_index = (
            len(query.predicates) == 1
            and query.predicates[0].op == "eq"
            and len(query.predicates[0].path) == 1
            and query.predicates[0].path[0] in table.indexes
            and query.predicates[0].path[0] not in table.unique
            and query.predicates[0].value is not None
            and _fits(layout, query.predicates[0].path[0], query.predicates[0].value)
        )
        if paged and insertion_order and (not query.predicates or single_index):
            zset = layout.all
            if single_index:
                zset = layout.index_key(query.predicates[0].path[0], query.predicates[0].value)
            total, disordered, rows, parents = await self._page(layout, zset, offset, end - 1, embed)
            if not disordered:
                return rows, total, parents
        if paged and not query.predicates and len(sort) == 1 and layout.orderable(sort[0].column):
            rows, total = await self._ordered_page(layout, sort[0], offset, end)
            return rows, total, None
        buckets, rest = await self._candidates(layout, query.predicates)
        if buckets is None:
            _, disordered, candidates, _ = await self._page(layout, layout.all, 0, -1)
        else:
            pks = [pk for bucket in buckets for pk in bucket]
            candidates = await self._visible_rows(layout, pks)
            if len(buckets) > 1:
                candidates.sort(key=_seq)
            disordered = bool(await self._send(self.link.call("EXISTS", layout.disorder)))
        matches = q._filter(table, candidates, rest)
        if not paged:
            return matches, len(matches), None
        table.in_default_order = not disordered
        return q._order(table, matches, sort, end)[offset:end], len(matches), None

    async def _presented_page(self, layout: Layout, query: q.Query, embed: Sequence[str], reveal: bool) -> Page:
        rows, total, parents = await self._run(layout, query, embed=embed)
        if parents is None:
            parents = await self._parents(layout, rows, embed)
        items = [self._present(layout, row, i, parents, embed, reveal) for i, row in enumerate(rows)]
        return Page(items, total, query.page, query.per_page)

    # -- the client API: reads -------------------------------------------------

    async def get(
        self, table: str, key: Any, embed: tuple[str, ...] = (), guard: c.Guard = (), reveal: bool = False
    ) -> Snapshot:
        layout = self._layout(table)
        row = await self._row(layout, key, guard)
        return await self._snapshot(layout, row, embed, reveal)

    async def find(
        self, table: str, query: q.Query, embed: tuple[str, ...] = (), reveal: bool = False, presented: bool = False
    ) -> Page:
        """A page of JSON-ready dicts (``presented`` changes nothing: forms are kept by the embedded store only)."""
        return await self._presented_page(self._layout(table), query, embed, reveal)

    async def children(
        self,
        parent: str,
        key: Any,
        table: str,
        field: str,
        query: q.Query,
        embed: tuple[str, ...] = (),
        presented: bool = False,
    ) -> Page:
        parent_layout = self._layout(parent)
        row = await self._row(parent_layout, key)
        layout = self._layout(table)
        scoped = q.Query(
            (q.Predicate((field,), "eq", row[parent_layout.table.pk_position]), *query.predicates),
            query.sort,
            query.page,
            query.per_page,
        )
        return await self._presented_page(layout, scoped, embed, False)

    async def parent(
        self, table: str, key: Any, field: str, embed: tuple[str, ...] = (), guard: c.Guard = ()
    ) -> Snapshot:
        layout = self._layout(table)
        fk = layout.spec.foreign_key(field)
        if fk is None:
            raise InvalidValue(table, field, "is not a foreign key")
        row = await self._row(layout, key, guard)
        value = layout.table.value(row, field)
        if value is None:
            raise NotFound(fk.target, None)
        target = self.layouts[fk.target]
        return await self._snapshot(target, await self._row(target, value, encoded=True), embed)

    async def snapshot(self, tables: tuple[str, ...], reveal: bool = False) -> dict[str, TableSnapshot]:
        layouts = [self._layout(name) for name in tables]
        arguments = [part for layout in layouts for part in (layout.all, layout.row_prefix)]
        answer = await self._send(self._export_script(self.bulk, *arguments))
        snapshots: dict[str, TableSnapshot] = {}
        for layout, flat in zip(layouts, answer, strict=True):
            rows = [layout.unpack(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)]
            snapshots[layout.name] = TableSnapshot(layout.name, rows, layout.table, reveal)
        return snapshots

    async def checkpoint(self) -> dict[str, int]:
        values = await self._send(self.link.call("MGET", *[layout.seq for layout in self.layouts.values()]))
        return {name: int(value or 0) for name, value in zip(self.layouts, values, strict=True)}

    async def counts(self) -> dict[str, int]:
        sizes = [self.link.call("ZCARD", layout.all) for layout in self.layouts.values()]
        return dict(zip(self.layouts, await self._send(asyncio.gather(*sizes)), strict=True))

    async def trim_pools(self) -> int:
        """Nothing to trim: Redis keeps the rows, this process no pools."""
        return 0


def _fits(layout: Layout, column: str, value: Any) -> bool:
    """Whether ``value`` is of the kind an index on ``column`` holds (a bad type cannot be in it)."""
    kind = layout.kinds[column]
    if kind.value in ("uuid", "int", "decimal", "datetime"):
        return type(value) is int
    if kind.value == "bool":
        return type(value) is bool
    return isinstance(value, str)


def _size(kind: str, answer: Any) -> int:
    if kind == "z":
        return int(answer)
    if kind == "pk":
        return 1 if answer else 0
    return 0 if answer is None else 1


def _seq(row: Row) -> int:
    return row[0]  # type: ignore[no-any-return]
