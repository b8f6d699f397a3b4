"""Service configuration, read once from ``MEMDB_*`` environment variables.

Every setting, its default and meaning is listed in ``docs/configuration.md``.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import DirectoryPath, EmailStr, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from server import setting_errors

EXIT_USAGE = 2
"""A bad command-line option or ``MEMDB_*`` setting (argparse uses 2 for its own refusals too)."""
MIN_SECRET_BYTES = 32
MIN_SECRET_DISTINCT_BYTES = 8
"""A production secret with fewer different bytes than this (``aaaa…``, ``abab…``) is refused as guessable."""
MIN_PRODUCTION_BCRYPT_ROUNDS = 10
"""Below this, a stolen hash is cheap to crack; tests and development may go down to bcrypt's minimum, 4."""


class Settings(BaseSettings):
    """All of memdb's knobs; build one per process and inject it."""

    model_config = SettingsConfigDict(env_prefix="MEMDB_", extra="ignore", hide_input_in_errors=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    env: Literal["development", "production"] = "development"
    seed_file: Path | None = None
    queue_size: int = Field(default=1024, ge=1)
    memory_limit_mb: int = Field(default=512, ge=1)
    memory_check_seconds: float = Field(default=1.0, gt=0)
    presented_cache_mb: int = Field(default=16, ge=0, le=4096)
    queue_wait_seconds: float = Field(default=0.5, gt=0)
    bcrypt_rounds: int = Field(default=12, ge=4, le=31)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    jwt_secret: SecretStr | None = None
    admin_email: EmailStr | None = None
    admin_password: SecretStr | None = None
    access_token_minutes: int = Field(default=15, ge=1)
    refresh_token_days: int = Field(default=7, ge=1)
    rate_limit_per_minute: int = Field(default=100, ge=0)
    login_rate_limit_per_minute: int = Field(default=10, ge=0)
    rate_limit_max_clients: int = Field(default=10_000, ge=1)
    forwarded_allow_ips: str | None = None
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    import_max_bytes: int = Field(default=268_435_456, ge=1)
    import_concurrency: int = Field(default=1, ge=1)
    import_spool_dir: DirectoryPath | None = None
    jobs_keep_count: int = Field(default=100, ge=1)
    jobs_keep_seconds: float = Field(default=3600.0, gt=0)
    max_connections: int = Field(default=1000, ge=1)
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=10.0, gt=0)
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    store_url: str | None = Field(default=None, pattern=r"^rediss?://", repr=False)
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    public_url: str | None = None
    data_dir: Path | None = None
    fsync: Literal["always", "everysec", "no"] = "everysec"
    recover: Literal["refuse", "truncate"] = "refuse"
    snapshot_log_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    snapshot_on_start: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")

    @model_validator(mode="before")
    @classmethod
    def _split_lists(cls, values: dict[str, object]) -> dict[str, object]:
        for name in ("cors_origins", "allowed_hosts"):
            listed = values.get(name)
            if isinstance(listed, str):
                values[name] = tuple(part.strip() for part in listed.split(",") if part.strip())
        return values

    @field_validator("allowed_hosts")
    @classmethod
    def _check_host_patterns(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        for host in hosts:
            if "*" in host[1:] or (host.startswith("*") and host != "*" and not host.startswith("*.")):
                raise ValueError(f"{host!r}: a wildcard may only open a name, as in *.example.com")
        return hosts

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
            raise ValueError("must be an origin such as https://memdb.example.com (scheme and host, no path)")
        return f"{parts.scheme}://{parts.netloc}"

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        if self.store_url is not None:
            if self.data_dir is not None:
                raise ValueError(
                    "MEMDB_DATA_DIR cannot be used with MEMDB_STORE_URL: Redis keeps the data and its own persistence"
                    " (AOF/RDB); unset one of them"
                )
            if self.snapshot_on_start is not None:
                raise ValueError(
                    "MEMDB_SNAPSHOT_ON_START cannot be used with MEMDB_STORE_URL: Redis has no named snapshots"
                )
            if self.jwt_secret is None:
                raise ValueError("MEMDB_JWT_SECRET is required with MEMDB_STORE_URL: every node must sign tokens alike")
        if self.jwt_secret is None and not self.production:
            self.jwt_secret = SecretStr(secrets.token_urlsafe(48))  # tokens die with the process
        if self.production:
            if self.jwt_secret is None:
                raise ValueError("MEMDB_JWT_SECRET is required when MEMDB_ENV=production")
            secret = self.jwt_secret.get_secret_value().encode()
            if len(secret) < MIN_SECRET_BYTES:
                raise ValueError(f"MEMDB_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
            if len(set(secret)) < MIN_SECRET_DISTINCT_BYTES:
                raise ValueError(
                    f"MEMDB_JWT_SECRET must use at least {MIN_SECRET_DISTINCT_BYTES} different characters;"
                    " generate one, e.g. with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
                )
            if self.bcrypt_rounds < MIN_PRODUCTION_BCRYPT_ROUNDS:
                raise ValueError(
                    f"MEMDB_BCRYPT_ROUNDS must be at least {MIN_PRODUCTION_BCRYPT_ROUNDS} in production"
                    f" (it is {self.bcrypt_rounds})"
                )
        if (self.admin_email is None) != (self.admin_password is None):
            raise ValueError("set both MEMDB_ADMIN_EMAIL and MEMDB_ADMIN_PASSWORD, or neither")
        return self

    @property
    def signing_key(self) -> bytes:
        """The JWT key: the configured secret, or (development only) a random one per process."""
        assert self.jwt_secret is not None  # set by _check_secrets
        return self.jwt_secret.get_secret_value().encode()

    @property
    def production(self) -> bool:
        return self.env == "production"


def load_settings() -> Settings:
    """The settings from the environment; a refused configuration exits with status 2 and one line per problem.

    Each line names the variable and what it accepts (:mod:`server.setting_errors`), never its value
    (some are secrets), and there is no traceback.
    """
    try:
        return Settings()
    except ValidationError as refused:
        prefix = Settings.model_config.get("env_prefix", "")
        for line in setting_errors.describe(refused, Settings, prefix):
            print(f"memdb: {line}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
