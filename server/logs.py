"""Logging for the whole process: JSON lines by default, plain text for humans, a request id on each line.

:func:`logging_config` builds one ``logging.config.dictConfig`` document from
``MEMDB_LOG_LEVEL`` and ``MEMDB_LOG_FORMAT``; ``python -m server`` hands it to
Uvicorn as its ``log_config``, so Uvicorn applies it once at start-up instead of
its own, and its loggers (``uvicorn``, ``uvicorn.error``) propagate to the same
root handler as memdb's. ``json`` writes one object per line with
``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message`` and
``request_id``, plus any ``extra`` fields (the access log adds ``method``,
``path``, ``status`` and ``duration_ms``); ``text`` writes the same facts as a
readable line. :class:`RequestIdFilter`, on the handler, stamps every record
with the id that :class:`~server.middleware.request_id.RequestIdMiddleware` put
in a context variable, so every line written while a request is handled (an
unhandled error's traceback included) names that request. Nothing here ever
logs a body, a header, a password or a token.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from server.middleware.request_id import CURRENT_REQUEST_ID

LogFormat = Literal["json", "text"]

JSON_FIELDS = ("levelname", "name", "message", "request_id")
JSON_NAMES = {"levelname": "level", "name": "logger"}
TEXT_FORMAT = "%(asctime)s %(levelname)-8s %(name)s [%(request_id)s] %(message)s"
NO_REQUEST = "-"
"""What a text line shows for ``request_id`` outside any request (JSON shows ``null``)."""

# Uvicorn repeats its message with ANSI colours in ``color_message``; JSON output leaves that out.
_NOT_FIELDS = (*RESERVED_ATTRS, "color_message")


class RequestIdFilter(logging.Filter):
    """Stamps ``request_id`` on each record logged while a request is being handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = CURRENT_REQUEST_ID.get()
        if request_id is not None and getattr(record, "request_id", None) is None:
            record.request_id = request_id
        return True


def build_formatter(log_format: LogFormat) -> logging.Formatter:
    """The formatter for ``MEMDB_LOG_FORMAT``."""
    if log_format == "json":
        return JsonFormatter(list(JSON_FIELDS), rename_fields=JSON_NAMES, timestamp=True, reserved_attrs=_NOT_FIELDS)
    return logging.Formatter(TEXT_FORMAT, defaults={"request_id": NO_REQUEST})


def build_handler(log_format: LogFormat, stream: TextIO | None = None) -> logging.Handler:
    """The one handler: a stream (stderr by default) with the format's formatter and the request-id filter."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(build_formatter(log_format))
    handler.addFilter(RequestIdFilter())
    return handler


def logging_config(level: str, log_format: LogFormat) -> dict[str, Any]:
    """A ``dictConfig`` document: :func:`build_handler` on the root logger, Uvicorn's loggers propagating to it."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "memdb": {"()": f"{__name__}.build_handler", "log_format": log_format, "stream": "ext://sys.stderr"}
        },
        "loggers": {
            name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
        "root": {"level": level, "handlers": ["memdb"]},
    }
