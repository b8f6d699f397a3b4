"""The stable, JSON-based form of command fields: what the log writes and replays.

JSON's own values (str, int, float, bool, None, lists and dicts) are written as
they are; enum members as their value. Everything else gets a one-key tag
object, so reading it back gives an equal value of the same type: tuples
(``{"$t": [...]}``), sets, UUIDs, datetimes, integers wider than 64 bits
(encoded UUIDs, in predicates and pre-encoded rows), bytes (stored JSON),
``Decimal``, the query dataclasses and :class:`~store.table.EncodedRows`. A dict of the caller's own
that happens to look like a tag (one key starting with ``$``) is wrapped in
``{"$$": ...}``, so no value is ever mistaken for a tag.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from store.query import Predicate, Query, SortKey
from store.table import EncodedRows

_INT64 = (-(2**63), 2**63 - 1)
_NATIVE = (str, float, bool, type(None))


def to_plain(value: Any) -> Any:
    """``value`` as something orjson writes, tagged where JSON alone would lose its type."""
    kind = type(value)
    if kind in _NATIVE:
        return value
    if kind is int:
        return value if _INT64[0] <= value <= _INT64[1] else {"$i": format(value, "x")}
    if kind is UUID:
        return {"$u": value.hex}
    if kind is datetime:
        return {"$dt": value.isoformat()}
    if kind is dict or isinstance(value, Mapping):
        plain = {key: to_plain(item) for key, item in value.items()}
        if len(plain) == 1 and next(iter(plain)).startswith("$"):
            return {"$$": plain}
        return plain
    if kind is list:
        return [to_plain(item) for item in value]
    if kind is tuple:
        return {"$t": [to_plain(item) for item in value]}
    if kind is EncodedRows:
        return {"$rows": [to_plain(item) for item in value]}
    if isinstance(value, Predicate | SortKey | Query):
        return {f"${kind.__name__}": [to_plain(item) for item in fields_of(value)]}
    if isinstance(value, Enum):
        return to_plain(value.value)
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode()}
    if isinstance(value, Decimal):
        return {"$d": str(value)}
    if isinstance(value, set | frozenset):
        return {"$set": [to_plain(item) for item in value]}
    if isinstance(value, str):  # a subclass of str (an enum member is caught above)
        return str(value)
    if isinstance(value, int):
        return to_plain(int(value))
    if isinstance(value, list):
        return to_plain(list(value))
    if isinstance(value, tuple):
        return to_plain(tuple(value))
    raise TypeError(f"{kind.__name__} has no stable encoded form")


def fields_of(value: Predicate | SortKey | Query) -> tuple[Any, ...]:
    """The dataclass's fields in order, not converted (``dataclasses.astuple`` would copy deeply)."""
    return tuple(getattr(value, name) for name in value.__slots__)


def _tuple(items: list[Any]) -> tuple[Any, ...]:
    return tuple(from_plain(item) for item in items)


_TAGS: dict[str, Callable[[Any], Any]] = {
    "$i": lambda text: int(text, 16),
    "$t": _tuple,
    "$rows": lambda items: EncodedRows(from_plain(item) for item in items),
    "$u": UUID,
    "$dt": datetime.fromisoformat,
    "$b": base64.b64decode,
    "$d": Decimal,
    "$set": lambda items: frozenset(from_plain(item) for item in items),
    "$Predicate": lambda items: Predicate(*_tuple(items)),
    "$SortKey": lambda items: SortKey(*_tuple(items)),
    "$Query": lambda items: Query(*_tuple(items)),
    "$$": lambda inner: {key: from_plain(item) for key, item in inner.items()},
}


def from_plain(value: Any) -> Any:
    """The value :func:`to_plain` was given (equal, and of the same type), from its parsed JSON."""
    kind = type(value)
    if kind is dict:
        if len(value) == 1:
            (key, inner), *_ = value.items()
            if key.startswith("$"):
                try:
                    return _TAGS[key](inner)
                except KeyError:
                    raise ValueError(f"unknown tag {key}") from None
        return {key: from_plain(item) for key, item in value.items()}
    if kind is list:
        return [from_plain(item) for item in value]
    return value
