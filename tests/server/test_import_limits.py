"""What a ``POST /jobs`` body may cost the server, measured on a real server process over real sockets.

An in-process ASGI transport hands the application whole bodies, so these
tests talk HTTP over raw sockets to ``python -m server`` and read the
process's resident memory (``VmRSS``) while they do: anonymous uploads are
refused from their headers with none of their body read, large bodies are
received a few at a time, and an admin import bigger than the memory limit
allows fails cleanly without the process passing the limit.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import orjson

from tests.utils.raw_http import Answer, connect, read_answer, request_head
from tests.utils.server import resident_bytes, server_process

MIB = 1 << 20
ADMIN = {"MEMDB_ADMIN_EMAIL": "admin@example.com", "MEMDB_ADMIN_PASSWORD": "admin-password-1"}
UNLIMITED = {"MEMDB_RATE_LIMIT_PER_MINUTE": "0"}
HASH = "$2b$04$" + "a" * 53  # a well-formed bcrypt hash: no hashing needed to import it


def head(base: str, length: int, token: str | None = None, content_type: str = "application/json") -> bytes:
    """The head of a ``POST /api/v1/jobs`` announcing ``length`` bytes of body."""
    headers = {"Content-Type": content_type, "Content-Length": str(length)}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return request_head(base, "POST", "/api/v1/jobs", headers)


def send_until_refused(sock: socket.socket, most: int) -> int:
    """Send up to ``most`` bytes of body; stop early once the server stops taking them. Returns bytes sent."""
    sock.settimeout(2.0)
    block, sent = b"x" * (256 << 10), 0
    try:
        while sent < most:
            sent += sock.send(block)
    except OSError:  # closed by the server, or no longer read: either way nobody wants the rest
        pass
    return sent


@contextmanager
def peak_memory(pid: int) -> Iterator[Callable[[], int]]:
    """Sample the process's resident memory every 20 ms while the block runs; yields the peak so far."""
    peak = resident_bytes(pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, resident_bytes(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield lambda: peak
    finally:
        done.set()
        sampler.join()


def sign_in(base: str) -> str:
    credentials = {"email": ADMIN["MEMDB_ADMIN_EMAIL"], "password": ADMIN["MEMDB_ADMIN_PASSWORD"]}
    response = httpx.post(f"{base}/api/v1/auth/token", json=credentials, timeout=10)
    assert response.status_code == 200, response.text
    token: str = response.json()["data"]["access_token"]
    return token


def users_body(count: int, bio_bytes: int = 0) -> bytes:
    """An import of ``count`` users (no passwords to hash), each with a distinct ``bio`` of about ``bio_bytes``."""
    users = [
        {
            "id": str(uuid.UUID(int=number + 1)),
            "email": f"user{number}@example.com",
            "full_name": f"User {number}",
            "password_hash": HASH,
            "metadata": {"bio": f"{number:08d}" + "x" * bio_bytes},
        }
        for number in range(count)
    ]
    return orjson.dumps({"type": "import", "data": {"users": users}})


# -- anonymous uploads ----------------------------------------------------------------------------------------------


def test_anonymous_uploads_announcing_150_mib_are_refused_from_their_headers_and_cost_no_memory() -> None:
    announced = 150 * MIB
    with server_process(UNLIMITED) as server:
        base = server.base
        warm = connect(base)  # the refusal's own code paths are warm before the baseline is taken
        warm.sendall(head(base, 10))
        assert read_answer(warm).status == 401
        warm.close()
        before = resident_bytes(server.pid)
        answers: list[Answer] = []
        sent: list[int] = []

        def upload() -> None:
            with connect(base) as sock:
                sock.sendall(head(base, announced))
                answer = read_answer(sock)  # before a byte of the body is sent: the headers decide
                sent.append(send_until_refused(sock, 4 * MIB))
                answers.append(answer)

        with peak_memory(server.pid) as peak:
            uploads = [threading.Thread(target=upload) for _ in range(3)]
            for thread in uploads:
                thread.start()
            for thread in uploads:
                thread.join(30)
            growth = peak() - before

        assert [answer.status for answer in answers] == [401, 401, 401]
        for answer in answers:
            assert answer.error()["code"] == "UNAUTHORIZED"
            assert answer.headers["connection"] == "close"  # the server reads none of the rest either
            assert answer.headers["www-authenticate"] == "Bearer"
        assert growth < 40 * MIB, f"grew {growth / MIB:.1f} MiB"
        assert httpx.get(f"{base}/api/v1/health", timeout=10).status_code == 200


def test_a_non_admin_is_refused_from_the_headers_too_and_a_declared_length_over_the_import_cap_is_413() -> None:
    with server_process({**ADMIN, **UNLIMITED, "MEMDB_IMPORT_MAX_BYTES": str(8 * MIB)}) as server:
        base = server.base
        user = {"email": "plain@example.com", "full_name": "Plain", "password": "plain-password"}
        assert httpx.post(f"{base}/api/v1/users", json=user, timeout=10).status_code == 201
        login = {"email": user["email"], "password": user["password"]}
        token = httpx.post(f"{base}/api/v1/auth/token", json=login, timeout=10).json()["data"]["access_token"]
        with connect(base) as sock:
            sock.sendall(head(base, 4 * MIB, token))
            refused = read_answer(sock)
        with connect(base) as sock:
            sock.sendall(head(base, 9 * MIB, sign_in(base)))
            too_large = read_answer(sock)

    assert refused.status == 403
    assert refused.error()["code"] == "FORBIDDEN"
    assert refused.headers["connection"] == "close"
    assert too_large.status == 413
    assert too_large.error()["code"] == "PAYLOAD_TOO_LARGE"


# -- a few large bodies at once -------------------------------------------------------------------------------------


def test_past_memdb_import_concurrency_a_large_body_is_503_with_retry_after_before_it_is_read() -> None:
    body = users_body(4_000, bio_bytes=500)  # ~3 MiB: over the ordinary 1 MiB cap
    with server_process({**ADMIN, **UNLIMITED, "MEMDB_IMPORT_CONCURRENCY": "1"}) as server:
        base = server.base
        token = sign_in(base)
        with connect(base) as first:
            first.sendall(head(base, len(body), token) + body[: len(body) // 2])  # holds the one slot
            deadline = time.monotonic() + 20
            while True:  # the first upload's handler may not have started yet: ask again until it has
                with connect(base) as second:
                    second.sendall(head(base, len(body), token))
                    try:
                        refused = read_answer(second, timeout=1.0)
                        break
                    except TimeoutError:  # it got the slot (and waits for its body): closing gives it back
                        assert time.monotonic() < deadline, "the second upload was never refused"
            first.sendall(body[len(body) // 2 :])
            accepted = read_answer(first, timeout=30)
        again = httpx.post(
            f"{base}/api/v1/jobs",
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=30,
        )

    assert refused.status == 503
    assert refused.error()["code"] == "SERVICE_UNAVAILABLE"
    assert int(refused.headers["retry-after"]) > 0
    assert refused.headers["connection"] == "close"
    assert accepted.status == 202, accepted.body
    assert orjson.loads(accepted.body)["data"]["parameters"] == {"mode": "all-or-nothing", "records": 4_000}
    assert again.status_code == 202, again.text  # the slot was given back


# -- an import larger than memory allows ---------------------------------------------------------------------------


def test_an_import_larger_than_the_memory_limit_allows_fails_cleanly_and_the_process_stays_within_it() -> None:
    limit_mib = 130
    body = users_body(70_000, bio_bytes=2_000)  # ~150 MiB of JSON: more than the whole limit
    assert len(body) > limit_mib * MIB
    environment = {
        **ADMIN,
        **UNLIMITED,
        "MEMDB_MEMORY_LIMIT_MB": str(limit_mib),
        "MEMDB_MEMORY_CHECK_SECONDS": "0.1",
    }
    with server_process(environment) as server, httpx.Client(base_url=f"{server.base}/api/v1", timeout=60) as http:
        http.headers["Authorization"] = f"Bearer {sign_in(server.base)}"
        with peak_memory(server.pid) as peak:
            response = http.post("/jobs", content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 202, response.text
            job_id = response.json()["data"]["id"]
            deadline = time.monotonic() + 120
            while (job := http.get(f"/jobs/{job_id}").json()["data"])["status"] in ("queued", "running"):
                assert time.monotonic() < deadline, job
                time.sleep(0.1)
            highest = peak()
        users = http.get("/users", params={"per_page": 1}).json()["meta"]["total"]

    assert job["status"] == "failed", job
    assert job["error"]["code"] == "INSUFFICIENT_STORAGE"
    assert job["error"]["message"].startswith("the server's memory limit was reached after ")
    assert job["error"]["message"].endswith("; nothing was imported")
    assert 0 < job["progress"]["done"] < 70_000
    assert users == 1  # only the start-up admin: nothing of the import is visible
    assert highest < (limit_mib + 8) * MIB, f"peaked at {highest / MIB:.1f} MiB"
