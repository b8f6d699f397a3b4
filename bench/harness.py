"""Shared pieces of the benchmark scripts: starting a server, waiting for it, reading its memory.

Everything listens on loopback only. Servers are started as child processes
and stopped by their own pid (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYTHON = ROOT / ".venv" / "bin" / "python"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def proc_status(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak) of ``pid``, in bytes, from ``/proc/<pid>/status``."""
    figures: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                figures[name] = int(rest.split()[0]) * 1024
    return figures


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used (steadier than wall time on a shared machine).

    Includes the children it has waited for, such as the seed's worker processes.
    """
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return sum(int(field) for field in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(value, 2) for value in load],
    }


def get(url: str, headers: Mapping[str, str] | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def post_json(url: str, body: Any, headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **(headers or {})}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read() or b"null")


@dataclass
class Server:
    """A child process serving HTTP on ``port``."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    started: float
    log: Path
    ready_after: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def wait_ready(self, path: str, timeout: float) -> float:
        """Poll ``path`` until it answers 200; return the seconds since start."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log}")
            with contextlib.suppress(OSError):
                status, _ = get(self.base + path, timeout=2)
                if status == 200:
                    self.ready_after = time.monotonic() - self.started
                    return self.ready_after
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {timeout:.0f}s; see {self.log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(
    name: str, argv: Sequence[str], env: Mapping[str, str], port: int, cwd: Path = ROOT, log_dir: Path = RESULTS
) -> Server:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MEMDB_")}
    environment.update(env)
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=cwd, env=environment, stdout=out, stderr=subprocess.STDOUT)
    return Server(name, process, port, time.monotonic(), log)


def memdb_env(port: int, **settings: str) -> dict[str, str]:
    env = {
        "MEMDB_HOST": HOST,
        "MEMDB_PORT": str(port),
        "MEMDB_LOG_LEVEL": "WARNING",
        "MEMDB_RATE_LIMIT_PER_MINUTE": "0",
        "MEMDB_BCRYPT_ROUNDS": "4",
    }
    env.update({f"MEMDB_{key.upper()}": value for key, value in settings.items()})
    return env


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()


def ensure_dataset(users: int, orders: int, path: Path | None = None) -> Path:
    """A dataset of that size (generated once into ``bench/results/``, then reused)."""
    target = path or RESULTS / f"dataset-{users}u-{orders}o.json"
    if not target.exists():
        RESULTS.mkdir(parents=True, exist_ok=True)
        print(f"generating {target.name} ...", file=sys.stderr, flush=True)
        partial = target.with_suffix(".partial")
        command = [str(PYTHON), str(ROOT / "bench" / "make_dataset.py"), "--users", str(users), "--orders", str(orders)]
        subprocess.run([*command, "--output", str(partial)], check=True)
        partial.rename(target)
    return target


def cheap_dataset(users: int, orders: int) -> Path:
    """The request benchmarks' dataset, bcrypt cost 4 (loading it is not what they measure), generated once.

    Seed users' password is ``password123`` (bench/make_dataset.py).
    """
    target = RESULTS / f"throughput-dataset-{users}u-{orders}o.json"
    if not target.exists():
        RESULTS.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        command = [str(PYTHON), str(ROOT / "bench" / "make_dataset.py"), "--users", str(users), "--orders", str(orders)]
        subprocess.run([*command, "--bcrypt-rounds", "4", "--output", str(partial)], check=True, timeout=600)
        partial.rename(target)
    return target


def save(name: str, result: Mapping[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
