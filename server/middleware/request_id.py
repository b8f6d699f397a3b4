"""Request ids: honour a sane ``X-Request-ID``, else make one, and echo it back.

The id is kept in the ASGI scope's ``state`` so error bodies and log lines of
the same request can name it, and in :data:`CURRENT_REQUEST_ID`, a context
variable that the logging filter stamps on every record.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
_VALID = re.compile(rb"[A-Za-z0-9._-]{1,128}")

CURRENT_REQUEST_ID: ContextVar[str | None] = ContextVar("memdb_request_id", default=None)
"""The id of the request this code runs for, ``None`` outside requests."""


def request_id_of(scope: Scope) -> str:
    state: dict[str, Any] = scope.get("state", {})
    return str(state.get("request_id", ""))


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == HEADER), None)
        request_id = given if given is not None and _VALID.fullmatch(given) else uuid.uuid4().hex.encode()
        scope.setdefault("state", {})["request_id"] = request_id.decode()
        token = CURRENT_REQUEST_ID.set(request_id.decode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(name, value) for name, value in message.get("headers", []) if name.lower() != HEADER]
                message["headers"] = [*headers, (HEADER, request_id)]
            await send(message)

        await self.app(scope, receive, send_with_id)
        # Not in a ``finally``: Starlette logs an unhandled error outside every middleware, after this raises,
        # and that line must still carry the id. (Uvicorn runs each request in a task of its own, so it ends there.)
        CURRENT_REQUEST_ID.reset(token)
