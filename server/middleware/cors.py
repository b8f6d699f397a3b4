"""CORS for the configured origins only, with refusals in the error envelope.

Starlette's middleware does the work; this subclass only makes a refused
preflight answer in memdb's error envelope instead of plain text.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from server.envelope import send_error

ALLOWED_METHODS = ("GET", "POST", "PATCH", "DELETE", "OPTIONS")
ALLOWED_HEADERS = ("Authorization", "Content-Type", "If-Match", "If-None-Match", "X-Request-ID")
EXPOSED_HEADERS = (
    "ETag",
    "Link",
    "Location",
    "Retry-After",
    "X-Request-ID",
    "X-Rate-Limit-Limit",
    "X-Rate-Limit-Remaining",
    "X-Rate-Limit-Reset",
)


class EnvelopeCORSMiddleware(CORSMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            if "origin" in headers and "access-control-request-method" in headers:
                response = self.preflight_response(request_headers=headers)
                if response.status_code >= 400:
                    message = bytes(response.body).decode(errors="replace")
                    await send_error(scope, send, response.status_code, "BAD_REQUEST", message)
                    return
        await super().__call__(scope, receive, send)
