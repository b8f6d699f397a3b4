"""The database: every table, and the rules that span tables.

Plain synchronous code, driven one command at a time by the actor. Each public
method validates everything first and only then mutates, so a failed call
leaves no trace. Foreign keys are checked on insert and update; deleting a row
that others reference is a :class:`Conflict` unless the caller cascades, which
removes the whole tree of dependants in the same call. Results are
:class:`Snapshot` and :class:`Page` values holding JSON-ready data.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from store import query as q
from store.codecs import datetime_to_micros
from store.errors import (
    BatchRejected,
    Conflict,
    InsufficientStorage,
    InvalidValue,
    MissingReference,
    NotFound,
    PreconditionFailed,
    StoreError,
)
from store.ordered import OrderedIndex, ordered_index
from store.schema import Auto, ForeignKey, TableSpec
from store.table import EncodedRows, Row, Table

if TYPE_CHECKING:
    from store.presented import PresentedForms
    from store.snapshots import NamedSnapshot

Values = Mapping[str, Any]
Guard = Sequence[q.Predicate]
"""Predicates a row must satisfy to be seen at all; a row that fails them is ``NotFound``."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One row as JSON-ready data, with its version tag."""

    data: dict[str, Any]
    tag: str


@dataclass(frozen=True, slots=True)
class Page:
    """One page of rows: JSON-ready dicts, or the presenter's items when asked for presented forms."""

    items: list[Any]
    total: int
    page: int
    per_page: int
    made_of: bytes | None = None
    """A digest of what the items were made from (this database, the table, each row's tag and each embedded
    parent's): two pages with the same ``made_of`` have the same items. ``None`` when not worked out (dicts)."""


class TableSnapshot:
    """The rows of one table at one moment. Rows are immutable, so this stays consistent while writes go on."""

    __slots__ = ("_reveal", "_table", "name", "rows")

    def __init__(self, name: str, rows: list[Row], table: Table, reveal: bool) -> None:
        self.name = name
        self.rows = rows
        self._table = table
        self._reveal = reveal

    def __len__(self) -> int:
        return len(self.rows)

    def present(self, start: int, stop: int) -> list[dict[str, Any]]:
        """Rows ``start:stop`` as JSON-ready data (codecs only read the immutable rows)."""
        return [self._table.present(row, self._reveal) for row in self.rows[start:stop]]


_UNREAD = Snapshot({}, "")


@dataclass(frozen=True, slots=True)
class TableImage:
    rows: list[Row]
    staged: dict[Any, int]
    order: tuple[Any, ...]
    """:meth:`Table.order_state`"""


@dataclass(frozen=True, slots=True)
class Image:
    """The whole database at one moment (:meth:`Database.image`), as a snapshot file holds it."""

    tables: dict[str, TableImage]
    transactions: dict[int, list[tuple[str, Any]]]
    last_now: int
    last_transaction: int
    named: dict[str, NamedSnapshot] = field(default_factory=dict)
    """The named snapshots of that moment (:mod:`store.named_images` writes them)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class Database:
    """Tables by name, with cross-table integrity."""

    def __init__(
        self, specs: Iterable[TableSpec], clock: Callable[[], datetime] = utc_now, forms: PresentedForms | None = None
    ) -> None:
        self.tables: dict[str, Table] = {}
        for spec in specs:
            self.tables[spec.name] = Table(spec)
            self.tables[spec.name].forms = forms
        self.forms = forms
        """Rows' presented forms kept between pages (:mod:`store.presented`); ``None``: pages are always dicts."""
        self._identity = os.urandom(8)
        """Sets this database's pages' ``made_of`` apart from another's in the same process (tags repeat)."""
        self.referrers: dict[str, list[tuple[Table, ForeignKey]]] = {name: [] for name in self.tables}
        for table in self.tables.values():
            for fk in table.spec.foreign_keys:
                if fk.target not in self.tables:
                    raise ValueError(f"{table.name}.{fk.field} references unknown table {fk.target}")
                self.referrers[fk.target].append((table, fk))
        self._clock = clock
        self._last_now = 0
        self._pinned_now: int | None = None
        self.replaying = False
        """True while recovery replays the log: answers nobody reads (a written row's snapshot) are not built."""
        self.accepting_growth = True
        self.memory_headroom: int | None = None
        """Bytes left under the memory limit at the supervisor's last sample (``None``: no limit watched)."""
        self.snapshots: dict[str, NamedSnapshot] = {}
        """Named snapshots by name, oldest first (:mod:`store.snapshots`)."""
        self._transactions: dict[int, list[tuple[Table, Any]]] = {}
        self._last_transaction = 0

    def table(self, name: str) -> Table:
        try:
            return self.tables[name]
        except KeyError:
            raise NotFound("table", name) from None

    # -- reads ---------------------------------------------------------------

    def get(
        self, table_name: str, key: Any, embed: Sequence[str] = (), guard: Guard = (), reveal: bool = False
    ) -> Snapshot:
        """Row ``key``; ``NotFound`` also when it fails ``guard``. ``reveal`` includes hidden columns."""
        table = self.table(table_name)
        row = self._row(table, key, guard)
        return Snapshot(self._present(table, row, embed, reveal), self._tag(table, row, embed))

    def query(
        self,
        table_name: str,
        query: q.Query,
        embed: Sequence[str] = (),
        reveal: bool = False,
        presented: bool = False,
    ) -> Page:
        """A page of rows; ``presented``: as the presenter's items, made of kept forms (when the database keeps any)."""
        table = self.table(table_name)
        result = q.run(table, query)
        if presented and not reveal and self.forms is not None:
            items, made_of = self._items(table, result.rows, embed, self.forms)
            return Page(items, result.total, query.page, query.per_page, made_of)
        parents: dict[tuple[str, Any], dict[str, Any]] = {}  # a parent shared by many rows is presented once
        items = [self._present(table, row, embed, reveal, parents) for row in result.rows]
        return Page(items, result.total, query.page, query.per_page)

    def unbuilt_indexes(self, table_name: str, query: q.Query) -> list[OrderedIndex]:
        """The ordered indexes ``query`` would walk that are not built yet (for the client to build in steps)."""
        table = self.table(table_name)
        found = (ordered_index(table, column, group) for column, group in q.walked_indexes(table, query))
        return [index for index in found if not index.built]

    def children(
        self,
        parent_name: str,
        key: Any,
        table_name: str,
        field: str,
        query: q.Query,
        embed: Sequence[str] = (),
        presented: bool = False,
    ) -> Page:
        """Rows of ``table_name`` whose ``field`` references the parent row ``key``."""
        parent = self.table(parent_name)
        row = self._row(parent, key)
        scoped = q.Query(
            (q.Predicate((field,), "eq", row[parent.pk_position]), *query.predicates),
            query.sort,
            query.page,
            query.per_page,
        )
        return self.query(table_name, scoped, embed, presented=presented)

    def parent(self, table_name: str, key: Any, field: str, embed: Sequence[str] = (), guard: Guard = ()) -> Snapshot:
        """The row that row ``key``'s foreign key ``field`` references."""
        table = self.table(table_name)
        fk = table.spec.foreign_key(field)
        if fk is None:
            raise InvalidValue(table_name, field, "is not a foreign key")
        value = table.value(self._row(table, key, guard), field)
        if value is None:
            raise NotFound(fk.target, None)
        target = self.tables[fk.target]
        return self._snapshot(target, target.rows[value], embed)

    def counts(self) -> dict[str, int]:
        return {name: len(table) for name, table in self.tables.items()}

    def trim_pools(self) -> int:
        """After a bulk load: every table's pools forget the values one row holds; return how many went."""
        return sum(table.trim_pools() for table in self.tables.values())

    def checkpoint(self) -> dict[str, int]:
        """A mark to :meth:`rollback` to: each table's next insertion number."""
        return {name: table.next_seq for name, table in self.tables.items()}

    def rollback(self, mark: Mapping[str, int]) -> int:
        """Remove every row inserted since :meth:`checkpoint` gave ``mark``, newest first; return how many.

        For a bulk load spread over many commands that nothing else writes to
        meanwhile (the seed file, at start-up): it costs nothing per row while
        loading, unlike a transaction, and undoes the earlier chunks if a later
        one fails. Rows inserted since the mark go whatever references them.
        """
        removed = 0
        for table in reversed(self.tables.values()):
            newest = list(itertools.takewhile(_newer_than(mark.get(table.name, 0)), reversed(table.rows.values())))
            for row in newest:
                table.staged.pop(row[table.pk_position], None)
                table.remove(row)
            removed += len(newest)
            table.sweep_pools()
        return removed

    def image(self) -> Image:
        """Everything the database holds, as of now, to write to disk outside the actor.

        Rows are immutable tuples, so the lists stay this moment's while writes go
        on; staged rows and open transactions are included, so an import in
        progress can commit after the snapshot. Tables come referenced first, the
        order :meth:`restore_rows` needs.
        """
        tables = {}
        for name in self._dependency_order():
            table = self.tables[name]
            tables[name] = TableImage(list(table.rows.values()), dict(table.staged), table.order_state())
        transactions = {
            number: [(table.name, key) for table, key in staged] for number, staged in self._transactions.items()
        }
        return Image(tables, transactions, self._last_now, self._last_transaction, dict(self.snapshots))

    def restore_rows(self, table_name: str, rows: Sequence[Row]) -> None:
        """Put back rows of a snapshot (trusted: checked when first written); the tables they reference first."""
        table = self.tables[table_name]
        table.restore(rows, self.sharing(table))

    def sharing(self, table: Table) -> Callable[[list[Any]], None]:
        """What makes a row read back from a file hold its referenced rows' key objects, as a live row does."""
        references = [(table.position[fk.field], self.tables[fk.target]) for fk in table.spec.foreign_keys]

        def share(values: list[Any]) -> None:
            for position, target in references:
                value = values[position]
                referenced = None if value is None else target.rows.get(value)
                if referenced is not None:
                    values[position] = referenced[target.pk_position]

        return share

    def restore_state(self, image: Image) -> None:
        """After :meth:`restore_rows`: the staged keys, numbering and open transactions of ``image`` (rows ignored)."""
        for name, stored in image.tables.items():
            table = self.tables[name]
            table.staged.update(stored.staged)
            table.set_order_state(stored.order)
        self._transactions = {
            number: [(self.tables[name], key) for name, key in staged] for number, staged in image.transactions.items()
        }
        self._last_now = image.last_now
        self._last_transaction = image.last_transaction

    def _dependency_order(self) -> list[str]:
        """Table names, each after the tables it references (foreign keys share the referenced key object)."""
        ordered: list[str] = []

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in ordered or name in path:
                return
            for fk in self.tables[name].spec.foreign_keys:
                visit(fk.target, (*path, name))
            ordered.append(name)

        for name in self.tables:
            visit(name, ())
        return ordered

    def snapshot(self, table_names: Sequence[str], reveal: bool = False) -> dict[str, TableSnapshot]:
        """Every row of these tables as of this moment; presenting them can happen outside the actor."""
        snapshots: dict[str, TableSnapshot] = {}
        for name in table_names:
            table = self.table(name)
            rows = [row for row in table.rows.values() if table.is_visible(row)]
            snapshots[name] = TableSnapshot(name, rows, table, reveal)
        return snapshots

    # -- writes --------------------------------------------------------------

    def insert(self, table_name: str, values: Values, embed: Sequence[str] = ()) -> Snapshot:
        table = self.table(table_name)
        row = self._prepare_insert(table, values, self._now())
        table.add(row)
        return self._snapshot(table, row, embed)

    def load(self, batches: Sequence[tuple[str, Sequence[Values]]]) -> dict[str, int]:
        """Insert every batch, in order, all or nothing (an :class:`EncodedRows` batch skips the codecs)."""
        if not self.accepting_growth:
            raise InsufficientStorage
        applied: list[tuple[Table, Row]] = []
        now = self._now()
        try:
            for table_name, rows in batches:
                table = self.table(table_name)
                pre_encoded = isinstance(rows, EncodedRows)
                for index, values in enumerate(rows):
                    try:
                        row = self._prepare_insert(table, values, now, pre_encoded=pre_encoded)
                    except InsufficientStorage:
                        raise
                    except StoreError as error:
                        raise BatchRejected(table_name, index, error) from None
                    table.add(row)
                    applied.append((table, row))
        except Exception:
            for table, row in reversed(applied):
                table.remove(row)
            raise
        loaded: dict[str, int] = {}
        for table, _ in applied:
            loaded[table.name] = loaded.get(table.name, 0) + 1
        return loaded

    def insert_each(self, table_name: str, rows: Sequence[Values]) -> list[tuple[int, str]]:
        """Insert each row that can be; return ``(index, reason)`` for each one refused."""
        table = self.table(table_name)
        now = self._now()
        refused: list[tuple[int, str]] = []
        for index, values in enumerate(rows):
            try:
                row = self._prepare_insert(table, values, now)
            except InsufficientStorage:
                raise
            except StoreError as error:
                refused.append((index, error.message))
                continue
            table.add(row)
        return refused

    # -- staged transactions: applied in slices, visible all at once -----------

    def begin(self) -> int:
        """Open a transaction whose rows stay invisible to everyone else until :meth:`commit`."""
        self._last_transaction += 1
        self._transactions[self._last_transaction] = []
        return self._last_transaction

    def stage(self, transaction: int, table_name: str, rows: Sequence[Values]) -> int:
        """Add ``rows`` to the transaction (all of them or, raising ``BatchRejected``, none)."""
        staged = self._open(transaction)
        table = self.table(table_name)
        now = self._now()
        added: list[Row] = []
        try:
            for index, values in enumerate(rows):
                try:
                    row = self._prepare_insert(table, values, now, transaction)
                except InsufficientStorage:
                    raise
                except StoreError as error:
                    raise BatchRejected(table_name, index, error) from None
                table.add(row)
                table.staged[row[table.pk_position]] = transaction
                added.append(row)
        except Exception:
            for row in reversed(added):
                del table.staged[row[table.pk_position]]
                table.remove(row)
            raise
        staged.extend((table, row[table.pk_position]) for row in added)
        return len(added)

    def commit(self, transaction: int) -> int:
        """Make every row of the transaction visible, at once."""
        staged = self._open(transaction)
        for table, key in staged:
            del table.staged[key]
        del self._transactions[transaction]
        return len(staged)

    def abort(self, transaction: int, limit: int) -> int:
        """Remove up to ``limit`` of the transaction's rows; return how many remain (0: it is gone)."""
        staged = self._open(transaction)
        for _ in range(min(limit, len(staged))):
            table, key = staged.pop()
            del table.staged[key]
            table.remove(table.rows[key])
        if not staged:
            del self._transactions[transaction]
        return len(staged)

    def _open(self, transaction: int) -> list[tuple[Table, Any]]:
        try:
            return self._transactions[transaction]
        except KeyError:
            raise NotFound("transaction", transaction) from None

    def update(
        self,
        table_name: str,
        key: Any,
        changes: Values,
        if_match: Sequence[str] | None = None,
        embed: Sequence[str] = (),
        guard: Guard = (),
    ) -> Snapshot:
        table = self.table(table_name)
        row = self._row(table, key, guard)
        self._check_tag(table, row, if_match, embed)
        encoded = table.encode(changes)
        if table.spec.primary_key in encoded and encoded[table.spec.primary_key] != row[table.pk_position]:
            raise InvalidValue(table_name, table.spec.primary_key, "cannot be changed")
        now = None
        for column in table.columns:
            if column.auto is Auto.ON_WRITE:
                encoded[column.name] = now = self._now() if now is None else now
        new = table.changed_row(row, encoded)
        table.check_unique(new, previous=row)
        self._check_references(table, new, only=encoded.keys())
        table.replace(row, new)
        return self._snapshot(table, new, embed)

    def delete(
        self,
        table_name: str,
        key: Any,
        cascade: bool = False,
        if_match: Sequence[str] | None = None,
        embed: Sequence[str] = (),
        guard: Guard = (),
    ) -> int:
        """Delete row ``key`` (and, cascading, everything that references it); return rows removed."""
        table = self.table(table_name)
        row = self._row(table, key, guard)
        self._check_tag(table, row, if_match, embed)
        return self._remove(table, [row], cascade)

    def purge(self, table_name: str, predicates: Sequence[q.Predicate]) -> int:
        """Delete every row matching ``predicates`` (rows others reference block it); return rows removed."""
        table = self.table(table_name)
        return self._remove(table, q.select(table, tuple(predicates)), cascade=False)

    # -- internals -----------------------------------------------------------

    def _now(self) -> int:
        if self._pinned_now is not None:
            return self._pinned_now
        # Auto timestamps never run backwards, so insertion order stays creation order.
        self._last_now = max(self._last_now, datetime_to_micros(self._clock()))
        return self._last_now

    def pin_clock(self, micros: int | None = None) -> int:
        """Fix the time the next command sees (now, or ``micros`` when replaying it); return it.

        The command log records this value with the command, so replaying the
        command stamps exactly the timestamps it stamped the first time.
        """
        self._pinned_now = None
        now = self._now() if micros is None else micros
        self._last_now = max(self._last_now, now)
        self._pinned_now = now
        return now

    def unpin_clock(self) -> None:
        self._pinned_now = None

    @property
    def open_transactions(self) -> dict[int, int]:
        """Each open transaction's number and how many rows it has staged."""
        return {number: len(staged) for number, staged in self._transactions.items()}

    def _row(self, table: Table, key: Any, guard: Guard = ()) -> Row:
        try:
            encoded = table.codecs[table.spec.primary_key].encode(key)
        except (ValueError, TypeError):
            raise NotFound(table.name, key) from None
        row = table.rows.get(encoded)
        if row is None or encoded in table.staged or (guard and not q.matches(table, row, guard)):
            raise NotFound(table.name, key)
        return row

    def _remove(self, table: Table, rows: Iterable[Row], cascade: bool) -> int:
        doomed: dict[tuple[str, Any], tuple[Table, Row]] = {}
        for row in rows:
            self._collect_dependants(table, row, cascade, doomed)
        for dependant_table, dependant in reversed(doomed.values()):
            dependant_table.remove(dependant)
        return len(doomed)

    def _prepare_insert(
        self, table: Table, values: Values, now: int, transaction: int | None = None, pre_encoded: bool = False
    ) -> Row:
        if not self.accepting_growth:
            raise InsufficientStorage
        encoded = table.adopt(cast(dict[str, Any], values)) if pre_encoded else table.encode(values)
        for name in table.auto_columns:
            if encoded.get(name) is None:
                encoded[name] = now
        self._share_references(table, encoded)
        row = table.new_row(encoded)
        table.check_unique(row)
        self._check_references(table, row, transaction=transaction)
        return row

    def _share_references(self, table: Table, encoded: dict[str, Any]) -> None:
        """Make each foreign key hold the referenced row's own key object rather than an equal copy.

        An order's ``user_id`` then costs a pointer, not another 128-bit integer.
        """
        for fk in table.spec.foreign_keys:
            value = encoded.get(fk.field)
            if value is not None:
                target = self.tables[fk.target]
                referenced = target.rows.get(value)
                if referenced is not None:
                    encoded[fk.field] = referenced[target.pk_position]

    def _check_references(
        self, table: Table, row: Row, only: Iterable[str] | None = None, transaction: int | None = None
    ) -> None:
        fields = None if only is None else set(only)
        for fk in table.spec.foreign_keys:
            if fields is not None and fk.field not in fields:
                continue
            value = table.value(row, fk.field)
            target = self.tables[fk.target]
            # A row staged by an open transaction exists only for that transaction.
            missing = value not in target.rows or target.staged.get(value, transaction) != transaction
            if value is not None and missing:
                present = table.codecs[fk.field].present(value)
                raise MissingReference(table.name, fk.field, fk.target, present)

    def _collect_dependants(
        self, table: Table, row: Row, cascade: bool, doomed: dict[tuple[str, Any], tuple[Table, Row]]
    ) -> None:
        # Keyed by (table, primary key): a row reachable by two paths (or referencing itself) goes once.
        key = row[table.pk_position]
        if (table.name, key) in doomed:
            return
        doomed[table.name, key] = (table, row)
        for child, fk in self.referrers[table.name]:
            keys = child.lookup(fk.field, key) or ()
            if not keys:
                continue
            if child.staged and any(dependant in child.staged for dependant in keys):
                raise Conflict(table.name, None, f"{table.name} is referenced by an import in progress")
            if not cascade and not fk.cascade:
                noun = child.name if len(keys) == 1 else f"{child.name}s"
                raise Conflict(
                    table.name, None, f"{table.name} is referenced by {len(keys)} {noun}; delete those first or cascade"
                )
            for dependant in child.rows_in_order(keys):
                self._collect_dependants(child, dependant, cascade, doomed)

    def _check_tag(self, table: Table, row: Row, if_match: Sequence[str] | None, embed: Sequence[str]) -> None:
        if if_match is None or "*" in if_match:
            return
        if self._tag(table, row, embed) not in if_match:
            raise PreconditionFailed(table.name, table.codecs[table.spec.primary_key].present(row[table.pk_position]))

    def _embedded(self, table: Table, row: Row, embed: Sequence[str]) -> list[tuple[str, Table, Row | None]]:
        found: list[tuple[str, Table, Row | None]] = []
        for fk in table.spec.foreign_keys:
            if fk.name in embed:
                target = self.tables[fk.target]
                value = table.value(row, fk.field)
                found.append((fk.name, target, None if value is None else target.rows.get(value)))
        return found

    def _tag(self, table: Table, row: Row, embed: Sequence[str]) -> str:
        parts = [table.tag(row)]
        for _, target, other in self._embedded(table, row, embed):
            parts.append("-" if other is None else target.tag(other))
        return "-".join(parts)

    def _present(
        self,
        table: Table,
        row: Row,
        embed: Sequence[str],
        reveal: bool = False,
        parents: dict[tuple[str, Any], dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The row as JSON-ready values with its ``embed`` parents; ``parents`` shares them across one answer."""
        data = table.present(row, reveal)
        for name, target, other in self._embedded(table, row, embed):
            if other is None or parents is None:
                data[name] = None if other is None else target.present(other)
                continue
            key = (target.name, other[target.pk_position])
            shown = parents.get(key)
            if shown is None:
                shown = parents[key] = target.present(other)
            data[name] = shown
        return data

    def _items(
        self, table: Table, rows: Sequence[Row], embed: Sequence[str], forms: PresentedForms
    ) -> tuple[list[Any], bytes]:
        """``rows`` as the presenter's items (each row's kept form, made now if missing, with its parents'
        forms), and the digest of what they were made from (:attr:`Page.made_of`)."""
        item = forms.presenter.item
        kept = forms.get  # a kept form is the common case: looked up here, made by ``_form`` otherwise
        pk = table.pk_position
        embedded = [
            (fk.name, table.position[fk.field], self.tables[fk.target])
            for fk in table.spec.foreign_keys
            if fk.name in embed
        ]
        versions = array("q")  # each row's (seq, version), then each parent's; a missing parent is (-1, -1)
        items = []
        for row in rows:
            versions.append(row[0])
            versions.append(row[1])
            form = kept(row[pk], row) or self._form(table, row, forms)
            if not embedded:
                items.append(item(form, ()))
                continue
            parents = []
            for name, position, target in embedded:
                value = row[position]
                parent = None if value is None else target.rows.get(value)
                if parent is None:
                    versions.extend(_NO_PARENT)
                    parents.append((name, None))
                else:
                    versions.append(parent[0])
                    versions.append(parent[1])
                    parents.append(
                        (name, kept(parent[target.pk_position], parent) or self._form(target, parent, forms))
                    )
            items.append(item(form, parents))
        what = f"{table.name}/{','.join(name for name, _, _ in embedded)}/".encode()
        return items, hashlib.blake2b(what + versions.tobytes(), digest_size=16, key=self._identity).digest()

    def _form(self, table: Table, row: Row, forms: PresentedForms) -> Any:
        key = row[table.pk_position]
        form = forms.get(key, row)
        if form is None:
            form = forms.presenter.form(table.present(row))
            forms.put(key, row, form, self.memory_headroom)
        return form

    def _snapshot(self, table: Table, row: Row, embed: Sequence[str]) -> Snapshot:
        if self.replaying:
            return _UNREAD
        return Snapshot(self._present(table, row, embed), self._tag(table, row, embed))


_NO_PARENT = (-1, -1)


def _newer_than(seq: int) -> Callable[[Row], bool]:
    return lambda row: bool(row[0] >= seq)
