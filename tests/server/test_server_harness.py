"""The harness running ``python -m server`` for socket tests: a chatty server never blocks, a bad start is told."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.utils import server
from tests.utils.server import running_server

UNLIMITED = {"MEMDB_RATE_LIMIT_PER_MINUTE": "0"}


def test_a_server_that_logs_every_request_keeps_answering() -> None:
    # One JSON log line per request: 2,000 of them are several times what a pipe holds (64 KiB).
    with running_server({**UNLIMITED, "MEMDB_LOG_LEVEL": "INFO"}) as base, httpx.Client(timeout=10) as http:
        statuses = {
            http.get(f"{base}/api/v1/health", headers={"X-Request-ID": f"chatty-{n}"}).status_code for n in range(2_000)
        }

    assert statuses == {200}


def test_a_server_whose_health_never_answers_200_is_reported_with_its_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "START_TIMEOUT", 20.0)  # long enough to start on a loaded machine
    started = time.monotonic()

    # The harness asks for http://127.0.0.1:<port>: every request for another host is a 400, /health included.
    with (
        pytest.raises(RuntimeError, match=r"/health still not 200 after 20 s \(400\)"),
        running_server({"MEMDB_ALLOWED_HOSTS": "memdb.example.com"}),
    ):
        pass

    assert time.monotonic() - started < 60


def test_a_server_that_cannot_start_is_reported_with_its_output() -> None:
    with (
        pytest.raises(RuntimeError, match=r"(?s)server exited with [1-9].*MEMDB_BODY_TIMEOUT_SECONDS"),
        running_server({"MEMDB_BODY_TIMEOUT_SECONDS": "-1"}),
    ):
        pass
