"""Request ids: honour a sane ``X-Request-ID``, else make one, and echo it back.

The id is kept in the ASGI scope's ``state`` so error bodies and log lines of
the same request can name it, and in :data:`CURRENT_REQUEST_ID`, a context
variable that the logging filter stamps on every record. The edge
(:mod:`server.middleware.edge`) calls :func:`assign_request_id` first thing and
:func:`with_request_id` on the answer's headers last.
"""

from __future__ import annotations

import random
import re
from contextvars import ContextVar
from typing import Any

from starlette.types import Scope

HEADER = b"x-request-id"
_VALID = re.compile(rb"[A-Za-z0-9._-]{1,128}")

CURRENT_REQUEST_ID: ContextVar[str | None] = ContextVar("memdb_request_id", default=None)
"""The id of the request this code runs for, ``None`` outside requests."""

Headers = list[tuple[bytes, bytes]]

_VERSION_4 = 0x4000 << 64 | 0x8000 << 48
_VERSION_BITS = ~(0xF000 << 64 | 0xC000 << 48)


def new_request_id() -> bytes:
    """A random version-4 UUID in hex, as ``uuid.uuid4().hex`` gives, without a system call.

    Request ids need to be unique, not secret: ``uuid4`` reads the kernel's random source (a
    ``getrandom`` call) on every request, ~2 µs; Python's generator, seeded from that source at start,
    does it in a fraction. The module's own generator, because it is seeded again in a forked child.
    """
    return b"%032x" % (random.getrandbits(128) & _VERSION_BITS | _VERSION_4)


def request_id_of(scope: Scope) -> str:
    state: dict[str, Any] = scope.get("state", {})
    return str(state.get("request_id", ""))


def assign_request_id(scope: Scope) -> bytes:
    """The request's id (the client's, if sane), kept in its scope's ``state``."""
    given = next((value for name, value in scope["headers"] if name == HEADER), None)
    request_id = given if given is not None and _VALID.fullmatch(given) else new_request_id()
    scope.setdefault("state", {})["request_id"] = request_id.decode()
    return request_id


def with_request_id(headers: Headers, request_id: bytes) -> Headers:
    """``headers`` with exactly one ``X-Request-ID``: this request's."""
    return [*(header for header in headers if header[0].lower() != HEADER), (HEADER, request_id)]
