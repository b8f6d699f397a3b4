"""Invalid ``MEMDB_*`` settings as one plain line each: the variable, what it accepts, what was wrong.

Pydantic's :class:`~pydantic.ValidationError` is written for programmers (a
traceback, the model's field names, error URLs). Someone starting the server
needs the variable they set and what it takes, so :func:`describe` turns each
error into a line such as ``MEMDB_PORT must be a whole number from 0 to 65535``,
with pydantic's reason after it where that says more (``MEMDB_ADMIN_EMAIL must
be an email address, or unset (value is not a valid email address: ...)``).
What a setting accepts is read from its declaration in :mod:`server.settings`
(its type and bounds), so it cannot drift from the check itself. Values are
never repeated: some settings are secrets.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, EmailStr, SecretStr, ValidationError
from pydantic.fields import FieldInfo

_KINDS: dict[Any, str] = {
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    Path: "a file path",
    SecretStr: "a secret string",
    EmailStr: "an email address",
    str: "a string",
}
_SAID_BY_ACCEPTED = ("int_", "float_", "bool_", "literal_error", "greater_than", "less_than")
"""Pydantic error types whose message says no more than :func:`accepted` does."""


def describe(error: ValidationError, model: type[BaseModel], env_prefix: str) -> list[str]:
    """One line per problem, naming the environment variable where there is one."""
    lines = []
    for problem in error.errors(include_url=False, include_input=False):
        location = problem["loc"]
        field = model.model_fields.get(str(location[0])) if location else None
        if field is None:  # a check across settings: its message names the variables itself
            lines.append(_reason(problem))
            continue
        line = f"{env_prefix}{location[0]}".upper() + f" must be {accepted(field)}"
        if not problem["type"].startswith(_SAID_BY_ACCEPTED):
            line += f" ({_reason(problem)})"
        lines.append(line)
    return lines


def accepted(field: FieldInfo) -> str:
    """What a setting takes, in words: ``a whole number from 0 to 65535``, ``one of json, text``."""
    annotation = field.annotation
    optional = False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [member for member in typing.get_args(annotation) if member is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        annotation = members[0] if len(members) == 1 else annotation
    if typing.get_origin(annotation) is typing.Literal:
        kind = "one of " + ", ".join(str(choice) for choice in typing.get_args(annotation))
    elif typing.get_origin(annotation) is tuple:
        kind = "a comma-separated list"
    else:
        kind = _KINDS.get(annotation, "a valid value")
    kind += _bounds(field)
    return f"{kind}, or unset" if optional else kind


def _bounds(field: FieldInfo) -> str:
    found = {
        name: getattr(rule, name) for rule in field.metadata for name in ("ge", "gt", "le", "lt") if hasattr(rule, name)
    }
    if "ge" in found and "le" in found:
        return f" from {found['ge']} to {found['le']}"
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}  # ASCII: a terminal may not show more
    return "".join(f" {words[name]} {value}" for name, value in found.items())


def _reason(problem: Any) -> str:
    """Pydantic's message, in lower case; a validator's own error message as it was raised."""
    context = problem.get("ctx") or {}
    if problem["type"] == "value_error" and isinstance(context.get("error"), Exception):
        return str(context["error"])
    message = str(problem["msg"])
    return message[:1].lower() + message[1:]
