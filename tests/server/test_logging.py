"""Logs: JSON lines (or text) where every line of a request names its id, and no secret ever appears."""

from __future__ import annotations

import io
import json
import logging
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import IO, Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from server import __main__ as entry
from server.logs import LogFormat, build_handler, logging_config
from server.middleware.edge import Edge
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.utils.data import user_body
from tests.utils.server import ROOT, free_port

CLIENT_LOGGERS = ("httpx", "httpcore")
"""The test's own HTTP client logs too; its lines are not the service's."""

Capture = Callable[[LogFormat], io.StringIO]


class _ServiceOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(CLIENT_LOGGERS)


@pytest.fixture
def capture() -> Iterator[Capture]:
    """Install memdb's handler (as ``python -m server`` configures it) on the root logger, at DEBUG."""
    root = logging.getLogger()
    level = root.level
    installed: list[logging.Handler] = []

    def install(log_format: LogFormat) -> io.StringIO:
        stream = io.StringIO()
        handler = build_handler(log_format, stream)
        handler.addFilter(_ServiceOnly())
        root.addHandler(handler)
        installed.append(handler)
        root.setLevel(logging.DEBUG)
        return stream

    yield install
    for handler in installed:
        root.removeHandler(handler)
    root.setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = stream.getvalue().splitlines()
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]


def access_lines(lines: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "memdb.access" and line["path"] == path]


@pytest.fixture
def broken_route(app: FastAPI) -> str:
    async def explode() -> None:
        logging.getLogger("memdb.test").warning("about to fail")
        raise RuntimeError("boom")

    app.add_api_route("/api/v1/explode", explode)
    return "/explode"


async def test_json_lines_name_the_request_id_on_access_and_error_lines(
    capture: Capture, anon: httpx.AsyncClient, broken_route: str
) -> None:
    stream = capture("json")

    ok = await anon.get("/health")
    failed = await anon.get(broken_route, headers={"X-Request-ID": "trace-me-1"})

    assert ok.status_code == 200
    assert failed.status_code == 500
    assert failed.headers["x-request-id"] == "trace-me-1"
    lines = json_lines(stream)
    for line in lines:
        assert {"timestamp", "level", "logger", "message", "request_id"} <= set(line)
        assert datetime.fromisoformat(line["timestamp"]).utcoffset() is not None
    [health] = access_lines(lines, "/api/v1/health")
    assert health["request_id"] == ok.headers["x-request-id"]
    assert (health["level"], health["method"], health["status"]) == ("INFO", "GET", 200)
    assert isinstance(health["duration_ms"], float | int)
    assert health["duration_ms"] >= 0
    assert health["message"] == f"GET /api/v1/health 200 {health['duration_ms']:.1f}ms"
    explode_lines = [line for line in lines if line["request_id"] == "trace-me-1"]
    by_logger = {line["logger"]: line for line in explode_lines}
    assert set(by_logger) == {"memdb.test", "memdb.errors", "memdb.access"}
    assert by_logger["memdb.test"]["message"] == "about to fail"
    error = by_logger["memdb.errors"]
    assert error["level"] == "ERROR"
    assert error["message"] == "unhandled RuntimeError on GET /api/v1/explode"
    assert "RuntimeError: boom" in error["exc_info"]
    assert (by_logger["memdb.access"]["status"], by_logger["memdb.access"]["path"]) == (500, "/api/v1/explode")


async def test_lines_outside_a_request_have_no_request_id(capture: Capture, anon: httpx.AsyncClient) -> None:
    stream = capture("json")

    await anon.get("/health", headers={"X-Request-ID": "finished-1"})
    logging.getLogger("memdb.test").info("after the request")

    [after] = [line for line in json_lines(stream) if line["message"] == "after the request"]
    assert after["request_id"] is None


async def test_text_lines_are_readable_and_carry_the_request_id(capture: Capture, anon: httpx.AsyncClient) -> None:
    stream = capture("text")

    await anon.get("/health", headers={"X-Request-ID": "text-trace-1"})
    logging.getLogger("memdb.test").info("between requests")

    lines = stream.getvalue().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    access = re.compile(rf"{stamp} INFO +memdb\.access \[text-trace-1\] GET /api/v1/health 200 \d+\.\dms")
    assert [line for line in lines if access.fullmatch(line)], lines
    assert [line for line in lines if re.fullmatch(rf"{stamp} INFO +memdb\.test \[-\] between requests", line)], lines
    assert not [line for line in lines if line.lstrip().startswith("{")]


async def test_no_password_token_or_query_string_is_ever_logged(capture: Capture, anon: httpx.AsyncClient) -> None:
    stream = capture("json")
    body = user_body(password="sign-up-secret-71")

    signed_up = await anon.post("/users", json=body)
    wrong = await anon.post("/auth/token", json={"email": body["email"], "password": "wrong-secret-72"})
    form = await anon.post("/auth/token", data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    tokens = (await anon.post("/auth/token", json={"email": body["email"], "password": body["password"]})).json()
    access, refresh = tokens["data"]["access_token"], tokens["data"]["refresh_token"]
    me = await anon.get("/auth/me", headers={"Authorization": f"Bearer {access}"})
    rotated = await anon.post("/auth/refresh", json={"refresh_token": refresh})
    bad_token = await anon.get("/auth/me", headers={"Authorization": "Bearer not-a-real-token-73"})
    queried = await anon.get("/users", params={"email": "query-secret-74@example.com"})

    assert (signed_up.status_code, wrong.status_code, form.status_code) == (201, 401, 200)
    assert (me.status_code, rotated.status_code, bad_token.status_code, queried.status_code) == (200, 200, 401, 401)
    logged = stream.getvalue()
    assert len(access_lines(json_lines(stream), "/api/v1/auth/token")) == 3
    secrets = [
        body["password"],
        "wrong-secret-72",
        ADMIN_PASSWORD,
        access,
        refresh,
        rotated.json()["data"]["access_token"],
        rotated.json()["data"]["refresh_token"],
        form.json()["data"]["access_token"],
        "not-a-real-token-73",
        "query-secret-74",
    ]
    assert [secret for secret in secrets if secret in logged] == []
    assert "bearer" not in logged.lower()
    assert "authorization" not in logged.lower()


async def test_the_access_line_leaves_out_a_query_string_even_in_raw_path(capture: Capture) -> None:
    stream = capture("json")
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    # Some servers put the query in raw_path; the line must not carry it.
    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/x",
        "raw_path": b"/x?token=query-secret-75",
        "headers": [],
    }
    await Edge(app)(scope, receive, send)

    [line] = json_lines(stream)
    assert (line["path"], line["status"]) == ("/x", 204)
    assert "query-secret-75" not in stream.getvalue()
    assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]


def test_python_m_server_hands_uvicorn_the_logging_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.update(options))
    monkeypatch.setenv("MEMDB_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("MEMDB_LOG_FORMAT", "text")

    assert entry.main([]) == 0

    assert calls["log_config"] == logging_config("WARNING", "text")
    assert calls["access_log"] is False  # the service's own access log replaces Uvicorn's
    assert calls["server_header"] is False


def test_the_config_routes_uvicorn_and_memdb_through_one_handler() -> None:
    config = logging_config("INFO", "json")

    assert config["root"] == {"level": "INFO", "handlers": ["memdb"]}
    assert config["handlers"]["memdb"]["()"] == "server.logs.build_handler"
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        assert config["loggers"][name] == {"handlers": [], "propagate": True}
    assert config["disable_existing_loggers"] is False


def _reader(stream: IO[bytes]) -> tuple[queue.Queue[bytes], threading.Thread]:
    """Lines of ``stream`` as they arrive, read by a thread, so a test can wait for one with a deadline."""
    arrived: queue.Queue[bytes] = queue.Queue()

    def pump() -> None:
        for line in stream:
            arrived.put(line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return arrived, thread


def _until(arrived: queue.Queue[bytes], seen: list[dict[str, Any]], done: Callable[[dict[str, Any]], bool]) -> None:
    deadline = time.monotonic() + 30
    while not any(done(line) for line in seen):
        raw = arrived.get(timeout=max(0.0, deadline - time.monotonic()))
        seen.append(json.loads(raw))  # every line the process writes is one JSON object


@pytest.mark.slow
def test_a_live_server_writes_only_json_lines_uvicorns_own_included() -> None:
    port = free_port()
    env = {**os.environ, "MEMDB_PORT": str(port), "MEMDB_BCRYPT_ROUNDS": "4", "MEMDB_LOG_FORMAT": "json"}
    process = subprocess.Popen(
        [sys.executable, "-m", "server"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert process.stdout is not None
    arrived, reader = _reader(process.stdout)
    seen: list[dict[str, Any]] = []
    try:
        _until(arrived, seen, lambda line: line["message"].startswith("Uvicorn running on"))
        response = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", headers={"X-Request-ID": "live-1"}, timeout=10)
        _until(arrived, seen, lambda line: line.get("request_id") == "live-1")
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.join(timeout=10)  # the pipe is at its end once the process has gone
        process.stdout.close()

    assert response.status_code == 200
    assert {"uvicorn.error", "memdb.access"} <= {line["logger"] for line in seen}
    [access] = [line for line in seen if line.get("request_id") == "live-1"]
    assert (access["logger"], access["method"], access["path"], access["status"]) == (
        "memdb.access",
        "GET",
        "/api/v1/health",
        200,
    )
    assert all("color_message" not in line for line in seen)
