"""The order resource: the stored row and its create, update and public shapes."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, JsonValue, WithJsonSchema
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from server.models.common import InputModel, Metadata, PatchModel, UtcDatetime, utc_now
from server.models.user import UserPublic


class OrderStatus(enum.StrEnum):
    pending = "pending"
    paid = "paid"
    shipped = "shipped"
    delivered = "delivered"
    cancelled = "cancelled"


class ShippingAddress(InputModel):
    line1: Annotated[str, PydanticField(min_length=1, max_length=200)]
    city: Annotated[str, PydanticField(min_length=1, max_length=100)]
    postal_code: Annotated[str, PydanticField(min_length=1, max_length=20)]
    country: Annotated[str, PydanticField(min_length=2, max_length=56)]


ProductName = Annotated[str, PydanticField(min_length=1, max_length=200)]
MAX_QUANTITY = 2**53 - 1
"""The largest whole number every JSON reader (JavaScript's too) holds exactly, and an OpenAPI bound can state."""
Quantity = Annotated[int, PydanticField(ge=1, le=MAX_QUANTITY)]
MONEY_PATTERN = r"^([1-9][0-9]{0,11}(\.[0-9]{1,2})?|0\.(0[1-9]|[1-9][0-9]?))$"
Money = Annotated[
    Decimal,
    PydanticField(gt=0, decimal_places=2, max_digits=14),
    # What the three rules above accept, as JSON Schema says it: a number or a decimal string.
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": 999999999999.99, "multipleOf": 0.01},
                {"type": "string", "pattern": MONEY_PATTERN},
            ],
            "description": 'More than 0, at most 2 decimal places and 14 digits; as a number or a string (`"19.90"`).',
        }
    ),
]


class Order(SQLModel):
    """An order as the store keeps it; the table definition is derived from this."""

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    user_id: UUID = Field(foreign_key="user.id")
    product_name: str
    quantity: int
    total_price: Decimal = Field(decimal_places=2)
    status: OrderStatus = Field(default=OrderStatus.pending, index=True)
    shipping_address: ShippingAddress | None = None
    metadata_: dict[str, Any] | None = Field(default=None, alias="metadata")
    order_date: datetime = Field(default_factory=utc_now)
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now, sa_column_kwargs={"onupdate": utc_now})


_ADDRESS_EXAMPLE: dict[str, JsonValue] = {
    "line1": "12 Rue de Rivoli",
    "city": "Paris",
    "postal_code": "75004",
    "country": "France",
}


class OrderCreate(InputModel):
    # The example's user is one of data/sample.json's, so "Try it out" works against the sample data.
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "7fcd9eb1-a7ca-4415-b66e-b16f508ebad7",
                    "product_name": "Mechanical keyboard",
                    "quantity": 1,
                    "total_price": "89.90",
                    "status": "pending",
                    "shipping_address": _ADDRESS_EXAMPLE,
                }
            ]
        }
    )

    user_id: UUID
    product_name: ProductName
    quantity: Quantity
    total_price: Money
    status: OrderStatus = OrderStatus.pending
    shipping_address: ShippingAddress | None = None
    metadata: Metadata = None
    order_date: UtcDatetime | None = None


class OrderUpdate(PatchModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "paid"}]})
    nullable: ClassVar[frozenset[str]] = frozenset({"shipping_address", "metadata"})

    user_id: UUID | None = None
    product_name: ProductName | None = None
    quantity: Quantity | None = None
    total_price: Money | None = None
    status: OrderStatus | None = None
    shipping_address: ShippingAddress | None = None
    metadata: Metadata = None
    order_date: UtcDatetime | None = None


class OrderPublic(BaseModel):
    id: UUID
    user_id: UUID
    product_name: str
    quantity: int
    total_price: Annotated[str, PydanticField(examples=["19.90"])]
    status: OrderStatus
    shipping_address: ShippingAddress | None
    metadata: dict[str, Any] | None
    order_date: datetime
    created_at: datetime
    updated_at: datetime
    user: UserPublic
