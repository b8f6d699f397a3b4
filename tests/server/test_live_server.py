"""The real thing: ``python -m server`` as a process, spoken to over a socket."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
import pytest
import uvicorn

from server import __main__ as entry
from tests.utils.data import order_body, user_body
from tests.utils.server import ROOT, running_server

UNROUTABLE_HOST = "192.0.2.1"  # TEST-NET-1 (RFC 5737): never an address of this machine


def _sign_in(http: httpx.Client, email: str, password: str) -> dict[str, str]:
    response = http.post("/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['data']['access_token']}"}


def test_a_live_server_stores_and_lists_over_a_socket() -> None:
    admin = {"MEMDB_ADMIN_EMAIL": "live-admin@example.com", "MEMDB_ADMIN_PASSWORD": "live-admin-password"}
    with running_server(admin) as base, httpx.Client(base_url=f"{base}/api/v1", timeout=10) as http:
        body = user_body()
        created_user = http.post("/users", json=body)
        user = created_user.json()["data"]
        as_user = _sign_in(http, body["email"], body["password"])
        created_order = http.post("/orders", json=order_body(user["id"], total_price="19.9"), headers=as_user)
        as_admin = _sign_in(http, admin["MEMDB_ADMIN_EMAIL"], admin["MEMDB_ADMIN_PASSWORD"])
        users = http.get("/users", params={"id": user["id"]}, headers=as_admin)
        orders = http.get(f"/users/{user['id']}/orders", headers=as_user)

    assert created_user.status_code == 201
    assert created_user.headers["location"] == f"/api/v1/users/{user['id']}"
    assert created_order.status_code == 201
    assert created_order.json()["data"]["total_price"] == "19.90"
    assert users.status_code == 200
    assert users.json()["data"] == [user]
    assert users.headers["x-request-id"]
    assert "server" not in users.headers  # the software is not named to clients
    assert [order["id"] for order in orders.json()["data"]] == [created_order.json()["data"]["id"]]
    assert orders.json()["data"][0]["user"] == user


def test_more_than_one_worker_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "--workers", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "--workers 2 refused" in result.stderr
    assert "one process" in result.stderr


def test_memdb_host_is_where_it_listens() -> None:
    # Bound to an address this machine does not have, the server cannot start; ignoring MEMDB_HOST, it would.
    with pytest.raises(RuntimeError, match=UNROUTABLE_HOST), running_server(env={"MEMDB_HOST": UNROUTABLE_HOST}):
        pass


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run :func:`server.__main__.main` in-process with Uvicorn replaced by a recorder (and no port check)."""
    calls: dict[str, Any] = {}

    def record(app: object, **options: Any) -> None:
        calls.update(options, app=app)

    monkeypatch.setattr(uvicorn, "run", record)
    monkeypatch.setattr(entry, "listen_problem", lambda host, port: None)
    return calls


@pytest.mark.parametrize(
    ("env", "argv", "host", "port"),
    [
        ({}, [], "127.0.0.1", 8000),
        ({"MEMDB_HOST": "10.1.2.3", "MEMDB_PORT": "4321"}, [], "10.1.2.3", 4321),
        ({"MEMDB_HOST": "10.1.2.3", "MEMDB_PORT": "4321"}, ["--host", "::1", "--port", "0"], "::1", 0),
    ],
)
def test_host_and_port_come_from_the_environment_unless_given(
    launched: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    argv: list[str],
    host: str,
    port: int,
) -> None:
    for name in ("MEMDB_HOST", "MEMDB_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert entry.main(argv) == 0

    assert launched["host"] == host
    assert launched["port"] == port
    assert launched["workers"] == 1


def test_workers_are_refused_before_anything_starts(
    launched: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert entry.main(["--workers", "3"]) == 2

    assert launched == {}
    assert "--workers 3 refused" in capsys.readouterr().err
