"""Durability over real HTTP: what a server acknowledged survives ``kill -9`` and a restart on the same data."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from server import app as app_module
from server.settings import Settings
from store import log as log_module
from tests.server.test_jobs import finished
from tests.utils.api import assert_error
from tests.utils.asgi import asgi_client, serving
from tests.utils.asgi import sign_in as asgi_sign_in
from tests.utils.data import order_body, user_body
from tests.utils.server import ServerProcess, server_process

READY = "/api/v1/ready"
ADMIN = {"email": "durable-admin@example.com", "password": "durable-admin-password"}


def environment(data: Path, fsync: str = "always") -> dict[str, str]:
    return {
        "MEMDB_DATA_DIR": str(data),
        "MEMDB_FSYNC": fsync,
        "MEMDB_JWT_SECRET": "a-secret-that-outlives-the-process-0123456789",
        "MEMDB_ADMIN_EMAIL": ADMIN["email"],
        "MEMDB_ADMIN_PASSWORD": ADMIN["password"],
        "MEMDB_RATE_LIMIT_PER_MINUTE": "0",
    }


def durable_server(data: Path, fsync: str = "always") -> contextlib.AbstractContextManager[ServerProcess]:
    """A ``python -m server`` on ``data``, once it has recovered (``/ready`` answers 200)."""
    return server_process(environment(data, fsync), wait_for=READY)


def sign_in(http: httpx.Client, email: str, password: str) -> dict[str, Any]:
    response = http.post("/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_acknowledged_writes_survive_kill_9(tmp_path: Path, fsync: str) -> None:
    """``everysec`` too: a process crash loses nothing, the records were written before the answers."""
    data = tmp_path / "data"
    with durable_server(data, fsync) as server, httpx.Client(base_url=f"{server.base}/api/v1") as http:
        admin = bearer(sign_in(http, **ADMIN))
        kept, renamed, gone = (http.post("/users", json=user_body()).json()["data"] for _ in range(3))
        owner = sign_in(http, kept["email"], "correct-horse")
        order = http.post("/orders", json=order_body(kept["id"]), headers=bearer(owner)).json()["data"]
        patched = http.patch(f"/orders/{order['id']}", json={"status": "paid"}, headers=bearer(owner))
        http.post("/orders", json=order_body(gone["id"]), headers=admin)
        assert http.delete(f"/users/{gone['id']}", params={"cascade": "true"}, headers=admin).status_code == 204
        renamed_session = sign_in(http, renamed["email"], "correct-horse")
        changed = http.patch(f"/users/{renamed['id']}", json={"password": "a-new-password"}, headers=admin)
        assert changed.status_code == 200
        revoked = sign_in(http, kept["email"], "correct-horse")
        assert http.post("/auth/logout", headers=bearer(revoked)).status_code == 204
        listing = http.get("/orders", headers=admin).json()["data"]
        server.kill()

    segment = next(data.glob("*.log"))
    assert stat.S_IMODE(os.stat(segment).st_mode) == 0o600
    with durable_server(data, fsync) as server, httpx.Client(base_url=f"{server.base}/api/v1") as http:
        assert http.get("/orders", headers=admin).json()["data"] == listing  # every row, tag and timestamp
        again = http.get(f"/orders/{order['id']}", headers=bearer(owner))
        assert again.json()["data"]["status"] == "paid"
        assert again.headers["etag"] == patched.headers["etag"]
        assert http.get(f"/users/{gone['id']}", headers=admin).status_code == 404
        assert http.get("/auth/me", headers=bearer(revoked)).status_code == 401  # logged out stays out
        assert http.get("/auth/me", headers=bearer(renamed_session)).status_code == 401  # ended by the new password
        assert (
            http.post("/auth/token", json={"email": renamed["email"], "password": "correct-horse"}).status_code == 401
        )
        sign_in(http, renamed["email"], "a-new-password")
        refreshed = http.post("/auth/refresh", json={"refresh_token": owner["refresh_token"]})
        assert refreshed.status_code == 200  # a session from before the crash still works
        metrics = httpx.get(f"{server.base}/metrics").text
        assert "store_recovery_records" in metrics


async def _write_until_killed(
    base: str, user_id: str, headers: dict[str, str], acknowledged: list[str], enough: asyncio.Event
) -> None:
    async with httpx.AsyncClient(base_url=f"{base}/api/v1", headers=headers, timeout=10) as http:
        while True:
            try:
                response = await http.post("/orders", json=order_body(user_id, quantity=3, total_price="12.34"))
            except httpx.TransportError:
                return
            if response.status_code == 201:
                acknowledged.append(response.json()["data"]["id"])
                if len(acknowledged) >= 200:
                    enough.set()


def test_concurrent_writers_killed_mid_load_lose_nothing_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    acknowledged: list[str] = []
    with durable_server(data) as server, httpx.Client(base_url=f"{server.base}/api/v1") as http:
        admin = bearer(sign_in(http, **ADMIN))
        user = http.post("/users", json=user_body()).json()["data"]

        async def load() -> None:
            enough = asyncio.Event()
            writers = [_write_until_killed(server.base, user["id"], admin, acknowledged, enough) for _ in range(20)]
            tasks = [asyncio.create_task(writer) for writer in writers]
            await asyncio.wait_for(enough.wait(), 60)
            server.process.kill()
            await asyncio.gather(*tasks)

        asyncio.run(load())
        server.process.wait()

    with durable_server(data) as server, httpx.Client(base_url=f"{server.base}/api/v1") as http:
        admin = bearer(sign_in(http, **ADMIN))
        ids: set[str] = set()
        page = 1
        while True:
            response = http.get("/orders", params={"per_page": 100, "page": page}, headers=admin).json()
            for item in response["data"]:
                assert (item["quantity"], item["total_price"], item["user_id"]) == (3, "12.34", user["id"])
                ids.add(item["id"])
            if len(response["data"]) < 100:
                break
            page += 1
        assert len(acknowledged) >= 200
        assert set(acknowledged) <= ids  # every order a writer heard 201 for; the rest were never acknowledged


async def test_a_full_disk_refuses_writes_with_507_while_reads_and_probes_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serving(persistent(tmp_path / "data")) as app:
        await opened(app)
        token = await asgi_sign_in(app, ADMIN["email"], ADMIN["password"])
        async with asgi_client(app, token) as http:
            user = (await http.post("/users", json=user_body())).json()["data"]
            real_write = os.write
            log_fd = app.state.recovery.log._fd

            def full_disk(fd: int, data: bytes) -> int:
                if fd == log_fd:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return real_write(fd, data)

            monkeypatch.setattr(log_module.os, "write", full_disk)
            refused = await http.post("/orders", json=order_body(user["id"]))
            assert_error(refused, 507, "INSUFFICIENT_STORAGE")
            assert "No space left on device" in refused.json()["error"]["message"]
            assert (await http.get(f"/users/{user['id']}/orders")).json()["data"] == []  # not applied
            assert (await http.get(f"/users/{user['id']}")).status_code == 200  # reads go on
            ready = await http.get("/ready")
            assert_error(ready, 503, "SERVICE_UNAVAILABLE")
            assert "refuses writes" in ready.json()["error"]["message"]
            assert "store_log_failures 1.0" in (await http.get("http://testserver/metrics")).text
            monkeypatch.setattr(log_module.os, "write", real_write)
            assert (await http.post("/orders", json=order_body(user["id"]))).status_code == 201
            assert (await http.get("/ready")).status_code == 200


@asynccontextmanager
async def as_admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    await opened(app)
    async with asgi_client(app, await asgi_sign_in(app, ADMIN["email"], ADMIN["password"])) as http:
        yield http


async def opened(app: FastAPI) -> None:
    """Wait for the data directory to be recovered (the app serves probes meanwhile)."""
    if app.state.opening is not None:
        await app.state.opening


def persistent(data: Path, **overrides: Any) -> Settings:
    return Settings(
        data_dir=data,
        admin_email=ADMIN["email"],
        admin_password=ADMIN["password"],
        bcrypt_rounds=4,
        rate_limit_per_minute=0,
        **overrides,
    )


async def test_the_snapshot_job_writes_one_and_the_log_before_it_goes(tmp_path: Path) -> None:
    async with serving(persistent(tmp_path / "data")) as app:
        await opened(app)
        token = await asgi_sign_in(app, ADMIN["email"], ADMIN["password"])
        async with asgi_client(app, token) as http:
            user = (await http.post("/users", json=user_body())).json()["data"]
            started = await http.post("/jobs", json={"type": "snapshot"})
            assert started.status_code == 202
            job = await finished(http, started.json()["data"]["id"])
            assert job["status"] == "succeeded"
            assert job["result"]["rows"] >= 3  # the admin, the user and a session
            assert job["result"]["freed_log_bytes"] > 0
            metrics = (await http.get("http://testserver/metrics")).text
            assert "store_snapshots 1.0" in metrics
    async with serving(persistent(tmp_path / "data")) as app:
        await opened(app)
        assert app.state.recovery.snapshot is not None
        assert app.state.recovery.records == 0  # the shutdown snapshot holds everything
        async with as_admin(app) as http:
            assert (await http.get(f"/users/{user['id']}")).json()["data"] == user


async def test_a_snapshot_job_without_persistence_is_refused(tmp_path: Path) -> None:
    settings = Settings(admin_email=ADMIN["email"], admin_password=ADMIN["password"], bcrypt_rounds=4)
    async with serving(settings) as app, as_admin(app) as http:
        refused = await http.post("/jobs", json={"type": "snapshot"})
    assert_error(refused, 409, "CONFLICT")
    assert "MEMDB_DATA_DIR" in refused.json()["error"]["message"]


async def test_a_seed_file_is_loaded_only_into_an_empty_data_directory(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seeded = {"users": [user_body(id="9b2f7c1e-0000-4000-8000-000000000001")], "orders": []}
    seed.write_bytes(orjson.dumps(seeded))
    settings = persistent(tmp_path / "data", seed_file=seed)
    user_id = seeded["users"][0]["id"]
    async with serving(settings) as app, as_admin(app) as http:
        assert (await http.get(f"/users/{user_id}")).status_code == 200
        assert (await http.delete(f"/users/{user_id}")).status_code == 204
    async with serving(settings) as app, as_admin(app) as http:
        assert (await http.get(f"/users/{user_id}")).status_code == 404  # not seeded again


async def test_probes_answer_while_the_data_directory_is_recovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real_recover = app_module.recover

    def slow_recover(settings: Settings, database: Any) -> Any:
        assert release.wait(30)
        return real_recover(settings, database)

    monkeypatch.setattr(app_module, "recover", slow_recover)
    async with serving(persistent(tmp_path / "data")) as app, asgi_client(app) as http:
        assert (await http.get("/health")).status_code == 200
        not_yet = await http.get("/ready")
        assert_error(not_yet, 503, "SERVICE_UNAVAILABLE")
        assert "recovering" in not_yet.json()["error"]["message"]
        refused = await http.post("/auth/token", json=ADMIN)
        assert_error(refused, 503, "SERVICE_UNAVAILABLE")
        release.set()
        await opened(app)
        assert (await http.get("/ready")).status_code == 200
        assert (await http.post("/auth/token", json=ADMIN)).status_code == 200


def test_a_corrupt_log_stops_the_server_naming_file_and_offset(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with durable_server(data) as server, httpx.Client(base_url=f"{server.base}/api/v1") as http:
        for _ in range(3):
            http.post("/users", json=user_body())
        server.kill()  # no shutdown snapshot: the log is all there is
    segment = min(data.glob("*.log"))
    damaged = bytearray(segment.read_bytes())
    damaged[30] ^= 0xFF  # inside the first record, with more after it
    segment.write_bytes(bytes(damaged))
    with (
        pytest.raises(
            RuntimeError,
            match=rf"exited with 1:(.|\n)*cannot open the data directory: corrupt log: {segment} at byte 0",
        ),
        durable_server(data),
    ):
        pass
    with server_process({**environment(data), "MEMDB_RECOVER": "truncate"}, wait_for=READY) as server:
        assert httpx.get(f"{server.base}/api/v1/ready").status_code == 200


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs mounted by the test itself (as root), unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_full_disk_refuses_writes_and_loses_nothing_acknowledged(small_disk: Path) -> None:
    data = small_disk / "data"
    acknowledged: list[str] = []
    with durable_server(data) as server, httpx.Client(base_url=f"{server.base}/api/v1") as http:
        admin = bearer(sign_in(http, **ADMIN))
        for _ in range(2000):
            response = http.post("/users", json=user_body())
            if response.status_code != 201:
                break
            acknowledged.append(response.json()["data"]["id"])
        assert_error(response, 507, "INSUFFICIENT_STORAGE")
        assert "No space left on device" in response.json()["error"]["message"]
        assert len(acknowledged) > 10
        assert http.get(f"/users/{acknowledged[-1]}", headers=admin).status_code == 200  # reads go on
        assert http.get("/ready").status_code == 503
        server.kill()
    subprocess.run(["mount", "-o", "remount,size=1m", str(small_disk)], check=True)
    with durable_server(data) as server, httpx.Client(base_url=f"{server.base}/api/v1") as http:
        admin = bearer(sign_in(http, **ADMIN))
        listed = http.get("/users", params={"per_page": 100, "role": "user"}, headers=admin).json()
        ids = {user["id"] for user in listed["data"]}
        page = 2
        while len(listed["data"]) == 100:
            listed = http.get("/users", params={"per_page": 100, "page": page, "role": "user"}, headers=admin).json()
            ids |= {user["id"] for user in listed["data"]}
            page += 1
        assert ids == set(acknowledged)  # every acknowledged user, and not the refused one
