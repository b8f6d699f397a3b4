"""Where things are served: the URL paths that routers, middleware and security all name.

They live here, below every layer that uses them, so a middleware or the auth
dependency can name a route without importing the routers that serve it. The
API is versioned under :data:`API_PREFIX`; the probes sit inside it, while
``/metrics`` (a scraper's convention), the docs pages and the index ``/`` are
at the root.
"""

from __future__ import annotations

from typing import Final

API_PREFIX: Final = "/api/v1"
LOGIN_PATH: Final = f"{API_PREFIX}/auth/token"
"""Where a client trades credentials for tokens (the OAuth2 password flow's token URL)."""
HEALTH_PATH: Final = f"{API_PREFIX}/health"
READY_PATH: Final = f"{API_PREFIX}/ready"
METRICS_PATH: Final = "/metrics"
PROBE_PATHS: Final = frozenset({HEALTH_PATH, READY_PATH, METRICS_PATH})
"""Always answered and never rate limited, so an orchestrator or a scraper can tell busy from dead."""
