"""Run ``python -m server`` as a real process on a free port, for tests over a socket."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A running ``python -m server``: its base URL, and a way to kill it like a crash would."""

    def __init__(self, process: subprocess.Popen[bytes], base: str) -> None:
        self.process = process
        self.base = base

    def kill(self) -> None:
        """``kill -9``: no shutdown, no final fsync, no snapshot."""
        self.process.kill()
        self.process.wait()


@contextlib.contextmanager
def server_process(
    env: Mapping[str, str] | None = None, args: tuple[str, ...] = (), wait_for: str = "/api/v1/health"
) -> Iterator[ServerProcess]:
    """Start the service, wait until ``wait_for`` answers 200, yield it, stop it (if it still runs)."""
    port = free_port()
    environment = {**os.environ, "MEMDB_PORT": str(port), "MEMDB_BCRYPT_ROUNDS": "4", **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "server", *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                raise RuntimeError(f"server exited with {process.returncode}:\n{output}")
            try:
                if httpx.get(f"{base}{wait_for}", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"{wait_for} did not answer 200 within {START_TIMEOUT}s")
            time.sleep(0.05)
        yield ServerProcess(process, base)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


@contextlib.contextmanager
def running_server(env: Mapping[str, str] | None = None, args: tuple[str, ...] = ()) -> Iterator[str]:
    """Start the service, wait until ``/health`` answers, yield its base URL, stop it."""
    with server_process(env, args) as server:
        yield server.base
