"""One APIRouter per resource, each under :data:`server.paths.API_PREFIX` (its routes carry the full path)."""
