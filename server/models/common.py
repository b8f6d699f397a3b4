"""Pieces shared by every resource's models: the envelope, JSON and patch rules."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetJsonSchemaHandler,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

T = TypeVar("T")

MAX_METADATA_DEPTH = 8


def utc_now() -> datetime:
    return datetime.now(UTC)


def _deeper_than(value: Any, levels: int) -> bool:
    """Whether ``value`` nests more than ``levels`` objects and arrays; never looks further down than that."""
    if not isinstance(value, dict | list):
        return False
    if levels == 0:
        return True
    items = value.values() if isinstance(value, dict) else value
    return any(_deeper_than(item, levels - 1) for item in items)


INT64_MIN = -(2**63)
UINT64_MAX = 2**64 - 1
"""Whole numbers JSON stores here must fit 64 bits (signed or unsigned), as orjson writes them."""


def _storable(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_storable(item) for item in value.values())
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    if isinstance(value, float):
        # JSON has no NaN or Infinity; a whole float (1e30) is a whole number as far as JSON Schema goes.
        return math.isfinite(value) and (not value.is_integer() or INT64_MIN <= value <= UINT64_MAX)
    return not isinstance(value, int) or isinstance(value, bool) or INT64_MIN <= value <= UINT64_MAX


def _check_depth(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and _deeper_than(value, MAX_METADATA_DEPTH):
        raise ValueError(f"nested deeper than {MAX_METADATA_DEPTH} levels")
    if value is not None and not _storable(value):
        raise ValueError("numbers must be finite, and whole numbers must fit in 64 bits")
    return value


Metadata = Annotated[
    dict[str, Any] | None,
    AfterValidator(_check_depth),
    WithJsonSchema(
        {
            "anyOf": [
                # server.openapi types the values level by level in the OpenAPI document.
                {"type": "object", "additionalProperties": True, "maxDepth": MAX_METADATA_DEPTH},
                {"type": "null"},
            ],
            "description": f"Any JSON object, nested at most {MAX_METADATA_DEPTH} levels deep (the object is level 1;"
            " every object or array inside it one more).",
        }
    ),
]
"""Free JSON object with storable numbers; the object is level 1, every nested object or array one more, at most 8."""


def _check_utc_range(value: datetime) -> datetime:
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range once converted to UTC") from None
    return value


def _text_only(value: Any) -> Any:
    # Pydantic would read a number as seconds since 1970: JSON carries dates as text, and the document says so.
    if isinstance(value, int | float):
        raise ValueError("must be a date or date-time string, such as 2026-01-31T12:00:00Z")
    return value


UtcDatetime = Annotated[datetime, BeforeValidator(_text_only), AfterValidator(_check_utc_range)]
"""A date-time given as text, whose UTC instant lies in years 1-9999 (naive values are taken as UTC), so it can be
written back."""


class InputModel(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class PatchModel(InputModel):
    """A partial update: fields left out stay as they are; ``null`` only where a field may be empty."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """The schema says what the validator below does: ``null`` only for the ``nullable`` fields."""
        schema = handler.resolve_ref_schema(super().__get_pydantic_json_schema__(core_schema, handler))
        for name, field in schema.get("properties", {}).items():
            if name in cls.nullable or "anyOf" not in field:
                continue
            branches = [branch for branch in field.pop("anyOf") if branch != {"type": "null"}]
            field.pop("default", None)
            if len(branches) == 1:
                field.update(branches[0])
            else:
                field["anyOf"] = branches
        return schema

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
