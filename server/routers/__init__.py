"""One APIRouter per resource, each under :data:`API_PREFIX` (its routes carry the full path)."""

API_PREFIX = "/api/v1"
LOGIN_PATH = f"{API_PREFIX}/auth/token"
"""Where a client trades credentials for tokens (the OAuth2 password flow's token URL)."""
