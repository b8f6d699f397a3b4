"""``python -m server`` / ``memdb``: run the service under Uvicorn.

The embedded store lives inside the process, so more than one worker would
mean several diverging databases; asking for that is refused unless the data
lives in Redis (``MEMDB_STORE_URL``), which every worker then shares. Invalid
settings and a port that cannot be listened on are reported in one line each,
before anything is loaded, with their own exit statuses (``docs/configuration.md``).
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from server.app import create_app
from server.connection_guard import guarded_protocol
from server.listen import listen_problem
from server.logs import logging_config
from server.settings import EXIT_USAGE, load_settings

EXIT_CANNOT_LISTEN = 4
"""The port is taken, or the address cannot be listened on. (3 is Uvicorn's: the app failed to start.)"""


def _port(text: str) -> int:
    if not text.isdecimal() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: a whole number from 0 to 65535")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="memdb", description="memdb: an in-memory database over REST.")
    parser.add_argument("--host", help="listen address (default MEMDB_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=_port, help="listen port (default MEMDB_PORT or 8000)")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes; more than 1 only with MEMDB_STORE_URL (the data in Redis)"
    )
    options = parser.parse_args(argv)
    settings = load_settings()
    if options.workers < 1 or (options.workers != 1 and settings.store_url is None):
        print(
            f"memdb: --workers {options.workers} refused: the store lives inside one process, "
            "so extra workers would each hold a different database. Run one process, "
            "or set MEMDB_STORE_URL to keep the data in Redis, shared by every worker.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    host = options.host or settings.host
    port = settings.port if options.port is None else options.port
    problem = listen_problem(host, port)
    if problem is not None:
        print(f"memdb: {problem}", file=sys.stderr)
        return EXIT_CANNOT_LISTEN
    app = create_app(settings) if options.workers == 1 else None
    uvicorn.run(
        # Several workers each build their own app from the environment, as this process would.
        app if app is not None else "server.app:create_app",
        factory=app is None,
        host=host,
        port=port,
        workers=options.workers,
        # Forwarded-for headers name the client only from proxies the operator listed (Uvicorn would trust 127.0.0.1).
        proxy_headers=settings.forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        loop="uvloop",
        # httptools with a deadline on request headers and a cap on open connections that makes room by
        # closing the longest-waiting idle one, so slow senders cannot crowd out whole requests (probes too).
        # Workers are spawned processes: they take protocol classes by name, so several get Uvicorn's own.
        http="httptools"
        if app is None
        else guarded_protocol(
            settings.header_timeout_seconds, settings.max_connections * 2, on_close=app.state.metrics.connection_closed
        ),
        limit_concurrency=None,  # requests in flight: server.middleware.concurrency, in the error envelope
        log_level=settings.log_level.lower(),
        access_log=False,  # server.middleware.observe writes one line per request instead
        server_header=False,  # no "server: uvicorn": nothing to gain from naming the software to every client
        log_config=logging_config(settings.log_level, settings.log_format),  # applied once, Uvicorn's loggers too
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
