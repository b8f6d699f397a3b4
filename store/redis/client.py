"""The store on Redis: the same client API as the embedded actor, for many memdb nodes sharing one dataset.

:class:`RedisStore` answers every :class:`~store.client.StoreClient` method
with the embedded store's semantics; its reads are :class:`RedisReads`' (see
:mod:`store.redis.reads`), its writes are here, each one script
(:mod:`store.redis.scripts`) that checks and writes in one step, with errors
as the same :class:`~store.errors.StoreError` values. A write prepared from
rows read earlier names the versions it read; if any changed meanwhile the
script refuses and the write is prepared again from fresh rows, so
``If-Match``, guards and uniqueness are decided against the state the write
lands on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from store import commands as c
from store import query as q
from store.database import Snapshot
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
)
from store.redis.layout import Layout, chunks
from store.redis.reads import BATCH, Parents, RedisReads
from store.schema import Auto
from store.table import EncodedRows, Row

RETRIES = 64
"""Fresh attempts a write gets when rows it read keep changing under it (then the store reports overload)."""


class _Changed(Exception):
    """A row the write was prepared from changed before the write landed: prepare it again."""


class RedisStore(RedisReads):
    """A :class:`StoreClient` whose data lives in Redis (see the module docstring)."""

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
            "p": layout.parents(row),
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
