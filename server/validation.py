"""Pydantic's validation errors in memdb's own voice.

memdb's messages are lower-case phrases that name the problem ("request
validation failed", "wrong email or password"); pydantic's read "Input should
be greater than 0" or "Value error, must be 8 to 72 bytes". :func:`plain` turns
one pydantic error into memdb's voice ("must be greater than 0", "must be 8 to
72 bytes in UTF-8", "is required", "is not a known field"), and
:func:`details` turns a whole error list into the envelope's ``details``, so
every route, the seed loader and import jobs word validation the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic_core import ErrorDetails

_BY_TYPE = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
}
_AFTER_COLON = re.compile(r"(?<=: )[A-Z](?=[a-z ])")
"""A capital that opens a sentence after a colon (email-validator's reasons), but not an acronym."""
_PREFIXES = ("Value error, ", "Assertion failed, ")
_OPENINGS = (
    ("Input should be", "must be"),
    ("Input should have", "must have"),
    ("String should have", "must have"),
    ("String should match", "must match"),
    ("List should have", "must have"),
    ("Tuple should have", "must have"),
    ("Dictionary should have", "must have"),
    ("Decimal input should have", "must have"),
    ("Decimal input should be", "must be"),
    ("Value should have", "must have"),
    ("Object should have", "must have"),
    ("Data should have", "must have"),
    ("value is not a valid email address:", "must be a valid email address:"),
)


def plain(problem: ErrorDetails | dict[str, Any]) -> str:
    """One pydantic error's message, worded as memdb words its own: lower-case, no trailing full stop."""
    kind = str(problem.get("type", ""))
    if kind in _BY_TYPE:
        return _BY_TYPE[kind]
    message = str(problem.get("msg", "is not valid"))
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    for opening, replacement in _OPENINGS:
        if message.startswith(opening):
            message = replacement + message[len(opening) :]
            break
    message = _AFTER_COLON.sub(lambda match: match.group(0).lower(), message.rstrip("."))
    return message[:1].lower() + message[1:] if message[1:2].islower() else message


def field(location: Sequence[Any]) -> str:
    return ".".join(str(part) for part in location)


def details(problems: Iterable[ErrorDetails | dict[str, Any]], prefix: str = "") -> list[dict[str, str]]:
    """The envelope's ``details`` for these errors, each field named from ``prefix`` (``body``) on."""
    return [
        {"field": field((*([prefix] if prefix else []), *problem.get("loc", ()))), "message": plain(problem)}
        for problem in problems
    ]
