"""The user resource: the stored row and its create, update and public shapes."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any, ClassVar
from uuid import UUID, uuid4

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, WithJsonSchema
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from server.models.common import InputModel, Metadata, PatchModel, utc_now

MIN_PASSWORD_BYTES = 8
MAX_PASSWORD_BYTES = 72  # bcrypt ignores anything past 72 bytes


class Role(enum.StrEnum):
    user = "user"
    admin = "admin"


def _check_password(value: str) -> str:
    try:
        size = len(value.encode())
    except UnicodeEncodeError:  # a lone surrogate, which JSON's \ud800 escapes can spell
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    if not MIN_PASSWORD_BYTES <= size <= MAX_PASSWORD_BYTES:
        raise ValueError(f"must be {MIN_PASSWORD_BYTES} to {MAX_PASSWORD_BYTES} bytes in UTF-8")
    return value


def _check_email(value: str) -> str:
    # Syntax only, as pydantic's EmailStr, but quoted local parts and address literals are addresses too.
    try:
        checked = validate_email(value, check_deliverability=False, allow_quoted_local=True, allow_domain_literal=True)
    except EmailNotValidError as error:
        raise ValueError(f"must be a valid email address: {error}") from None
    return checked.normalized


def _any_case(word: str) -> str:
    return "".join(f"[{letter.lower()}{letter.upper()}]" for letter in word)


_UNROUTABLE = "|".join(_any_case(name) for name in SPECIAL_USE_DOMAIN_NAMES)
Email = Annotated[
    str,
    AfterValidator(_check_email),
    WithJsonSchema(
        {
            "type": "string",
            "format": "email",
            # email-validator's refusals that ``format: email`` allows: special-use names, dotless domains.
            "not": {"pattern": f"[@.]({_UNROUTABLE})\\.?$|@[^.\\[]*$"},
            "description": "An email address whose domain has a dot and is not a special-use name (`.test`, `.local`).",
        }
    ),
]
"""An email address as a request gives it (the stored row keeps ``EmailStr``, which makes it case-insensitive)."""

Password = Annotated[
    str,
    AfterValidator(_check_password),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": MIN_PASSWORD_BYTES,
            "maxLength": MAX_PASSWORD_BYTES,
            "writeOnly": True,
            "description": f"{MIN_PASSWORD_BYTES} to {MAX_PASSWORD_BYTES} bytes in UTF-8 (bcrypt reads no further).",
        }
    ),
]
FullName = Annotated[str, PydanticField(min_length=1, max_length=100)]
Age = Annotated[int, PydanticField(ge=1, le=149)]


class User(SQLModel):
    """A user as the store keeps it; the table definition is derived from this."""

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    email: EmailStr = Field(unique=True)
    full_name: str
    age: int | None = None
    role: Role = Role.user
    metadata_: dict[str, Any] | None = Field(default=None, alias="metadata")
    password_hash: str = Field(exclude=True)
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now, sa_column_kwargs={"onupdate": utc_now})


class UserCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "ada@example.com",
                    "full_name": "Ada Lovelace",
                    "age": 36,
                    "metadata": {"source": "web"},
                    "password": "correct-horse-battery",
                }
            ]
        }
    )

    email: Email
    full_name: FullName
    age: Age | None = None
    role: Role = Role.user
    metadata: Metadata = None
    password: Password


class UserUpdate(PatchModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"full_name": "Ada King", "age": 37}]})
    nullable: ClassVar[frozenset[str]] = frozenset({"age", "metadata"})

    email: Email | None = None
    full_name: FullName | None = None
    age: Age | None = None
    role: Role | None = None
    metadata: Metadata = None
    password: Password | None = None


class UserPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b7e4c8e-3f6a-4d4b-9a57-2f0c1e9d8a11",
                    "email": "ada@example.com",
                    "full_name": "Ada Lovelace",
                    "age": 36,
                    "role": "user",
                    "metadata": {"source": "web"},
                    "created_at": "2026-01-05T09:30:00.000000Z",
                    "updated_at": "2026-01-05T09:30:00.000000Z",
                }
            ]
        }
    )

    id: UUID
    email: EmailStr
    full_name: str
    age: int | None
    role: Role
    metadata: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
