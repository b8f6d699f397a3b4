"""One place that turns every failure into the error envelope and its status.

Store errors, request validation, the framework's own HTTP errors (unknown
route, wrong method) and anything unexpected all come through here, so routes
never build error responses themselves. In production an unexpected error says
``INTERNAL_ERROR`` and the request id, nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from server import validation
from server.envelope import error_document
from server.middleware.cors import answer_headers
from server.middleware.request_id import request_id_of
from server.middleware.security_headers import HEADERS as SECURITY_HEADER_PAIRS
from server.responses import EnvelopeResponse
from store import (
    BatchRejected,
    Conflict,
    InsufficientStorage,
    InvalidQuery,
    InvalidValue,
    MissingReference,
    NotFound,
    PreconditionFailed,
    StoreClosed,
    StoreError,
    StoreOverloaded,
    StoreUnavailable,
    Unsupported,
)

logger = logging.getLogger("memdb.errors")

RETRY_AFTER_SECONDS = "1"
SECURITY_HEADERS = {name.decode(): value.decode() for name, value in SECURITY_HEADER_PAIRS}
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

ERROR_CODES: dict[int, tuple[str, ...]] = {
    400: ("BAD_REQUEST", "INVALID_QUERY"),
    401: ("UNAUTHORIZED", "INVALID_CREDENTIALS"),
    403: ("FORBIDDEN",),
    404: ("NOT_FOUND",),
    405: ("METHOD_NOT_ALLOWED",),
    408: ("REQUEST_TIMEOUT",),
    409: ("CONFLICT",),
    412: ("PRECONDITION_FAILED",),
    413: ("PAYLOAD_TOO_LARGE",),
    415: ("UNSUPPORTED_MEDIA_TYPE",),
    422: ("VALIDATION_ERROR",),
    429: ("RATE_LIMITED",),
    500: ("INTERNAL_ERROR",),
    501: ("NOT_IMPLEMENTED",),
    503: ("SERVICE_UNAVAILABLE",),
    507: ("INSUFFICIENT_STORAGE",),
}
"""Every error ``code`` the service answers with, by status (the contract's table; the OpenAPI document lists it)."""
_HTTP_CODES = {status: codes[0] for status, codes in ERROR_CODES.items()}


class APIError(Exception):
    """An error a route raises on purpose, with its status and code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Sequence[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    document = error_document(code, message, request_id_of(request.scope), details)
    return EnvelopeResponse(document, status, headers)


def _store_error(request: Request, error: StoreError) -> Response:
    if isinstance(error, BatchRejected):
        return _store_error(request, error.cause)
    if isinstance(error, NotFound):
        return error_response(request, 404, "NOT_FOUND", f"{error.table} not found")
    if isinstance(error, MissingReference):
        details = [{"field": f"body.{error.field}", "message": f"no {error.target} with id {error.key}"}]
        return error_response(request, 422, "VALIDATION_ERROR", "request validation failed", details)
    if isinstance(error, Conflict):
        conflicting = [{"field": f"body.{error.field}", "message": error.message}] if error.field else None
        return error_response(request, 409, "CONFLICT", error.message, conflicting)
    if isinstance(error, PreconditionFailed):
        return error_response(request, 412, "PRECONDITION_FAILED", "the resource has changed; fetch it again")
    if isinstance(error, InvalidQuery):
        details = [{"field": f"query.{error.parameter}", "message": error.reason}]
        return error_response(request, 400, "INVALID_QUERY", f"invalid query parameter '{error.parameter}'", details)
    if isinstance(error, InvalidValue):
        details = [{"field": f"body.{error.field}", "message": error.reason}]
        return error_response(request, 422, "VALIDATION_ERROR", "request validation failed", details)
    if isinstance(error, InsufficientStorage):
        return error_response(request, 507, "INSUFFICIENT_STORAGE", error.message)
    if isinstance(error, Unsupported):
        return error_response(request, 501, "NOT_IMPLEMENTED", error.message)
    if isinstance(error, StoreUnavailable):
        headers = {"Retry-After": RETRY_AFTER_SECONDS}
        return error_response(request, 503, "SERVICE_UNAVAILABLE", error.message, headers=headers)
    if isinstance(error, StoreOverloaded | StoreClosed):
        headers = {"Retry-After": RETRY_AFTER_SECONDS}
        return error_response(request, 503, "SERVICE_UNAVAILABLE", "the store is busy; retry shortly", headers=headers)
    return _unexpected(request, error)


def _no_body(request: Request) -> bool:
    headers = request.headers
    return headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers


def _validation_error(request: Request, error: RequestValidationError) -> Response:
    problems = error.errors()
    if any(problem.get("type") == "json_invalid" for problem in problems):
        return error_response(request, 400, "BAD_REQUEST", "the request body is not valid JSON")
    if _no_body(request) and any(tuple(problem.get("loc", ())) == ("body",) for problem in problems):
        # No body at all is not valid JSON either (JSON's ``null`` is, and is a validation error).
        return error_response(request, 400, "BAD_REQUEST", "the request body is empty; send a JSON object")
    return error_response(request, 422, "VALIDATION_ERROR", "request validation failed", validation.details(problems))


def _http_error(request: Request, error: StarletteHTTPException) -> Response:
    code = _HTTP_CODES.get(error.status_code, "INTERNAL_ERROR" if error.status_code >= 500 else "BAD_REQUEST")
    message = str(error.detail) if error.status_code != 404 else "no such resource"
    headers = dict(error.headers or {})
    if error.status_code == 405:
        message = f"method {request.method} not allowed here"
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return error_response(request, error.status_code, code, message, headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (the framework names only the first matching route's)."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    )


def _api_error(request: Request, error: APIError) -> Response:
    return error_response(request, error.status, error.code, error.message, error.details, error.headers)


def _unexpected(request: Request, error: Exception) -> Response:
    logger.error("unhandled %s on %s %s", type(error).__name__, request.method, request.url.path, exc_info=error)
    production = request.app.state.settings.production
    message = "internal error" if production else f"internal error: {type(error).__name__}"
    # Starlette answers unhandled errors outside every middleware, so the request id, security and CORS headers
    # are set here.
    cors = answer_headers(request.app.state.settings.cors_origins, request.headers.get("origin"))
    headers = {"X-Request-ID": request_id_of(request.scope), **SECURITY_HEADERS, **cors}
    return error_response(request, 500, "INTERNAL_ERROR", message, headers=headers)


def install(app: FastAPI) -> None:
    """Register every handler on ``app``."""
    app.add_exception_handler(StoreError, _store_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(APIError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
