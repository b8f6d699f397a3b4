"""HTTP/1.1 over a raw socket, for requests no client library sends: a body announced but never finished.

An in-process transport or httpx would send the whole body (or none); these send
a request's head and as much of its body as a test chooses, then read the
answer, which the server may give (and close the connection after) before the
rest of the body ever comes.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

import httpx
import orjson


class Answer:
    """One HTTP response read off a raw socket."""

    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}

    def error(self) -> dict[str, Any]:
        error: dict[str, Any] = orjson.loads(self.body)["error"]
        return error


def request_head(base: str, method: str, path: str, headers: Mapping[str, str]) -> bytes:
    """The head of ``method path`` (under ``base``) with ``headers`` and ``Host``, ready to send."""
    url = httpx.URL(base)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {url.host}:{url.port}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def connect(base: str) -> socket.socket:
    url = httpx.URL(base)
    assert url.port is not None
    return socket.create_connection((url.host, url.port), timeout=10)


def read_answer(sock: socket.socket, timeout: float = 10.0) -> Answer:
    """Read one whole response (the server closes the connection after it, or says how long it is)."""
    sock.settimeout(timeout)
    raw = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        raw += chunk
        if b"\r\n\r\n" in raw:
            answer = Answer(raw)
            if len(answer.body) >= int(answer.headers.get("content-length", "0")):
                return answer
    return Answer(raw)
