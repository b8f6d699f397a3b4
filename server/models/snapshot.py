"""The snapshots resource: what an admin sends to take a snapshot and what they see of one."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StrictBool, StringConstraints

from server.models.common import InputModel

SNAPSHOT_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
SnapshotName = Annotated[str, StringConstraints(pattern=SNAPSHOT_NAME_PATTERN)]


class SnapshotCreate(InputModel):
    """Remember every table as it is now, under a new name."""

    name: SnapshotName = Field(description="Unique; letters, digits, `.`, `_` and `-`, 1-64 characters.")
    sessions: StrictBool = Field(
        default=False,
        description="Also remember sessions (restoring then logs out whoever signed in since). "
        "Off: sessions stay as they are on restore, except those of users the restore removes.",
    )


class SnapshotRows(BaseModel):
    users: int
    orders: int
    sessions: int | None = Field(description="Null when the snapshot leaves sessions out.")


class SnapshotPublic(BaseModel):
    name: str
    created_at: str
    rows: SnapshotRows
    memory_bytes: int = Field(description="Approximate memory the snapshot's own structures hold.")
