"""One APIRouter per resource, each under :data:`API_PREFIX` (its routes carry the full path)."""

API_PREFIX = "/api/v1"
