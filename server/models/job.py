"""The jobs resource: what a client sends to start a job and what it sees of one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StrictBool

from server.models.common import InputModel

Section = Literal["users", "orders"]


class ImportJobCreate(InputModel):
    """Import a dataset in the seed format: ``{"users": [...], "orders": [...]}``."""

    type: Literal["import"]
    mode: Literal["all-or-nothing", "skip-invalid"] = "all-or-nothing"
    data: Annotated[
        dict[str, Any],
        Field(
            json_schema_extra={
                # Each record is checked when the job runs; the job reports the first one it refuses.
                "properties": {"users": {"type": "array", "items": {}}, "orders": {"type": "array", "items": {}}},
                "additionalProperties": False,
            }
        ),
    ]


class ExportJobCreate(InputModel):
    """Export a consistent snapshot of some tables."""

    type: Literal["export"]
    tables: list[Section] = Field(default=["users", "orders"], min_length=1)
    format: Literal["json", "ndjson"] = "json"
    include_password_hashes: StrictBool = False  # a true JSON boolean: this one exports every password hash


class SnapshotJobCreate(InputModel):
    """Write a snapshot of the whole database to MEMDB_DATA_DIR now (the log before it is then removed)."""

    type: Literal["snapshot"]


JobCreate = Annotated[ImportJobCreate | ExportJobCreate | SnapshotJobCreate, Field(discriminator="type")]


class Progress(BaseModel):
    done: int
    total: int | None


class JobPublic(BaseModel):
    id: UUID
    type: Literal["import", "export", "snapshot"]
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    parameters: dict[str, Any]
    progress: Progress
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    result_url: str | None
