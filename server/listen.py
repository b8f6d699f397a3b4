"""Can the server listen where it was told to? Asked before anything is loaded.

Uvicorn binds its socket only after the app's start-up has run, which loads the
seed file: a second server on a busy port would load a whole dataset and only
then fail, with the exit status a bad seed file gets. :func:`listen_problem`
binds (and releases) the address first, the way asyncio's server will (every
address the host resolves to, ``SO_REUSEADDR`` on), and says in one line what
is wrong and how to pick another port. Another process could still take the
port in the moment between; Uvicorn's own failure covers that rare case.
"""

from __future__ import annotations

import errno
import socket


def listen_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, or ``None`` if it can."""
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        return f"cannot listen on {host}: the address does not resolve ({error.strerror}); set MEMDB_HOST or --host"
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio does, so IPv4 on the same port is a separate question
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as error:
                where = f"{address[0]} port {port}"
                if error.errno == errno.EADDRINUSE:
                    return (
                        f"{where} is already in use (another memdb?): stop that process, or pick another port "
                        f"with MEMDB_PORT or --port, e.g. MEMDB_PORT={_another(port)} ./scripts/serve"
                    )
                return f"cannot listen on {where}: {error.strerror}; pick another address (MEMDB_HOST) or port"
    return None


def _another(port: int) -> int:
    return port + 1 if 0 < port < 65535 else 8001
