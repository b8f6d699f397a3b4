"""``python -m server`` / ``memdb``: run the service under Uvicorn.

The embedded store lives inside the process, so more than one worker would
mean several diverging databases; asking for that is refused unless the data
lives in Redis (``MEMDB_STORE_URL``), which every worker then shares.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from server.app import create_app
from server.logs import logging_config
from server.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="memdb", description="memdb: an in-memory database over REST.")
    parser.add_argument("--host", help="listen address (default MEMDB_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default MEMDB_PORT or 8000)")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes; more than 1 only with MEMDB_STORE_URL (the data in Redis)"
    )
    options = parser.parse_args(argv)
    settings = Settings()
    if options.workers < 1 or (options.workers != 1 and settings.store_url is None):
        print(
            f"memdb: --workers {options.workers} refused: the store lives inside one process, "
            "so extra workers would each hold a different database. Run one process, "
            "or set MEMDB_STORE_URL to keep the data in Redis, shared by every worker.",
            file=sys.stderr,
        )
        return 2
    host = options.host or settings.host
    port = settings.port if options.port is None else options.port
    uvicorn.run(
        # Several workers each build their own app from the environment, as this process would.
        create_app(settings) if options.workers == 1 else "server.app:create_app",
        factory=options.workers != 1,
        host=host,
        port=port,
        workers=options.workers,
        # Forwarded-for headers name the client only from proxies the operator listed (Uvicorn would trust 127.0.0.1).
        proxy_headers=settings.forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level.lower(),
        access_log=False,  # server.middleware.observe writes one line per request instead
        server_header=False,  # no "server: uvicorn": nothing to gain from naming the software to every client
        log_config=logging_config(settings.log_level, settings.log_format),  # applied once, Uvicorn's loggers too
        # The app answers past MEMDB_MAX_CONNECTIONS in-flight requests with an enveloped 503; this is
        # Uvicorn's own backstop for connections (idle keep-alives included) beyond that.
        limit_concurrency=settings.max_connections * 2,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
