"""One table: compact rows, the primary-key map and the table's own indexes.

A row is a tuple ``(seq, version, col0, col1, ...)`` of encoded values: ``seq``
is the insertion number (ties in every sort are broken by it, so paging is
stable), ``version`` counts the row's writes (it makes up the row's tag).
Rows are immutable; a write replaces the tuple, so a row handed to a reader is
a consistent snapshot. The table keeps its unique and secondary indexes in
step with every add, replace and remove; integrity across tables (foreign
keys) is the database's job.

Rows are kept small, because a table may hold millions of them: repeated
strings and JSON values are shared through a :class:`~store.pool.Pool`, equal
integers within one row (a creation time repeated as an update time) are one
object, and index buckets hold primary keys — the very objects the rows hold —
kept in insertion order, so a bucket is also a ready-made ordering and costs
eight bytes per entry: a small bucket is a tuple (48-80 bytes for one to five
keys, where a list grown by appends takes 96-128), a larger one a list.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, chain, compress, islice, takewhile
from operator import is_not, itemgetter, lt
from typing import TYPE_CHECKING, Any

from store.codecs import Codec, codec_for, reason
from store.errors import Conflict, InvalidValue
from store.pool import Pool
from store.schema import Column, Kind, TableSpec

if TYPE_CHECKING:
    from store.ordered import OrderedIndex
    from store.presented import PresentedForms

Row = tuple[Any, ...]
ROW_HEADER = 2  # seq, version
_LINEAR_SEARCH = 32  # buckets up to this size are searched by scanning, larger ones by bisection
SMALL_BUCKET = 32
"""Buckets of up to this many keys are tuples, rebuilt on each change (cheap at this size); larger ones lists.

A user's orders are a few keys each: at 800,000 orders over 160,000 users, tuples take about 6 MiB less than
lists grown by appends (over-allocated, and a list object and its item array are two allocations)."""
Bucket = list[Any] | tuple[Any, ...]
_first = itemgetter(0)  # a row's seq, at C speed
PATCH_LIMIT = 1024
"""Most rows a restore reverts or removes in place per table (about 3 ms in the command; more, and the table is
rebuilt), and most writes a table logs after a snapshot or restore (:attr:`Table.touched`; more, and a restore
compares every row)."""


class EncodedRows(list[dict[str, Any]]):
    """Rows whose values already went through :meth:`Table.encode` of the same table (in another process, say).

    :meth:`Database.load <store.database.Database.load>` given such a batch
    skips the codecs and only shares pooled values, so the encoding can be
    done in parallel with the inserting. Each dict is taken over (changed in
    place), and its values are trusted to be in the column's encoding.
    """


@dataclass(frozen=True, slots=True)
class Buckets:
    """An index's buckets flattened: the values, every bucket's keys one after another, and each bucket's length.

    Two lists and an array whatever the number of buckets (a tuple per bucket
    would cost 40 bytes each, and make as many objects for the collector).
    """

    values: list[Any]
    keys: list[Any]
    lengths: array[int]

    @classmethod
    def of(cls, buckets: Mapping[Any, Sequence[Any]]) -> Buckets:
        return cls(list(buckets), list(chain.from_iterable(buckets.values())), array("Q", map(len, buckets.values())))

    @property
    def size(self) -> int:
        return sys.getsizeof(self.values) + sys.getsizeof(self.keys) + sys.getsizeof(self.lengths)


@dataclass(frozen=True, slots=True)
class TableImage:
    """A table's own structures at one moment, for :meth:`Table.restore`; the rows themselves are shared.

    Kept compact (a snapshot should cost a fraction of the data it covers): the
    primary-key map and each unique map as parallel lists of keys and values,
    each index as its values and a tuple per bucket. Rebuilding a dict from two
    lists is one C-level pass, so a restore costs about what copying would.
    """

    keys: list[Any]
    rows: list[Row]
    unique: dict[str, tuple[list[Any], list[Any]]]
    indexes: dict[str, Buckets]
    in_default_order: bool
    last_default: Any
    size: int
    """Approximate bytes these structures hold (the rows not counted: the live table shares them)."""
    in_seq_order: bool = False
    """Whether ``rows`` ascend by insertion number (what lets a restore find a row in them by bisection)."""

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(slots=True)
class Structures:
    """A table's primary-key map, unique maps and index buckets: what a restore swaps in, and out, whole."""

    rows: dict[Any, Row]
    unique: dict[str, dict[Any, Any]]
    indexes: dict[str, dict[Any, Bucket]]


@dataclass(frozen=True, slots=True)
class Patch:
    """What turns a live table back into a snapshot's image without building anything: rows to revert and to drop.

    Worked out against one state of the table (its primary-key map and its
    write count then); :meth:`Table.revert` applies it only to that state.
    """

    rows: dict[Any, Row]
    writes: int
    reverted: list[tuple[Row, Row]]
    """(live row, the image's row): the same key and insertion number, changed since."""
    added: list[Row]
    """Live rows the image does not hold (inserted since it was taken)."""


def image_of(
    keys: list[Any],
    rows: list[Row],
    unique: dict[str, tuple[list[Any], list[Any]]],
    indexes: dict[str, Buckets],
    in_default_order: bool,
    last_default: Any,
    in_seq_order: bool | None = None,
) -> TableImage:
    """A :class:`TableImage` of these structures, its size reckoned (and, unless told, whether its rows ascend)."""
    size = sys.getsizeof(keys) + sys.getsizeof(rows)
    for held, holders in unique.values():
        size += sys.getsizeof(held) + sys.getsizeof(holders)
    size += sum(buckets.size for buckets in indexes.values())
    if in_seq_order is None:
        in_seq_order = all(map(lt, map(_first, rows), map(_first, islice(rows, 1, None))))
    return TableImage(keys, rows, unique, indexes, in_default_order, last_default, size, in_seq_order)


def building(image: TableImage, step: int) -> Generator[None, None, Structures]:
    """Fresh structures equal to ``image``'s, built ``step`` entries at a time (it yields between steps).

    Reads only the image, which nothing changes, so it may run outside the actor
    and be spread over many turns of the event loop.
    """
    rows: dict[Any, Row] = {}
    yield from _fill(rows, image.keys, image.rows, step)
    unique: dict[str, dict[Any, Any]] = {}
    for name, (held, holders) in image.unique.items():
        unique[name] = {}
        yield from _fill(unique[name], held, holders, step)
    indexes: dict[str, dict[Any, Bucket]] = {}
    for name, buckets in image.indexes.items():
        indexes[name] = {}
        yield from _fill_buckets(indexes[name], buckets, step)
    return Structures(rows, unique, indexes)


def _fill(target: dict[Any, Any], keys: list[Any], values: list[Any], step: int) -> Iterator[None]:
    for start in range(0, len(keys), step):
        target.update(zip(keys[start : start + step], values[start : start + step], strict=True))
        yield


def _fill_buckets(target: dict[Any, Bucket], buckets: Buckets, step: int) -> Iterator[None]:
    """``step`` buckets at a time, each sliced out of the flattened keys (a tuple if small: :data:`SMALL_BUCKET`)."""
    flat, offset = buckets.keys, 0
    for start in range(0, len(buckets.values), step):
        ends = list(accumulate(buckets.lengths[start : start + step], initial=offset))
        sliced = map(compact, map(flat.__getitem__, map(slice, ends, ends[1:])))
        target.update(zip(buckets.values[start : start + step], sliced, strict=True))
        offset = ends[-1]
        yield


def patching(table: Table, image: TableImage, step: int) -> Generator[None, None, Patch | None]:
    """The :class:`Patch` from ``table`` now back to ``image``, comparing ``step`` rows at a time.

    ``None`` if it would change more than :data:`PATCH_LIMIT` rows, or a row the
    image holds is gone (put back, it would land at the end of the primary-key
    map, out of insertion order), or the table is written to meanwhile, or the
    rows of either are not in insertion order.

    When the table still keeps a log of the rows written since it last was
    ``image`` (see :attr:`Table.touched`), only those rows are looked at, in one
    step. Otherwise every row is compared, by identity: rows are immutable, so a
    row the table still holds unchanged is the very tuple the image holds. Rows
    added since the image are the ones numbered above all of its rows; the map
    keeps rows in insertion order, so they are found from its end.
    """
    if not (image.in_seq_order and table.rows_in_seq_order) or table.staged:
        return None
    if table.baseline is image and table.touched is not None:
        return logged_patch(table, image)
    rows, writes = table.rows, table.writes
    keys, held = image.keys, image.rows
    reverted: list[tuple[Row, Row]] = []
    newest = -1
    for start in range(0, len(keys), step):
        if table.rows is not rows or table.writes != writes or table.staged:
            return None
        end = start + step
        live = list(map(rows.get, keys[start:end]))
        wanted = held[start:end]
        newest = max(newest, max(map(_first, wanted)))
        for at in compress(range(len(live)), map(is_not, live, wanted)):
            current = live[at]
            if current is None or current[0] != wanted[at][0]:
                return None
            reverted.append((current, wanted[at]))
        if len(reverted) > PATCH_LIMIT:
            return None
        yield
    if table.rows is not rows or table.writes != writes or table.staged:
        return None
    extra = len(rows) - len(keys)
    if extra + len(reverted) > PATCH_LIMIT:
        return None
    added = list(islice(takewhile(lambda row: row[0] > newest, reversed(rows.values())), extra))
    if len(added) != extra:  # a row added since with an older number (another snapshot's, restored)
        return None
    return Patch(rows, writes, reverted, added)


def logged_patch(table: Table, image: TableImage) -> Patch | None:
    """The :class:`Patch` back to ``image`` from the table's log of writes, if it has one against ``image``."""
    if table.baseline is not image or table.touched is None or table.staged:
        return None
    if not (image.in_seq_order and table.rows_in_seq_order):
        return None
    return table.patch_from_log(image)


def releasing(structures: Structures, step: int) -> Iterator[None]:
    """Empty ``structures`` ``step`` entries at a time, so freeing what only they held is spread out too."""
    for held in (structures.rows, *structures.unique.values(), *structures.indexes.values()):
        while held:
            for _ in range(min(step, len(held))):
                held.popitem()
            yield


def built(steps: Generator[None, None, Structures]) -> Structures:
    """What ``steps`` builds, all at once."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def compact(keys: list[Any]) -> Bucket:
    """``keys`` as a bucket: a tuple if it is small, else the list itself."""
    return tuple(keys) if len(keys) <= SMALL_BUCKET else keys


def fold(value: Any) -> Any:
    """The case-insensitive key of ``value``; the value itself when folding changes nothing."""
    if isinstance(value, str):
        folded = value.casefold()
        return value if folded == value else folded
    return value


class Table:
    """Rows of one :class:`TableSpec`, with a primary-key map and indexes."""

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.columns: tuple[Column, ...] = spec.columns
        self.codecs: dict[str, Codec] = {c.name: codec_for(c) for c in spec.columns}
        self.position: dict[str, int] = {c.name: i + ROW_HEADER for i, c in enumerate(spec.columns)}
        self.pk_position = self.position[spec.primary_key]
        self.rows: dict[Any, Row] = {}
        self.staged: dict[Any, int] = {}
        """Primary keys of rows an open transaction added (-> its number): in the table, seen by no one else."""
        self.unique: dict[str, dict[Any, Any]] = {c.name: {} for c in spec.columns if c.unique}
        indexed = {c.name for c in spec.columns if c.indexed} | {fk.field for fk in spec.foreign_keys}
        self.indexes: dict[str, dict[Any, Bucket]] = {name: {} for name in sorted(indexed)}
        """Value -> primary keys of the rows holding it, in insertion (``seq``) order; no empty buckets."""
        self.folded = frozenset(c.name for c in spec.columns if c.case_insensitive)
        self.ordered: dict[Any, OrderedIndex] = {}
        """Column (or ``(column, indexed column, key)`` for a group) -> its ordered index (:mod:`store.ordered`),
        made the first time a query walks it."""
        # Money is pooled too: a catalogue's few thousand prices recur over a million orders, and each
        # amount over 2.56 is otherwise a 32-byte int of its own.
        self.pools: dict[str, Pool] = {
            c.name: Pool()
            for c in spec.columns
            if c.kind in (Kind.STR, Kind.JSON, Kind.DECIMAL) and not c.unique and c.name != spec.primary_key
        }
        self.every_column = tuple((c.name, self.position[c.name], self.codecs[c.name].present) for c in spec.columns)
        self.visible = tuple(entry for entry, c in zip(self.every_column, spec.columns, strict=True) if not c.hidden)
        self.default_position = self.position[spec.default_sort]
        self._unique_keys = tuple((name, self.position[name], name in self.folded) for name in self.unique)
        self._index_keys = tuple((name, self.position[name], name in self.folded) for name in self.indexes)
        self._layout = tuple((c.name, c.nullable) for c in spec.columns)
        self.auto_columns = tuple(c.name for c in spec.columns if c.auto is not None)
        """Columns the store fills in (with the time) when a new row leaves them out."""
        self._encoders = {
            c.name: (self.codecs[c.name].encode, self.pools.get(c.name), c.auto is not None, c.nullable, c.kind)
            for c in spec.columns
        }
        # Integer columns wide enough not to be CPython's shared small ints: equal values in one row share one object.
        self._wide_ints = tuple(self.position[c.name] for c in spec.columns if c.kind in (Kind.DATETIME, Kind.INT))
        # True while rows were inserted in default-sort order; lets a query walk
        # the insertion order instead of sorting.
        self.in_default_order = True
        self._last_default: Any = None
        self._next_seq = 0
        self._top_version = 1
        self._version_floor = 0
        """A version below this may have been given out before a restore: never given again (see ``restore``)."""
        self.rows_examined = 0
        self.forms: PresentedForms | None = None
        """The database's presented forms (:mod:`store.presented`), if it keeps any: a row's goes when it changes."""
        self.writes = 0
        """Rows added, replaced and removed so far: a :class:`Patch` worked out before a write is out of date."""
        self.rows_in_seq_order = True
        """Whether the primary-key map holds its rows by ascending insertion number (no older row was put back)."""
        self.baseline: TableImage | None = None
        """The image the table was exactly, the last time a snapshot was taken or restored (``None``: none since)."""
        self.touched: list[tuple[Any, int]] | None = None
        """(key, insertion number) of each row written since the table was :attr:`baseline`; ``None`` when there is
        no baseline or more than :data:`PATCH_LIMIT` were written (then a restore compares every row)."""

    def __len__(self) -> int:
        """Rows everyone can see (staged rows are not counted)."""
        return len(self.rows) - len(self.staged)

    @property
    def next_seq(self) -> int:
        """The ``seq`` the next new row gets: rows numbered from here on are newer than now."""
        return self._next_seq

    def encode(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Encode ``values`` column by column; unknown names are refused."""
        encoded: dict[str, Any] = {}
        encoders = self._encoders
        for name, value in values.items():
            encoder = encoders.get(name)
            if encoder is None:
                raise InvalidValue(self.name, name, "no such column")
            encode, pool, auto, nullable, kind = encoder
            if value is None:
                if auto:
                    continue
                if not nullable:
                    raise InvalidValue(self.name, name, "may not be null")
                encoded[name] = None
                continue
            try:
                value = encode(value)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise InvalidValue(self.name, name, reason(exc, kind)) from None
            encoded[name] = value if pool is None else pool.share(value)
        return encoded

    def adopt(self, encoded: dict[str, Any]) -> dict[str, Any]:
        """``encoded`` (from :meth:`encode`, maybe in another process) with its pooled values shared."""
        for name, pool in self.pools.items():
            value = encoded.get(name)
            if value is not None:
                encoded[name] = pool.share(value)
        return encoded

    def new_row(self, encoded: Mapping[str, Any]) -> Row:
        values: list[Any] = [self._next_seq, 1]
        get = encoded.get
        for name, nullable in self._layout:
            value = get(name)
            if value is None and not nullable:
                raise InvalidValue(self.name, name, "is required")
            values.append(value)
        return self._share_equal_ints(values)

    def changed_row(self, row: Row, encoded: Mapping[str, Any]) -> Row:
        values = list(row)
        version = row[1] + 1
        if version < self._version_floor:
            version = self._version_floor
        if version > self._top_version:
            self._top_version = version
        values[1] = version
        for name, value in encoded.items():
            values[self.position[name]] = value
        return self._share_equal_ints(values)

    def order_state(self) -> tuple[Any, ...]:
        """What the table remembers beyond its rows: the next ``seq``, whether rows came in default-sort order, the
        last one's sort value, the highest version given out and the floor a restore set (a snapshot file keeps
        them: deleted and replaced rows shaped them, and the next write's tag depends on them)."""
        return self._next_seq, self.in_default_order, self._last_default, self._top_version, self._version_floor

    def set_order_state(self, state: Sequence[Any]) -> None:
        self._next_seq, self.in_default_order, self._last_default = state[:3]
        if len(state) == 5:
            self._top_version, self._version_floor = state[3:]
        else:  # written before versions were kept: the highest one the rows hold
            self._top_version = max((row[1] for row in self.rows.values()), default=1)

    def restore(self, rows: Sequence[Row], share: Callable[[list[Any]], None]) -> None:
        """Put back ``rows`` (from a snapshot of this table, trusted: no checks); then :meth:`set_order_state`.

        Pooled values are shared again and ``share`` may swap in shared objects
        (foreign keys) before each row is added.
        """
        for row in self.revive(rows, share):
            self.add(row)

    def revive(self, rows: Iterable[Row], share: Callable[[list[Any]], None]) -> Iterator[Row]:
        """``rows`` read back from a file, their values shared as a live table's are (see :meth:`restore`)."""
        pooled: list[tuple[int, Callable[[Any], Any]]] = [
            (self.position[name], pool.share) for name, pool in self.pools.items()
        ]
        # Choices are interned strings in a live table: one object for a million rows' "pending".
        pooled += [(self.position[c.name], sys.intern) for c in self.columns if c.kind is Kind.ENUM]
        for stored in rows:
            values = list(stored)
            for position, shared in pooled:
                value = values[position]
                if value is not None:
                    values[position] = shared(value)
            share(values)
            yield self._share_equal_ints(values)

    def check_unique(self, row: Row, previous: Row | None = None) -> None:
        """Raise :class:`Conflict` if ``row`` would duplicate a key held by another row."""
        pk = row[self.pk_position]
        if previous is None and pk in self.rows:
            raise Conflict(
                self.name,
                self.spec.primary_key,
                f"{self.name} {self.codecs[self.spec.primary_key].present(pk)} already exists",
            )
        for name, position, folded in self._unique_keys:
            key = fold(row[position]) if folded else row[position]
            if key is None:
                continue
            holder = self.unique[name].get(key)
            if holder is not None and holder != pk:
                raise Conflict(self.name, name, f"a {self.name} with this {name} already exists")

    def add(self, row: Row) -> None:
        pk = row[self.pk_position]
        self.rows[pk] = row
        self.writes += 1
        seq = row[0]
        if self.touched is not None:
            self._touch(pk, seq)
        if seq >= self._next_seq:
            self._next_seq = seq + 1
        elif len(self.rows) > 1:  # an older row put back goes to the end of the map
            self.rows_in_seq_order = False
        default = row[self.default_position]
        if self.in_default_order and len(self.rows) > 1:
            last = self._last_default
            if default is None or last is None or default < last:
                self.in_default_order = False
        self._last_default = default
        self._key(row)
        if self.ordered:
            for index in self.ordered.values():
                index.added(row)

    def remove(self, row: Row) -> None:
        pk = row[self.pk_position]
        for name, position, folded in self._unique_keys:
            key = fold(row[position]) if folded else row[position]
            if key is not None:
                self.unique[name].pop(key, None)
        for name, position, folded in self._index_keys:
            key = fold(row[position]) if folded else row[position]
            self._unbucket(self.indexes[name], key, pk, row[0])
        del self.rows[pk]
        if self.forms:
            self.forms.drop(pk)
        self.writes += 1
        if self.touched is not None:
            self._touch(pk, row[0])
        if self.ordered:
            for index in self.ordered.values():
                index.removed(row)
        if not self.rows:
            self.in_default_order = True
            self._last_default = None
            self.rows_in_seq_order = True

    def replace(self, old: Row, new: Row) -> None:
        pk = old[self.pk_position]
        self.rows[pk] = new
        if self.forms:
            self.forms.drop(pk)
        self.writes += 1
        if self.touched is not None:
            self._touch(pk, old[0])
        for name, position, folded in self._unique_keys:
            old_key = fold(old[position]) if folded else old[position]
            new_key = fold(new[position]) if folded else new[position]
            if old_key != new_key:
                if old_key is not None:
                    self.unique[name].pop(old_key, None)
                if new_key is not None:
                    self.unique[name][new_key] = pk
        if old[self.default_position] != new[self.default_position]:
            self.in_default_order = False
        for name, position, folded in self._index_keys:
            old_key = fold(old[position]) if folded else old[position]
            new_key = fold(new[position]) if folded else new[position]
            if old_key != new_key:
                buckets = self.indexes[name]
                self._unbucket(buckets, old_key, pk, old[0])
                self._bucket(buckets, new_key, pk, new[0])
        if self.ordered:
            for index in self.ordered.values():
                index.replaced(old, new)

    def is_visible(self, row: Row) -> bool:
        """False for a row an open transaction staged."""
        return row[self.pk_position] not in self.staged

    def lookup(self, name: str, value: Any) -> Sequence[Any] | None:
        """Primary keys whose ``name`` equals ``value``, in insertion order, if an index answers that.

        The answer may be the index's own bucket: read it, never change it.
        """
        if name == self.spec.primary_key:
            return (value,) if value in self.rows else ()
        key = fold(value) if name in self.folded else value
        unique = self.unique.get(name)
        if unique is not None:
            holder = unique.get(key)
            return () if holder is None else (holder,)
        buckets = self.indexes.get(name)
        if buckets is not None:
            return buckets.get(key, ())
        return None

    def present(self, row: Row, reveal: bool = False) -> dict[str, Any]:
        """The row as JSON-ready values, hidden columns left out unless ``reveal``."""
        columns = self.every_column if reveal else self.visible
        return {name: (None if row[pos] is None else present(row[pos])) for name, pos, present in columns}

    def tag(self, row: Row) -> str:
        """A strong version tag, unique over the row's whole life."""
        return f"{row[0]:x}.{row[1]:x}"

    def value(self, row: Row, name: str) -> Any:
        return row[self.position[name]]

    def rows_in_order(self, keys: Iterable[Any]) -> list[Row]:
        """The rows of ``keys`` sorted by insertion order."""
        rows = self.rows
        found = [rows[key] for key in keys]
        found.sort(key=_seq)
        return found

    def image(self) -> TableImage:
        """The table's structures as of now, rows an open transaction staged left out."""
        rows, unique, indexes = self.rows, self.unique, self.indexes
        if self.staged:
            return self._visible_image()
        keys = list(rows)
        values = list(rows.values())
        unique_lists = {name: (list(held), list(held.values())) for name, held in unique.items()}
        return self._image(keys, values, unique_lists, {name: Buckets.of(buckets) for name, buckets in indexes.items()})

    def _visible_image(self) -> TableImage:
        staged = self.staged
        pairs = [(key, row) for key, row in self.rows.items() if key not in staged]
        unique_lists: dict[str, tuple[list[Any], list[Any]]] = {}
        for name, held in self.unique.items():
            kept = [(value, key) for value, key in held.items() if key not in staged]
            unique_lists[name] = ([value for value, _ in kept], [key for _, key in kept])
        index_lists: dict[str, Buckets] = {}
        for name, buckets in self.indexes.items():
            visible = {value: [key for key in bucket if key not in staged] for value, bucket in buckets.items()}
            index_lists[name] = Buckets.of({value: bucket for value, bucket in visible.items() if bucket})
        return self._image([key for key, _ in pairs], [row for _, row in pairs], unique_lists, index_lists)

    def _image(
        self,
        keys: list[Any],
        rows: list[Row],
        unique: dict[str, tuple[list[Any], list[Any]]],
        indexes: dict[str, Buckets],
    ) -> TableImage:
        return image_of(keys, rows, unique, indexes, self.in_default_order, self._last_default, self.rows_in_seq_order)

    def swap_in(self, image: TableImage, structures: Structures) -> Structures:
        """Become exactly what the table was when ``image`` was taken, swapping in ``structures`` built from it.

        ``structures`` (from :func:`building`) become the table's own, so later
        writes never reach the image, which stays usable; the table's previous
        structures are returned, for the caller to let go of. Insertion numbers carry on from where they are (a row
        made after this never gets the number of one a client saw before), and
        so do versions: a restored row keeps its version (its tag is the one it
        had), but its next change skips every version given out so far, so no
        tag is ever given to two different contents. Ordered indexes are dropped
        and rebuilt by the next walk that needs one. The caller makes sure no
        transaction has rows staged here.
        """
        previous = Structures(self.rows, self.unique, self.indexes)
        self.rows, self.unique, self.indexes = structures.rows, structures.unique, structures.indexes
        self.writes += 1
        self.rows_in_seq_order = image.in_seq_order
        self._restored(image)
        return previous

    def is_patchable(self, patch: Patch) -> bool:
        """Whether ``patch`` was worked out against the table as it is now (nothing written since)."""
        return patch.rows is self.rows and patch.writes == self.writes and not self.staged

    def revert(self, image: TableImage, patch: Patch) -> None:
        """Become exactly what the table was when ``image`` was taken, by applying ``patch`` (see :func:`patching`).

        The same result as :meth:`swap_in`, tags and versions alike, in place:
        the rows added since go, the changed ones get their old tuples back
        where they stand (so the map keeps its order), and the unique maps and
        buckets follow. Only for a ``patch`` that :meth:`is_patchable`.
        """
        for row in patch.added:
            self.remove(row)
        # Keys first let go of, then taken: two reverted rows may swap a unique value.
        for current, _ in patch.reverted:
            self._unkey(current)
        for current, wanted in patch.reverted:
            self.rows[current[self.pk_position]] = wanted
            self._key(wanted)
        self.writes += 1
        self._restored(image)

    def _restored(self, image: TableImage) -> None:
        self.staged = {}
        self.in_default_order = image.in_default_order
        self._last_default = image.last_default
        self.ordered.clear()
        if self.forms:  # entries of rows the restore let go of would keep them alive
            self.forms.clear()
        self._version_floor = self._top_version + 1
        self.remember(image)

    def remember(self, image: TableImage) -> None:
        """Note that the table is exactly ``image`` now (just taken or restored): log the writes from here on."""
        self.baseline, self.touched = image, []

    def forget(self, image: TableImage) -> None:
        """Stop logging writes against ``image`` (its snapshot is gone)."""
        if self.baseline is image:
            self.baseline = self.touched = None

    def patch_from_log(self, image: TableImage) -> Patch | None:
        """The :class:`Patch` back to :attr:`baseline` ``image`` from the rows :attr:`touched` since (``None`` if a
        row the image holds is gone).

        The first write to a key since then tells which row the image holds for
        it: the one with that insertion number, found by bisection (the image's
        rows ascend by it), if its key is this one; none otherwise.
        """
        rows, held, position = self.rows, image.rows, self.pk_position
        reverted: list[tuple[Row, Row]] = []
        added: list[Row] = []
        for pk, seq in dict(reversed(self.touched or ())).items():  # each key's first write
            at = bisect_left(held, seq, key=_first)
            wanted = held[at] if at < len(held) and held[at][0] == seq and held[at][position] == pk else None
            current = rows.get(pk)
            if current is wanted:
                continue
            if wanted is None:
                added.append(current)  # type: ignore[arg-type]  # not None: ``current is wanted`` was not
            elif current is not None and current[0] == seq:
                reverted.append((current, wanted))
            else:
                return None
        return Patch(rows, self.writes, reverted, added)

    def _touch(self, pk: Any, seq: int) -> None:
        touched = self.touched
        assert touched is not None
        touched.append((pk, seq))
        if len(touched) > PATCH_LIMIT:
            self.touched = None

    def _unkey(self, row: Row) -> None:
        """Take ``row`` out of the unique maps (where it holds the key) and out of its buckets."""
        pk = row[self.pk_position]
        for name, position, folded in self._unique_keys:
            key = fold(row[position]) if folded else row[position]
            if key is not None and self.unique[name].get(key) == pk:
                del self.unique[name][key]
        for name, position, folded in self._index_keys:
            key = fold(row[position]) if folded else row[position]
            self._unbucket(self.indexes[name], key, pk, row[0])

    def _key(self, row: Row) -> None:
        """Put ``row`` (in the primary-key map already) into the unique maps and its buckets, in insertion order."""
        pk, seq = row[self.pk_position], row[0]
        for name, position, folded in self._unique_keys:
            key = fold(row[position]) if folded else row[position]
            if key is not None:
                self.unique[name][key] = pk
        for name, position, folded in self._index_keys:
            key = fold(row[position]) if folded else row[position]
            buckets = self.indexes[name]
            bucket = buckets.get(key)
            if bucket is None:
                buckets[key] = (pk,)
            elif type(bucket) is list and self.rows[bucket[-1]][0] < seq:  # a large bucket, a new row: the usual
                bucket.append(pk)
            else:  # a small bucket (a tuple: rebuilt), or an older row put back in its place
                self._bucket(buckets, key, pk, seq)

    def sweep_pools(self) -> int:
        """Let every pool forget the values no row holds any more; return how many went."""
        return sum(pool.sweep() for pool in self.pools.values())

    def trim_pools(self) -> int:
        """Let every pool forget the values at most one row holds (:meth:`Pool.trim`); return how many went."""
        return sum(pool.trim() for pool in self.pools.values())

    def _share_equal_ints(self, values: list[Any]) -> Row:
        """``values`` as a row, equal integers in it (a timestamp written twice) made one object."""
        seen: dict[Any, Any] = {}
        for position in self._wide_ints:
            value = values[position]
            if value is not None:
                values[position] = seen.setdefault(value, value)
        return tuple(values)

    def _seq_of(self, pk: Any) -> int:
        return self.rows[pk][0]  # type: ignore[no-any-return]

    def _bucket(self, buckets: dict[Any, Bucket], key: Any, pk: Any, seq: int) -> None:
        """Put ``pk`` (its row, numbered ``seq``, already in the primary-key map) in ``key``'s bucket, by seq."""
        bucket = buckets.get(key)
        if bucket is None:
            buckets[key] = (pk,)
            return
        # An older row (a delete undone, a change reverted, a row moving between buckets) goes in its place.
        at = len(bucket) if self.rows[bucket[-1]][0] < seq else bisect_left(bucket, seq, key=self._seq_of)
        if isinstance(bucket, list):
            bucket.insert(at, pk)
        elif len(bucket) < SMALL_BUCKET:
            buckets[key] = (*bucket, pk) if at == len(bucket) else (*bucket[:at], pk, *bucket[at:])
        else:
            buckets[key] = [*bucket[:at], pk, *bucket[at:]]

    def _unbucket(self, buckets: dict[Any, Bucket], key: Any, pk: Any, seq: int) -> None:
        bucket = buckets[key]
        if len(bucket) > _LINEAR_SEARCH:
            at = bisect_left(bucket, seq, key=self._seq_of)
            if at >= len(bucket) or bucket[at] != pk:  # pragma: no cover - only if two rows ever shared a seq
                at = bucket.index(pk)
        else:
            at = bucket.index(pk)
        if len(bucket) == 1:
            del buckets[key]
        elif isinstance(bucket, list):
            del bucket[at]
        else:
            buckets[key] = bucket[:at] + bucket[at + 1 :]


def _seq(row: Row) -> int:
    return row[0]  # type: ignore[no-any-return]
