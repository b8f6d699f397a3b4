"""Slow clients cannot hold the server (CONTRACT §8): unfinished headers are dropped, stalled bodies get 408.

Over real sockets against a real server process: a connection that has not finished its headers
within ``MEMDB_HEADER_TIMEOUT_SECONDS`` is closed, connections waiting for headers make room for
whole requests (probes keep answering), and a body that stalls longer than
``MEMDB_BODY_TIMEOUT_SECONDS`` is answered ``408`` and releases its request slot.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.utils.api import assert_error
from tests.utils.data import user_body
from tests.utils.server import running_server

TIMEOUT = 1.5
MARGIN = 6.0  # a loaded machine runs the server's timers late
TIMER_SLACK = 0.1  # and the event loop's cached clock may run one a little early
PARTIAL_HEADER = b"GET /api/v1/health HTTP/1.1\r\nHost: memdb\r\nX-Slow: "


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    env = {"MEMDB_HEADER_TIMEOUT_SECONDS": str(TIMEOUT), "MEMDB_BODY_TIMEOUT_SECONDS": str(TIMEOUT)}
    with running_server(env) as url:
        yield url


def connect(base: str) -> socket.socket:
    url = httpx.URL(base)
    assert url.port is not None
    return socket.create_connection((url.host, url.port), timeout=10)


def probe(base: str) -> int:
    """``/health`` over a new connection, as a health checker asks."""
    return httpx.get(f"{base}/api/v1/health", timeout=10).status_code


def closed_unanswered(base: str, reason: str) -> float:
    """``connections_closed_total{reason=...}`` as the server's ``/metrics`` says now."""
    scraped = httpx.get(f"{base}/metrics", timeout=10).text
    family = next(family for family in text_string_to_metric_families(scraped) if family.name == "connections_closed")
    return next(sample.value for sample in family.samples if sample.labels == {"reason": reason})


def wait_until_closed(
    sockets: list[socket.socket], deadline: float, meanwhile: Callable[[], None] = lambda: None, enough: int = 0
) -> dict[socket.socket, float]:
    """When the server closed each socket (end of stream or reset), up to ``deadline``.

    Calls ``meanwhile`` between waits and stops early once ``enough`` (default: all) are closed. A socket
    that gets data instead is a failure: the server answers nothing to a request whose headers never ended.
    """
    enough = enough or len(sockets)
    closed: dict[socket.socket, float] = {}
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        while len(closed) < enough and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(4096)
                except ConnectionResetError:
                    data = b""
                assert data == b"", f"the server answered an unfinished request: {data!r}"
                closed[sock] = time.monotonic()
                selector.unregister(sock)
            meanwhile()
    return closed


def read_response(sock: socket.socket, deadline: float) -> httpx.Response:
    """The one response on ``sock``, read until the server closes the connection (else the test fails)."""
    raw = b""
    chunk = b"-"
    while chunk:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"the connection was still open at the deadline; read {raw!r}") from None
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in header_lines]
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=body)


def received_until(sock: socket.socket, enough: Callable[[bytes], bool]) -> bytes:
    """What ``sock`` receives until ``enough`` of it has come; the server closing first fails the test."""
    sock.settimeout(10)
    data = b""
    while not enough(data):
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection after {data!r}"
        data += chunk
    return data


def post_head(length: int) -> bytes:
    return (
        b"POST /api/v1/users HTTP/1.1\r\nHost: memdb\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % length
    )


def test_unfinished_headers_are_closed_after_the_timeout_while_probes_answer(base: str) -> None:
    sockets: list[socket.socket] = []
    opened: dict[socket.socket, float] = {}
    statuses: list[int] = []
    timed_out_before = closed_unanswered(base, "header_timeout")
    try:
        for _ in range(300):
            started = time.monotonic()
            sock = connect(base)
            sock.sendall(PARTIAL_HEADER)
            sockets.append(sock)
            opened[sock] = started
        statuses.append(probe(base))

        closed = wait_until_closed(sockets, time.monotonic() + TIMEOUT + MARGIN, lambda: statuses.append(probe(base)))

        assert len(closed) == len(sockets)
        assert min(closed[sock] - opened[sock] for sock in sockets) >= TIMEOUT - TIMER_SLACK
        assert max(closed[sock] - opened[sock] for sock in sockets) < TIMEOUT + MARGIN
        assert len(statuses) >= 3
        assert set(statuses) == {200}
        assert closed_unanswered(base, "header_timeout") - timed_out_before == len(sockets)
    finally:
        for sock in sockets:
            sock.close()


def test_an_idle_keep_alive_that_starts_a_request_and_stalls_is_closed(base: str) -> None:
    with connect(base) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: memdb\r\n\r\n")
        first = received_until(sock, lambda data: b"\r\n\r\n" in data)
        head, _, body = first.partition(b"\r\n\r\n")
        length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))[15:])
        received_until(sock, lambda data: len(body + data) >= length)
        assert head.startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        sock.sendall(b"\r\n" + PARTIAL_HEADER)

        closed = wait_until_closed([sock], started + TIMEOUT + MARGIN)

        assert closed, "the stalled request kept its connection"
        assert closed[sock] - started >= TIMEOUT - TIMER_SLACK


def test_headers_and_a_body_sent_slowly_but_in_time_are_served(base: str) -> None:
    body = orjson.dumps(user_body())
    head = post_head(len(body))
    with connect(base) as sock:
        started = time.monotonic()
        for piece in (head[:10], head[10:30], head[30:50], head[50:]):
            sock.sendall(piece)
            time.sleep(TIMEOUT / 6)  # the whole header within TIMEOUT, spread over most of it
        body_started = time.monotonic()
        for n in range(4):
            sock.sendall(body[n * len(body) // 4 : (n + 1) * len(body) // 4])
            if n < 3:
                time.sleep(TIMEOUT / 2.5)  # every gap well inside TIMEOUT, the whole body longer than it
        finished = time.monotonic()
        answer = received_until(sock, lambda data: b"\r\n" in data)

    assert body_started - started < TIMEOUT
    assert finished - body_started > TIMEOUT
    assert answer.startswith(b"HTTP/1.1 201 "), answer


def test_stalled_bodies_get_408_and_stop_blocking_others() -> None:
    # No rate limit: the poll for the 503 below may take more requests than a minute's allowance.
    env = {"MEMDB_MAX_CONNECTIONS": "2", "MEMDB_BODY_TIMEOUT_SECONDS": str(TIMEOUT), "MEMDB_RATE_LIMIT_PER_MINUTE": "0"}
    with running_server(env) as base:
        stalled = [connect(base) for _ in range(2)]
        try:
            started = time.monotonic()
            for sock in stalled:
                sock.sendall(post_head(100) + b"{")
            refused = None
            while refused is None and time.monotonic() < started + TIMEOUT:
                answer = httpx.get(f"{base}/api/v1/users", timeout=10)
                refused = answer if answer.status_code == 503 else None
            assert refused is not None, "the two stalled bodies never held both request slots"
            assert_error(refused, 503, "SERVICE_UNAVAILABLE")

            timed_out = [read_response(sock, started + TIMEOUT + MARGIN) for sock in stalled]
            answered = time.monotonic()

            for response in timed_out:
                error = assert_error(response, 408, "REQUEST_TIMEOUT")
                assert str(TIMEOUT) in error["message"]
                assert response.headers["connection"] == "close"
            assert answered - started >= TIMEOUT - TIMER_SLACK
            created = httpx.post(f"{base}/api/v1/users", json=user_body(), timeout=10)
            assert created.status_code == 201, created.text
        finally:
            for sock in stalled:
                sock.close()


def test_connections_waiting_for_headers_make_room_for_whole_requests() -> None:
    # Room for 4 open connections; the header timeout is far off, so only making room frees a socket.
    env = {"MEMDB_MAX_CONNECTIONS": "2", "MEMDB_HEADER_TIMEOUT_SECONDS": "60"}
    with running_server(env) as base:
        sockets: list[socket.socket] = []
        try:
            for _ in range(40):
                sock = connect(base)
                sock.sendall(PARTIAL_HEADER)
                sockets.append(sock)

            statuses = [probe(base) for _ in range(5)]
            ordinary = httpx.get(f"{base}/api/v1/users", timeout=10)
            closed = wait_until_closed(sockets, time.monotonic() + MARGIN, enough=len(sockets) - 4)

            assert statuses == [200] * 5
            assert_error(ordinary, 401, "UNAUTHORIZED")
            assert len(closed) >= len(sockets) - 4
            assert sockets[0] in closed  # the longest waiting went first
            assert closed_unanswered(base, "over_capacity") >= len(sockets) - 4
            assert closed_unanswered(base, "header_timeout") == 0
        finally:
            for sock in sockets:
                sock.close()
