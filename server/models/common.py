"""Pieces shared by every resource's models: the envelope, JSON and patch rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator

T = TypeVar("T")

MAX_METADATA_DEPTH = 8


def utc_now() -> datetime:
    return datetime.now(UTC)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    return 0


def _check_depth(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and _depth(value) > MAX_METADATA_DEPTH:
        raise ValueError(f"nested deeper than {MAX_METADATA_DEPTH} levels")
    return value


Metadata = Annotated[dict[str, Any] | None, AfterValidator(_check_depth)]
"""Free JSON object; the object is level 1, every nested object or array one more, at most 8."""


def _check_utc_range(value: datetime) -> datetime:
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range once converted to UTC") from None
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_check_utc_range)]
"""A datetime whose UTC instant lies in years 1-9999 (naive values are taken as UTC), so it can be written back."""


class InputModel(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class PatchModel(InputModel):
    """A partial update: fields left out stay as they are; ``null`` only where a field may be empty."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*")
    @classmethod
    def _no_null_for_required(cls, value: Any, info: ValidationInfo) -> Any:
        # A field validator (not a model one), so the error points at the field: ``body.full_name``.
        if value is None and info.field_name not in cls.nullable:
            raise ValueError("may not be null")
        return value


class Meta(BaseModel):
    page: int
    per_page: int
    total: int
    total_pages: int


class Envelope(BaseModel, Generic[T]):
    """Every successful answer: ``{"status": "success", "data": ...}``."""

    status: Literal["success"] = "success"
    data: T


class CollectionEnvelope(Envelope[T], Generic[T]):
    meta: Meta


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] | None = None
    request_id: str


class ErrorEnvelope(BaseModel):
    """Every error: ``{"status": "error", "error": {...}}``."""

    status: Literal["error"] = "error"
    error: ErrorBody
