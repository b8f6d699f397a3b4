"""The order resource: the stored row and its create, update and public shapes."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar
from uuid import UUID, uuid4

from pydantic import BaseModel
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
MAX_QUANTITY = 2**63 - 1
"""A signed 64-bit integer: larger whole numbers cannot be written back as JSON."""
Quantity = Annotated[int, PydanticField(gt=0, le=MAX_QUANTITY)]
Money = Annotated[Decimal, PydanticField(gt=0, decimal_places=2, max_digits=14)]


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


class OrderCreate(InputModel):
    user_id: UUID
    product_name: ProductName
    quantity: Quantity
    total_price: Money
    status: OrderStatus = OrderStatus.pending
    shipping_address: ShippingAddress | None = None
    metadata: Metadata = None
    order_date: UtcDatetime | None = None


class OrderUpdate(PatchModel):
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
