"""Service configuration, read once from ``MEMDB_*`` environment variables.

Every setting, its default and meaning is listed in ``docs/configuration.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All of memdb's knobs; build one per process and inject it."""

    model_config = SettingsConfigDict(env_prefix="MEMDB_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    env: Literal["development", "production"] = "development"
    seed_file: Path | None = None
    queue_size: int = Field(default=1024, ge=1)
    queue_wait_seconds: float = Field(default=0.5, gt=0)
    bcrypt_rounds: int = Field(default=12, ge=4, le=31)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @property
    def production(self) -> bool:
        return self.env == "production"
