"""What a server on the embedded store imports: nothing of Redis, which only ``MEMDB_STORE_URL`` needs.

Each library imported at start-up stays in every process's memory, and a
million records fit 512 MiB with little to spare (docs/performance.md,
section 1): Redis's client and ``limits``' Redis storage cost about 4 MiB. Run
in a fresh interpreter, since the test process itself imports everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

BUILD_THE_APP = """
import json, sys
import server.__main__
from server.app import create_app
from server.settings import load_settings
create_app(load_settings())
REDIS = ("redis", "hiredis", "store.redis", "server.security.shared_limits")
print(json.dumps(sorted(name for name in sys.modules if name == REDIS[0] or name.startswith(REDIS))))
"""


def test_a_server_on_the_embedded_store_imports_no_redis_client() -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MEMDB_")}
    finished = subprocess.run(
        [sys.executable, "-c", BUILD_THE_APP], env=environment, capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(finished.stdout) == []


def test_a_server_on_redis_still_gets_the_shared_store_and_limiter() -> None:
    from server.settings import Settings
    from server.shared_store import rate_limiter

    settings = Settings(store_url="redis://127.0.0.1:1/0", jwt_secret="a-test-signing-key-for-the-redis-backend-0123")
    limiter = rate_limiter(settings, 10, "requests")
    assert type(limiter).__name__ == "SharedRateLimiter"
    assert limiter.limit == 10
