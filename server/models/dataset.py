"""Records as a dataset carries them: the API's own rules plus ids, timestamps and password hashes.

Used by the seed file (``server.seed``) and by import jobs (``server.jobs.imports``).
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, model_validator

from server.models.common import UtcDatetime
from server.models.order import OrderCreate
from server.models.user import UserCreate
from server.security.passwords import BCRYPT_HASH

LOCKED_PASSWORD_HASH = "!"  # noqa: S105 - deliberately not a hash, so no password matches
"""Stored for a user imported with neither password nor hash: no password matches it until one is set."""


def _check_hash(value: str) -> str:
    # A locked account's marker comes back in exports with hashes, so it must import again.
    if value != LOCKED_PASSWORD_HASH and not BCRYPT_HASH.fullmatch(value):
        raise ValueError("is not a bcrypt hash")
    return value


class _Stamped(BaseModel):
    id: UUID
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


class UserRecord(_Stamped, UserCreate):
    """A user in a dataset: a password, an existing bcrypt hash, or neither (the account starts locked)."""

    password: str | None = None  # type: ignore[assignment]
    password_hash: Annotated[str, AfterValidator(_check_hash)] | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> UserRecord:
        if self.password is not None and self.password_hash is not None:
            raise ValueError("give at most one of password and password_hash")
        if self.password is not None:
            UserCreate.model_validate(
                {**self.model_dump(include=set(UserCreate.model_fields)), "password": self.password}
            )
        return self


class OrderRecord(_Stamped, OrderCreate):
    """An order in a dataset."""
