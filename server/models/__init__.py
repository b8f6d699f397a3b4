"""Pydantic and SQLModel models: stored rows and each endpoint's request and response shapes."""
