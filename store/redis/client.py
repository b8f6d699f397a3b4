"""The store on Redis: the same client API as the embedded actor, for many memdb nodes sharing one dataset.

:class:`RedisStore` answers every :class:`~store.client.StoreClient` method
with the embedded store's semantics: values go through the same codecs, rows
come back as the same tuples (so presenting, filtering, sorting and tags are
the embedded code), and errors are the same :class:`~store.errors.StoreError`
values. Reads are one or two round trips (a read-only script answers a page:
its total, its rows); each write is one script (:mod:`store.redis.scripts`)
that checks and writes in one step. A write prepared from rows read earlier
names the versions it read; if any changed meanwhile the script refuses and
the write is prepared again from fresh rows, so ``If-Match``, guards and
uniqueness are decided against the state the write lands on.

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
    BatchRejected,
    Conflict,
    InsufficientStorage,
    InvalidValue,
    MissingReference,
    NotFound,
    PreconditionFailed,
    StoreError,
    StoreOverloaded,
    StoreUnavailable,
    Unsupported,
)
from store.redis import scripts
from store.redis.changes import ChangeFeed
from store.redis.layout import Layout, chunks, referrers
from store.redis.link import CONNECT_SECONDS, Address, Link, LinkLost, Script
from store.schema import Auto, TableSpec
from store.table import EncodedRows, Row, Table

logger = logging.getLogger("memdb.store.redis")

T = TypeVar("T")
Watcher = Callable[["c.Command[Any]"], None]
Parents = dict[tuple[str, int], Row | None]
"""Embedded rows by (foreign-key name, row index); ``None`` when the key is null or names no row."""

RETRIES = 64
"""Fresh attempts a write gets when rows it read keep changing under it (then the store reports overload)."""
BATCH = 2000
"""Rows per script call when staging a load or an import: long enough to be cheap, short enough not to stall Redis."""
FETCH_CHUNK = 5000


class _Changed(Exception):
    """A row the write was prepared from changed before the write landed: prepare it again."""


class RedisStore(StoreClient):
    """A :class:`StoreClient` whose data lives in Redis (see the module docstring)."""

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
        self.link = Link(address)
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
        try:
            return bool(await self.link.call("PING") == b"PONG")
        except LinkLost:
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
            arguments += [f"{layout.name}:{fk.field}:", self.layouts[fk.target].row_prefix]
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

    async def find(self, table: str, query: q.Query, embed: tuple[str, ...] = (), reveal: bool = False) -> Page:
        return await self._presented_page(self._layout(table), query, embed, reveal)

    async def children(
        self, parent: str, key: Any, table: str, field: str, query: q.Query, embed: tuple[str, ...] = ()
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

    # -- the client API: writes ------------------------------------------------

    def _prepare(
        self, layout: Layout, values: Mapping[str, Any], now: int, pre_encoded: bool = False
    ) -> tuple[Row, tuple[int, ...]]:
        """The new row (its ``seq`` not known yet) and the row positions the store's time went into."""
        table = layout.table
        encoded = dict(values) if pre_encoded else table.encode(values)
        stamped = []
        for name in table.auto_columns:
            if encoded.get(name) is None:
                encoded[name] = now
                stamped.append(table.position[name])
        return table.new_row(encoded), tuple(stamped)

    def _put_row(
        self, layout: Layout, row: Row, stamped: tuple[int, ...], only: Iterable[str] | None = None
    ) -> dict[str, Any]:
        references = layout.references(row, self.layouts)
        if only is not None:
            changed = set(only)
            references = [ref for ref in references if ref[0] in changed]
        packed, spans = layout.pack(row, stamped)
        return {
            "pk": layout.pk_text(row[layout.table.pk_position]),
            "d": packed.decode(),
            "x": layout.entries(row, stamped),
            "o": layout.default_score(row),
            "on": layout.default_position in stamped and layout.default_numeric,
            "n": spans,
            "fk": references,
        }

    @staticmethod
    def _restamp(row: Row, stamped: tuple[int, ...], now: Any) -> Row:
        """``row`` with the store's time (the script's answer) where ours went, if the store's was later."""
        if not stamped or not now:
            return row
        values = list(row)
        for position in stamped:
            values[position] = int(now)
        return tuple(values)

    def _refusal(self, layout: Layout, rows: Sequence[Row], answer: list[Any]) -> tuple[int, StoreError]:
        """The row index (0-based) and store error a ``{1, ...}`` answer of the put script stands for."""
        what = answer[1].decode() if isinstance(answer[1], bytes) else answer[1]
        if what == "transaction":
            raise AssertionError("checked by the caller")  # pragma: no cover
        index = int(answer[2]) - 1
        return index, self._error(layout, rows[index], what, answer[3:])

    def _error(self, layout: Layout, row: Row, what: str, details: list[Any]) -> StoreError:
        table = layout.table
        name = layout.name
        if what == "pk":
            pk_name = table.spec.primary_key
            present = table.codecs[pk_name].present(row[table.pk_position])
            return Conflict(name, pk_name, f"{name} {present} already exists")
        if what == "unique":
            column = details[0].decode().rpartition(":")[2]
            return Conflict(name, column, f"a {name} with this {column} already exists")
        field = details[0].decode()
        fk = table.spec.foreign_key(field)
        assert fk is not None
        present = table.codecs[field].present(table.value(row, field))
        return MissingReference(name, field, fk.target, present)

    async def _put(self, request: dict[str, Any]) -> list[Any]:
        """Run the put script; catch up with the store's clock if it wrote a later time than ours."""
        answer = await self._script(self._put_script, request, bulk=request["mode"] in ("each", "stage"))
        if answer[0] == 0 and answer[3]:
            self._last_now = max(self._last_now, int(answer[3]))
        return answer

    async def insert(self, table: str, values: Mapping[str, Any], embed: tuple[str, ...] = ()) -> Snapshot:
        layout = self._layout(table)
        try:
            for _ in range(RETRIES):
                now = self._now()
                row, stamped = self._prepare(layout, values, now)
                parents = await self._parents(layout, [row], embed)
                request = {
                    "table": table,
                    "mode": "insert",
                    "now": str(now) if stamped else "",
                    "pre": self._parent_tags(layout, row, parents, embed),
                    "rows": [self._put_row(layout, row, stamped)],
                }
                answer = await self._put(request)
                if answer[0] == 2:
                    continue
                if answer[0] == 1:
                    raise self._refusal(layout, [row], answer)[1]
                (seq,) = orjson.loads(answer[1])
                stored = self._restamp((int(seq), 1, *row[2:]), stamped, answer[3])
                return Snapshot(
                    self._present(layout, stored, 0, parents, embed), self._tag(layout, stored, 0, parents, embed)
                )
            raise StoreOverloaded(0.0)
        finally:
            self._tell(c.Insert(table, values, embed))

    def _parent_tags(self, layout: Layout, row: Row, parents: Parents, embed: Sequence[str]) -> list[list[str]]:
        """Preconditions: the embedded rows (part of the answer's tag) are still what was read."""
        pre = []
        for fk in layout.spec.foreign_keys:
            if fk.name not in embed:
                continue
            value = layout.table.value(row, fk.field)
            if value is None:
                continue
            target = self.layouts[fk.target]
            other = parents.get((fk.name, 0))
            pre.append([target.row_key(value), "" if other is None else f"{other[0]}.{other[1]}"])
        return pre

    async def insert_each(self, table: str, rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, str]]:
        layout = self._layout(table)
        now = self._now()
        refused: list[tuple[int, str]] = []
        try:
            prepared: list[tuple[int, tuple[Row, tuple[int, ...]]]] = []
            for index, values in enumerate(rows):
                try:
                    prepared.append((index, self._prepare(layout, values, now)))
                except InsufficientStorage:
                    raise
                except StoreError as error:
                    refused.append((index, error.message))
            for part in chunks(prepared, BATCH):
                request = {
                    "table": table,
                    "mode": "each",
                    "now": str(now),
                    "rows": [self._put_row(layout, row, stamped) for _, (row, stamped) in part],
                }
                answer = await self._put(request)
                for problem in orjson.loads(answer[2]):
                    index, (row, _) = part[problem[1] - 1]
                    cause = self._error(layout, row, problem[0], [str(item).encode() for item in problem[2:]])
                    refused.append((index, cause.message))
            refused.sort()
            return refused
        finally:
            self._tell(c.InsertEach(table, rows))

    async def load(self, batches: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> dict[str, int]:
        now = self._now()
        transaction = await self._begin_transaction()
        loaded: dict[str, int] = {}
        try:
            for table, rows in batches:
                added = await self._stage(transaction, table, rows, now, isinstance(rows, EncodedRows))
                if added:
                    loaded[table] = loaded.get(table, 0) + added
            await self._finish(transaction)
        except BaseException:
            await self._drop(transaction)
            raise
        finally:
            self._tell(c.Load(batches))
        return loaded

    async def _begin_transaction(self) -> int:
        answer = await self._script(self._begin_script, {})
        return int(answer[1])

    async def begin(self) -> int:
        return await self._begin_transaction()

    async def stage(self, transaction: int, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        try:
            return await self._stage(transaction, table, rows, self._now(), False)
        finally:
            self._tell(c.Stage(transaction, table, rows))

    async def _stage(
        self, transaction: int, table: str, rows: Sequence[Mapping[str, Any]], now: int, pre_encoded: bool
    ) -> int:
        layout = self._layout(table)
        prepared: list[tuple[Row, tuple[int, ...]]] = []
        for index, values in enumerate(rows):
            try:
                prepared.append(self._prepare(layout, values, now, pre_encoded))
            except InsufficientStorage:
                raise
            except StoreError as error:
                raise BatchRejected(table, index, error) from None
        staged = 0
        try:
            for start in range(0, len(prepared), BATCH):
                part = prepared[start : start + BATCH]
                request = {
                    "table": table,
                    "mode": "stage",
                    "tx": transaction,
                    "now": str(now),
                    "rows": [self._put_row(layout, row, stamped) for row, stamped in part],
                }
                answer = await self._put(request)
                if answer[0] == 1:
                    if answer[1] == b"transaction":
                        raise NotFound("transaction", transaction)
                    index, cause = self._refusal(layout, [row for row, _ in part], answer)
                    raise BatchRejected(table, start + index, cause)
                staged += len(part)
        except BaseException:
            if staged:
                await self._unstage(transaction, staged)
            raise
        return len(prepared)

    async def _unstage(self, transaction: int, count: int) -> None:
        await self._script(self._abort_script, {"tx": transaction, "limit": count, "keep": True}, bulk=True)

    async def _finish(self, transaction: int) -> int:
        answer = await self._script(self._commit_script, {"tx": transaction}, bulk=True)
        if answer[0] == 1:
            raise NotFound("transaction", transaction)
        return int(answer[1])

    async def commit(self, transaction: int) -> int:
        try:
            return await self._finish(transaction)
        finally:
            self._tell(c.Commit(transaction))

    async def _drop(self, transaction: int) -> None:
        while await self._abort_some(transaction, BATCH):
            pass

    async def _abort_some(self, transaction: int, limit: int) -> int:
        answer = await self._script(self._abort_script, {"tx": transaction, "limit": limit}, bulk=True)
        if answer[0] == 1:
            raise NotFound("transaction", transaction)
        return int(answer[1])

    async def abort(self, transaction: int, limit: int) -> int:
        try:
            return await self._abort_some(transaction, limit)
        finally:
            self._tell(c.Abort(transaction, limit))

    async def update(
        self,
        table: str,
        key: Any,
        changes: Mapping[str, Any],
        if_match: tuple[str, ...] | None = None,
        embed: tuple[str, ...] = (),
        guard: c.Guard = (),
    ) -> Snapshot:
        layout = self._layout(table)
        spec = layout.spec
        try:
            for _ in range(RETRIES):
                row = await self._row(layout, key, guard)
                parents = await self._parents(layout, [row], embed)
                self._check_tag(layout, row, parents, if_match, embed)
                encoded = layout.table.encode(changes)
                if spec.primary_key in encoded and encoded[spec.primary_key] != row[layout.table.pk_position]:
                    raise InvalidValue(table, spec.primary_key, "cannot be changed")
                now = None
                stamped = []
                for column in layout.table.columns:
                    if column.auto is Auto.ON_WRITE:
                        encoded[column.name] = now = self._now() if now is None else now
                        stamped.append(layout.table.position[column.name])
                new = layout.table.changed_row(row, encoded)
                new_parents = await self._parents(layout, [new], embed)
                put = self._put_row(layout, new, tuple(stamped), only=encoded.keys())
                put["oc"] = new[layout.default_position] != row[layout.default_position]
                request = {
                    "table": table,
                    "mode": "update",
                    "now": "" if now is None else str(now),
                    # The row and the embedded rows its tag was checked with, and those the answer embeds.
                    "pre": [
                        [layout.row_key(row[layout.table.pk_position]), f"{row[0]}.{row[1]}"],
                        *self._parent_tags(layout, row, parents, embed),
                        *self._parent_tags(layout, new, new_parents, embed),
                    ],
                    "rows": [put],
                }
                answer = await self._put(request)
                if answer[0] == 2:
                    continue
                if answer[0] == 1:
                    raise self._refusal(layout, [new], answer)[1]
                ((_, version),) = orjson.loads(answer[1])
                stored = self._restamp((new[0], int(version), *new[2:]), tuple(stamped), answer[3])
                return Snapshot(
                    self._present(layout, stored, 0, new_parents, embed),
                    self._tag(layout, stored, 0, new_parents, embed),
                )
            raise StoreOverloaded(0.0)
        finally:
            self._tell(c.Update(table, key, changes, if_match, embed, guard))

    def _check_tag(
        self, layout: Layout, row: Row, parents: Parents, if_match: Sequence[str] | None, embed: Sequence[str]
    ) -> None:
        if if_match is None or "*" in if_match:
            return
        if self._tag(layout, row, 0, parents, embed) not in if_match:
            table = layout.table
            raise PreconditionFailed(layout.name, table.codecs[table.spec.primary_key].present(row[table.pk_position]))

    async def _remove_rows(self, layout: Layout, rows: Sequence[Row], cascade: bool, pre: list[list[str]]) -> int:
        request = {
            "pre": pre,
            "roots": [[layout.name, layout.pk_text(row[layout.table.pk_position])] for row in rows],
            "cascade": cascade,
            "refs": self.refs,
        }
        answer = await self._script(self._remove_script, request)
        if answer[0] == 2:
            raise _Changed
        if answer[0] == 1:
            what, name = answer[1].decode(), answer[2].decode()
            if what == "importing":
                raise Conflict(name, None, f"{name} is referenced by an import in progress")
            count, child = int(answer[3]), answer[4].decode()
            noun = child if count == 1 else f"{child}s"
            raise Conflict(name, None, f"{name} is referenced by {count} {noun}; delete those first or cascade")
        return int(answer[1])

    async def delete(
        self,
        table: str,
        key: Any,
        cascade: bool = False,
        if_match: tuple[str, ...] | None = None,
        embed: tuple[str, ...] = (),
        guard: c.Guard = (),
    ) -> int:
        layout = self._layout(table)
        try:
            for _ in range(RETRIES):
                row = await self._row(layout, key, guard)
                parents = await self._parents(layout, [row], embed)
                self._check_tag(layout, row, parents, if_match, embed)
                pre = [[layout.row_key(row[layout.table.pk_position]), f"{row[0]}.{row[1]}"]]
                pre += self._parent_tags(layout, row, parents, embed)
                try:
                    return await self._remove_rows(layout, [row], cascade, pre)
                except _Changed:
                    continue
            raise StoreOverloaded(0.0)
        finally:
            self._tell(c.Delete(table, key, cascade, if_match, embed, guard))

    async def purge(self, table: str, predicates: tuple[q.Predicate, ...]) -> int:
        layout = self._layout(table)
        try:
            for _ in range(RETRIES):
                rows, _, _ = await self._run(layout, q.Query(predicates), paged=False)
                if not rows:
                    return 0
                pk = layout.table.pk_position
                pre = [[layout.row_key(row[pk]), f"{row[0]}.{row[1]}"] for row in rows]
                try:
                    return await self._remove_rows(layout, rows, False, pre)
                except _Changed:
                    continue
            raise StoreOverloaded(0.0)
        finally:
            self._tell(c.Purge(table, predicates))

    async def rollback(self, mark: Mapping[str, int]) -> int:
        try:
            removed = 0
            for name in reversed(list(self.layouts)):
                layout = self.layouts[name]
                members = await self._send(self.bulk.call("ZRANGEBYSCORE", layout.all, mark.get(name, 0), "+inf"))
                for part in chunks(members, BATCH):
                    request = {
                        "pre": [],
                        "roots": [[name, member.decode()] for member in part],
                        "cascade": True,
                        "refs": self.refs,
                    }
                    answer = await self._script(self._remove_script, request, bulk=True)
                    removed += int(answer[1])
            return removed
        finally:
            self._tell(c.Rollback(mark))


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
