"""Named snapshots with ``MEMDB_DATA_DIR`` over real HTTP: an acknowledged restore survives compactions and restarts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.server.test_durability import ADMIN, bearer, durable_server, sign_in
from tests.utils.data import order_body, user_body

JOB_DEADLINE = 60.0


def data_seen(http: httpx.Client, headers: dict[str, str], user_id: str) -> dict[str, Any]:
    """Every user but the start-up admin and every order (with their timestamps), and one user's ``ETag``."""
    users = http.get("/users", headers=headers)
    orders = http.get("/orders", headers=headers)
    one = http.get(f"/users/{user_id}", headers=headers)
    assert users.status_code == orders.status_code == one.status_code == 200, (users.text, orders.text, one.text)
    # The start-up admin is given its role and password again at every start (docs/configuration.md).
    others = [user for user in users.json()["data"] if user["email"] != ADMIN["email"]]
    return {"users": others, "orders": orders.json()["data"], "etag": one.headers["etag"]}


def compact(http: httpx.Client, headers: dict[str, str]) -> None:
    """Run the admin snapshot job to the end: the log before it is deleted."""
    started = http.post("/jobs", json={"type": "snapshot"}, headers=headers)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + JOB_DEADLINE
    while (job := http.get(f"/jobs/{started.json()['data']['id']}", headers=headers).json()["data"])["status"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline, f"the snapshot job did not finish in {JOB_DEADLINE} s"
        time.sleep(0.05)
    assert job["status"] == "succeeded", job


def change_everything(http: httpx.Client, headers: dict[str, str], kept: dict[str, Any], gone: dict[str, Any]) -> None:
    assert http.patch(f"/users/{kept['id']}", json={"full_name": "Changed"}, headers=headers).status_code == 200
    assert http.delete(f"/users/{gone['id']}", params={"cascade": "true"}, headers=headers).status_code == 204
    assert http.post("/users", json=user_body(), headers=headers).status_code == 201


def test_a_restore_after_a_compaction_survives_kill_9_and_a_clean_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with durable_server(data) as server, httpx.Client(base_url=f"{server.base}/api/v1") as http:
        admin = bearer(sign_in(http, **ADMIN))
        kept, gone = (http.post("/users", json=user_body(), headers=admin).json()["data"] for _ in range(2))
        http.post("/orders", json=order_body(gone["id"]), headers=admin).raise_for_status()
        assert http.post("/snapshots", json={"name": "baseline"}, headers=admin).status_code == 201
        baseline = data_seen(http, admin, kept["id"])
        compact(http, admin)  # the log that took the snapshot is gone: only the snapshot file remembers it
        change_everything(http, admin, kept, gone)
        assert http.post("/snapshots/baseline/restore", headers=admin).status_code == 200
        assert data_seen(http, admin, kept["id"]) == baseline
        server.kill()

    with durable_server(data) as server, httpx.Client(base_url=f"{server.base}/api/v1") as http:
        assert data_seen(http, admin, kept["id"]) == baseline  # rows, timestamps and tags
        listed = http.get("/snapshots", headers=admin).json()["data"]
        assert [snapshot["name"] for snapshot in listed] == ["baseline"]
        change_everything(http, admin, kept, gone)
        compact(http, admin)
        assert http.post("/snapshots/baseline/restore", headers=admin).status_code == 200
    # left by SIGTERM: a clean shutdown, which takes one more snapshot file and starts a fresh log

    with durable_server(data) as server, httpx.Client(base_url=f"{server.base}/api/v1") as http:
        assert data_seen(http, admin, kept["id"]) == baseline
        change_everything(http, admin, kept, gone)
        assert http.post("/snapshots/baseline/restore", headers=admin).status_code == 200
        assert data_seen(http, admin, kept["id"]) == baseline  # the snapshot itself came back whole
