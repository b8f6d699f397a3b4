"""The error envelope as data, and a way for pure-ASGI middleware to send it.

Routes raise and ``server.errors`` renders; middleware that answers before the
application runs (rate limits, body caps) uses :func:`send_error` so its
answers have exactly the same shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from starlette.types import Scope, Send

from server.middleware.request_id import request_id_of


def error_document(
    code: str, message: str, request_id: str, details: Sequence[dict[str, str]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = list(details)
    error["request_id"] = request_id
    return {"status": "error", "error": error}


async def send_error(
    scope: Scope,
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with the error envelope straight from ASGI middleware."""
    body = orjson.dumps(error_document(code, message, request_id_of(scope)))
    start_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})
