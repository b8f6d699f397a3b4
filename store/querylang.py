"""The textual query language: ``field__op=value`` filters and ``sort=`` specs.

A :class:`QueryParser` is built once per table from its :class:`TableSpec`
and turns request parameters into a :class:`store.query.Query`, parsing each
value with its column's codec. Anything it cannot understand (an unknown
field or operator, a value that does not parse, ``contains`` on a non-text
field, comparing a whole object with anything but null, sorting by a nested
object) is an :class:`InvalidQuery` naming the parameter; nothing is silently
ignored. :meth:`QueryParser.filters` and :meth:`QueryParser.sortable` list
what it accepts, so a description of the language (the API's OpenAPI
document) is built from the parser itself and cannot drift from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from store.codecs import Codec, codec_for, parse_datetime_text, parse_json_scalar, reason
from store.errors import InvalidQuery
from store.query import OPERATORS, Op, Predicate, Query, SortKey
from store.schema import Column, Kind, TableSpec

_TEXT_KINDS = (Kind.STR, Kind.ENUM)
_RANGE_SUFFIXES = {"_after": "gt", "_before": "lt"}
_ORDERED_OPERATORS: tuple[Op, ...] = ("eq", "ne", "gt", "gte", "lt", "lte", "in")


@dataclass(frozen=True, slots=True)
class FilterParameter:
    """One query parameter the parser understands: ``field`` (a dot path) compared by ``op``.

    ``kind`` and ``choices`` say how its value is parsed; ``nullable`` whether ``null`` is a value
    (for ``eq``, ``ne`` and inside ``in``). A date-range alias (``created_after``) has ``op`` ``gt``/``lt``.
    """

    name: str
    field: str
    op: Op
    kind: Kind
    choices: tuple[str, ...] = ()
    nullable: bool = False


class QueryParser:
    """Parses filter and sort parameters for one table."""

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        self.codecs: dict[str, Codec] = {c.name: codec_for(c) for c in spec.columns if not c.hidden}
        self.children: dict[tuple[str, str], Codec] = {
            (c.name, child): codec_for(Column(child, kind))
            for c in spec.columns
            if not c.hidden
            for child, kind in c.children.items()
        }

    def filters(self) -> tuple[FilterParameter, ...]:
        """Every filter parameter with a fixed name, in column order (``metadata.<key>`` paths are open-ended)."""
        found: list[FilterParameter] = []
        for codec in self.codecs.values():
            column = codec.column
            if column.kind is Kind.JSON:
                # A whole object compares only with null; its declared children are fields of their own.
                found += [
                    FilterParameter(self._named(column.name, op), column.name, op, Kind.JSON, (), True)
                    for op in ("eq", "ne")
                ]
                for child, kind in column.children.items():
                    found += self._operators(f"{column.name}.{child}", kind, (), True)
                continue
            found += self._operators(column.name, column.kind, column.choices, column.nullable)
            if column.kind is Kind.DATETIME:
                stem = column.name.removesuffix("_at")
                found += [
                    FilterParameter(f"{stem}{suffix}", column.name, cast(Op, op), Kind.DATETIME)
                    for suffix, op in _RANGE_SUFFIXES.items()
                ]
        return tuple(found)

    def sortable(self) -> tuple[str, ...]:
        """The fields ``sort`` accepts."""
        return tuple(name for name, codec in self.codecs.items() if codec.column.kind is not Kind.JSON)

    def _operators(self, field: str, kind: Kind, choices: tuple[str, ...], nullable: bool) -> list[FilterParameter]:
        operators = (*_ORDERED_OPERATORS, "contains") if kind in _TEXT_KINDS else _ORDERED_OPERATORS
        return [FilterParameter(self._named(field, op), field, op, kind, choices, nullable) for op in operators]

    @staticmethod
    def _named(field: str, op: Op) -> str:
        return field if op == "eq" else f"{field}__{op}"

    def parse(self, filters: Iterable[tuple[str, str]], sort: str | None, page: int = 1, per_page: int = 20) -> Query:
        predicates = tuple(self.predicate(name, value) for name, value in filters)
        return Query(predicates, self.sort(sort) if sort else (), page, per_page)

    def predicate(self, parameter: str, text: str) -> Predicate:
        ranged = self._date_range(parameter, text)
        if ranged is not None:
            return ranged
        field, separator, op_name = parameter.partition("__")
        op = op_name if separator else "eq"
        if op not in OPERATORS:
            raise InvalidQuery(parameter, f"unknown operator '{op}'; use one of {', '.join(OPERATORS)}")
        path = tuple(field.split("."))
        codec = self.codecs.get(path[0])
        if codec is None or not all(path):
            raise InvalidQuery(parameter, f"unknown field '{field}'")
        kind, parse = self._resolve(parameter, codec, path)
        if len(path) == 1 and kind is Kind.JSON and (op not in ("eq", "ne") or text != "null"):
            raise InvalidQuery(parameter, f"'{field}' is an object: compare it with null or filter by dot path")
        if op == "contains" and kind not in _TEXT_KINDS and kind is not Kind.JSON:
            raise InvalidQuery(parameter, "'contains' applies only to text fields")
        nullable = len(path) > 1 or codec.column.nullable
        try:
            value: Any
            if op == "in":
                value = tuple(self._value(item, parse, nullable) for item in text.split(","))
            elif op == "contains":
                value = text
            else:
                value = self._value(text, parse, nullable and op in ("eq", "ne"))
        except (ValueError, TypeError, ArithmeticError) as error:
            raise InvalidQuery(parameter, f"cannot parse '{text}': {reason(error, kind)}") from None
        return Predicate(path, op, value)

    def sort(self, text: str) -> tuple[SortKey, ...]:
        keys: list[SortKey] = []
        for part in text.split(","):
            field, _, direction = part.strip().partition(":")
            codec = self.codecs.get(field)
            if codec is None:
                raise InvalidQuery("sort", f"unknown field '{field}'")
            if codec.column.kind is Kind.JSON:
                raise InvalidQuery("sort", f"cannot sort by the nested object '{field}'")
            if direction not in ("", "asc", "desc"):
                raise InvalidQuery("sort", f"direction must be 'asc' or 'desc', not '{direction}'")
            keys.append(SortKey(field, direction == "desc"))
        return tuple(keys)

    def _date_range(self, parameter: str, text: str) -> Predicate | None:
        for suffix, op in _RANGE_SUFFIXES.items():
            if not parameter.endswith(suffix):
                continue
            stem = parameter[: -len(suffix)]
            for name in (f"{stem}_at", stem):
                codec = self.codecs.get(name)
                if codec is not None and codec.column.kind is Kind.DATETIME:
                    try:
                        return Predicate((name,), cast(Op, op), parse_datetime_text(text))
                    except ValueError as error:
                        why = reason(error, Kind.DATETIME)
                        raise InvalidQuery(parameter, f"cannot parse '{text}': {why}") from None
        return None

    def _resolve(self, parameter: str, codec: Codec, path: tuple[str, ...]) -> tuple[Kind, Any]:
        column = codec.column
        if len(path) == 1:
            return column.kind, codec.parse
        if column.kind is not Kind.JSON:
            raise InvalidQuery(parameter, f"'{column.name}' has no nested fields")
        if not column.children:
            return Kind.JSON, parse_json_scalar
        child = self.children.get((column.name, path[1]))
        if child is None or len(path) > 2:
            raise InvalidQuery(parameter, f"unknown field '{'.'.join(path)}'")
        return child.column.kind, child.parse

    @staticmethod
    def _value(text: str, parse: Any, nullable: bool) -> Any:
        if nullable and text == "null":
            return None
        return parse(text)
