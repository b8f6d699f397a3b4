"""Watching each request: its access-log line and its metrics, from one status-and-timing capture.

Each HTTP request is timed and its final status read from the answer it sends;
when the answer is done the request is written as one ``memdb.access`` line and
counted and timed in the app's :class:`~server.metrics.Metrics`.

The access line gives the method, the path (as sent, percent-encoded, without
the query string, which may hold filter values such as e-mail addresses), the
status and the duration in milliseconds, both in the message and as
``method``, ``path``, ``status`` and ``duration_ms`` fields for the JSON
formatter. No header, body or token is read.

Metrics label the request by method, route template and status. The route is
read after the request has been routed (:func:`server.metrics.route_template`),
so naming it costs nothing per request; a path no route serves is
``<unmatched>`` and an answer given before routing (a ``429`` from the rate
limiter, a ``413`` from the body cap) or by static files is ``<other>``, so a
scan of random URLs adds no series. 429s and 401s also move
``rate_limited_total`` and ``auth_failures_total``.

The edge (:mod:`server.middleware.edge`) times the request from after its id is
assigned (so the line carries it) and reads the status it sent after
everything that may answer early (rate limits, body caps), so it records the
status the client got; it calls :func:`record` once the answer is done. An
error that escapes the application is recorded as ``500``, the answer Starlette
then sends.
"""

from __future__ import annotations

import logging

from starlette.types import Scope

from server.metrics import Metrics, route_template

logger = logging.getLogger("memdb.access")


def record(metrics: Metrics | None, scope: Scope, status: int, elapsed: float) -> None:
    """Count and time one answered request, and write its access line (when INFO is on)."""
    if metrics is not None:
        metrics.observe_request(scope["method"], route_template(scope, status), status, elapsed)
    if logger.isEnabledFor(logging.INFO):
        _log(scope, status, elapsed)


def _path(scope: Scope) -> str:
    raw: bytes | None = scope.get("raw_path")
    if raw is None:
        return str(scope["path"])
    return raw.partition(b"?")[0].decode("latin-1")


def _log(scope: Scope, status: int, elapsed: float) -> None:
    duration_ms = round(elapsed * 1000, 3)
    method = str(scope["method"])
    path = _path(scope)
    fields = {"method": method, "path": path, "status": status, "duration_ms": duration_ms}
    logger.info("%s %s %d %.1fms", method, path, status, duration_ms, extra=fields)
