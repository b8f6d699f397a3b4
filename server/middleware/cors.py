"""CORS for the configured origins only, with refusals in the error envelope.

Starlette's middleware does the work; this subclass only makes a refused
preflight answer in memdb's error envelope instead of plain text.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def answer_headers(origins: Sequence[str], origin: str | None) -> dict[str, str]:
    """The CORS headers an answer to ``origin`` carries, for the one answer sent outside the middleware.

    (Starlette answers an unhandled error after every middleware has been left; without these a
    browser would report a CORS failure instead of the ``500``.)
    """
    if origin is None or not origins:
        return {}
    if "*" in origins:
        return {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": ", ".join(EXPOSED_HEADERS)}
    if origin in origins:
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": ", ".join(EXPOSED_HEADERS),
            "Vary": "Origin",
        }
    return {}


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
