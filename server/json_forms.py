"""The JSON forms pages are made of: each row's fields as orjson bytes, its embedded parents spliced in.

The store keeps, per row version, the form :meth:`JsonForms.form` makes
(:mod:`store.presented`); a page item is then that row's bytes with each
embedded parent's own kept bytes spliced in before the closing brace, the
place ``Database._present`` puts them, so an order's user is always the user's
current version and the body is byte for byte what encoding the dicts would
give. Items are :class:`orjson.Fragment` values, which ``orjson.dumps`` copies
into the envelope as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from store.presented import PresentedForms

_NULL = b"null"


class JsonForms:
    """A :class:`~store.presented.Presenter` of orjson bytes."""

    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}

    def form(self, data: dict[str, Any]) -> bytes:
        return orjson.dumps(data)

    def item(self, form: bytes, parents: Sequence[tuple[str, bytes | None]]) -> orjson.Fragment:
        if not parents:
            return orjson.Fragment(form)
        if len(parents) == 1 and len(form) > 2:  # the common item (an order and its user), joined in one step
            name, parent = parents[0]
            return orjson.Fragment(b"".join((form[:-1], self._key(name), _NULL if parent is None else parent, b"}")))
        parts = [form[:-1]]
        for name, parent in parents:
            key = self._key(name)
            parts.append(key if len(parts) > 1 or len(form) > 2 else key[1:])  # no comma after "{"
            parts.append(_NULL if parent is None else parent)
        parts.append(b"}")
        return orjson.Fragment(b"".join(parts))

    def _key(self, name: str) -> bytes:
        """``,"name":``, made once per name."""
        key = self._keys.get(name)
        if key is None:
            key = self._keys[name] = b"," + orjson.dumps(name) + b":"
        return key


def json_forms(budget_bytes: int) -> PresentedForms | None:
    """Kept JSON forms within ``budget_bytes`` (0: none kept, every page presents its rows afresh)."""
    return PresentedForms(JsonForms(), budget_bytes) if budget_bytes > 0 else None
