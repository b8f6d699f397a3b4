"""``python -m server`` / ``memdb``: run the service under Uvicorn, in one process.

The store lives inside the process, so more than one worker would mean several
diverging databases; asking for that is refused.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from server.app import create_app
from server.connection_guard import guarded_protocol
from server.logs import logging_config
from server.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="memdb", description="memdb: an in-memory database over REST.")
    parser.add_argument("--host", help="listen address (default MEMDB_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default MEMDB_PORT or 8000)")
    parser.add_argument("--workers", type=int, default=1, help="must be 1: the data lives in this one process")
    options = parser.parse_args(argv)
    if options.workers != 1:
        print(
            f"memdb: --workers {options.workers} refused: the store lives inside one process, "
            "so extra workers would each hold a different database. Run one process.",
            file=sys.stderr,
        )
        return 2
    settings = load_settings()
    host = options.host or settings.host
    port = settings.port if options.port is None else options.port
    app = create_app(settings)
    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=1,
        # Forwarded-for headers name the client only from proxies the operator listed (Uvicorn would trust 127.0.0.1).
        proxy_headers=settings.forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        loop="uvloop",
        # httptools with a deadline on request headers and a cap on open connections that makes room by
        # closing the longest-waiting idle one, so slow senders cannot crowd out whole requests (probes too).
        http=guarded_protocol(
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
