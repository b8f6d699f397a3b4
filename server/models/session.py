"""A login session: the row that makes a token revocable."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from pydantic import BaseModel
from sqlmodel import Field, SQLModel

from server.models.common import InputModel, utc_now
from server.models.user import UserPublic


class Session(SQLModel):
    """One login: access tokens name it (``sid``); deleting it revokes them and its refresh token."""

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    user_id: UUID = Field(foreign_key="user.id", ondelete="CASCADE")
    refresh_generation: int = 0
    """Which refresh token is current: 0 at login, one more at each refresh (see ``server.security.tokens``)."""
    refresh_expires_at: datetime
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now, sa_column_kwargs={"onupdate": utc_now})


class LoginRequest(InputModel):
    email: str
    password: str


class LoginForm(BaseModel):
    """The OAuth2 password form ``POST /auth/token`` also takes (``username`` is the email)."""

    username: str
    password: str


class RefreshRequest(InputModel):
    refresh_token: str


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class Me(UserPublic):
    """The caller, as ``GET /auth/me`` shows them."""
