"""Run ``python -m server`` as a real process on a free port, for tests over a socket."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

import httpx

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
HEALTH = "/api/v1/health"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A running ``python -m server``: its base URL, its process, and a way to kill it like a crash would."""

    def __init__(self, process: subprocess.Popen[bytes], base: str) -> None:
        self.process = process
        self.base = base

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """``kill -9``: no shutdown, no final fsync, no snapshot."""
        self.process.kill()
        self.process.wait()


@contextlib.contextmanager
def running_server(env: Mapping[str, str] | None = None, args: tuple[str, ...] = ()) -> Iterator[str]:
    """Start the service, wait until ``/health`` answers, yield its base URL, stop it."""
    with server_process(env, args) as server:
        yield server.base


def resident_bytes(pid: int) -> int:
    """The process's resident memory now (``VmRSS``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise LookupError(f"no VmRSS for process {pid}")


@contextlib.contextmanager
def server_process(
    env: Mapping[str, str] | None = None, args: tuple[str, ...] = (), wait_for: str = HEALTH
) -> Iterator[ServerProcess]:
    """Start the service, wait until ``wait_for`` answers 200, yield it, stop it (if it still runs).

    The server's output goes to a temporary file, not a pipe: nobody reads a pipe while the test runs,
    and a full one (a few hundred log lines) would stop the server mid-request. The output is shown
    if the server exits or ``wait_for`` does not answer ``200`` within :data:`START_TIMEOUT`.
    """
    port = free_port()
    environment = {**os.environ, "MEMDB_PORT": str(port), "MEMDB_BCRYPT_ROUNDS": "4", **(env or {})}
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "server", *args],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_answering(f"{base}{wait_for}", process, output)
            yield ServerProcess(process, base)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_answering(url: str, process: subprocess.Popen[bytes], output: BinaryIO) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    status: int | str = "no answer"
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{_tail(output)}")
        try:
            status = httpx.get(url, timeout=1.0).status_code
        except httpx.TransportError as error:
            status = repr(error)
        if status == 200:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} still not 200 after {START_TIMEOUT:g} s ({status}):\n{_tail(output)}")
        time.sleep(0.05)  # polling interval, not a wait for something to be "ready enough"


def _tail(output: BinaryIO, limit: int = 20_000) -> str:
    """The last ``limit`` bytes the server wrote."""
    output.seek(0, os.SEEK_END)
    output.seek(max(0, output.tell() - limit))
    return output.read().decode(errors="replace")
