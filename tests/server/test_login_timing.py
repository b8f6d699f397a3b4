"""Login timing over a real socket (CONTRACT §7): a failure takes as long whoever the email names.

An unknown email, a wrong password, an account imported without a password
(locked) and one imported with a hash cheaper than the configured cost all
cost at least one bcrypt check at the configured cost. The server runs at
cost 8 (about 20 ms a check), so the hash outweighs the noise of a loaded
machine; the attempts are interleaved, so load falls on every case alike, and
each case is judged by its fastest attempt: a neighbour's load only ever adds
time, so the fastest attempt is the one nearest the work the server did.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from pathlib import Path

import bcrypt
import httpx

from tests.utils.server import running_server

ROUNDS = 8
ATTEMPTS = 15
MAX_RATIO = 1.5
"""Before the fix the locked account answered ~100 times faster than an unknown email."""
BASELINE = "no bcrypt (a body without an email)"


def _user(email: str, **secret: str) -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "email": email, "full_name": "Timing Test", **secret}


def test_every_failed_login_takes_about_as_long(tmp_path: Path) -> None:
    cheap_hash = bcrypt.hashpw(b"the-cheap-password", bcrypt.gensalt(4)).decode()
    dataset = {
        "users": [
            _user("known@example.com", password="the-known-password"),
            _user("locked@example.com"),
            _user("cheap@example.com", password_hash=cheap_hash),
        ],
        "orders": [],
    }
    seed = tmp_path / "timing.json"
    seed.write_text(json.dumps(dataset))
    cases = {
        "unknown email": "nobody@example.com",
        "wrong password": "known@example.com",
        "locked account": "locked@example.com",
        "cheaper imported hash": "cheap@example.com",
    }
    environment = {
        "MEMDB_BCRYPT_ROUNDS": str(ROUNDS),
        "MEMDB_SEED_FILE": str(seed),
        "MEMDB_RATE_LIMIT_PER_MINUTE": "0",
        "MEMDB_LOG_LEVEL": "WARNING",  # the test reads no log
    }
    durations: dict[str, list[float]] = {case: [] for case in [*cases, BASELINE]}
    with running_server(environment) as base, httpx.Client(base_url=f"{base}/api/v1", timeout=30) as http:
        for attempt in range(ATTEMPTS + 1):
            for case, body in [*((case, {"email": email}) for case, email in cases.items()), (BASELINE, {})]:
                started = time.perf_counter()
                response = http.post("/auth/token", json={**body, "password": f"guess-{attempt}"})
                elapsed = time.perf_counter() - started
                assert response.status_code == (422 if case == BASELINE else 401), response.text
                if attempt:  # the first round warms the connection and the threads up
                    durations[case].append(elapsed)

    fastest = {case: min(times) for case, times in durations.items()}
    report = ", ".join(
        f"{case}: fastest {fastest[case] * 1000:.1f} ms, median {statistics.median(times) * 1000:.1f} ms"
        for case, times in durations.items()
    )
    print(f"login times over {ATTEMPTS} attempts at cost {ROUNDS}: {report}")
    baseline = fastest.pop(BASELINE)
    assert max(fastest.values()) / min(fastest.values()) < MAX_RATIO, report
    # Every failure paid for a bcrypt check: none answered in the time of a request that needs none.
    assert min(fastest.values()) > 3 * baseline, report
