"""memdb's HTTP face: FastAPI routes, models, middleware and start-up."""

__version__ = "0.1.0"
