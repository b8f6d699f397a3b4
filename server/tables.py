"""Derive the store's table definitions from the SQLModel row models.

Keys, unique fields, indexes and relations are declared once, on the models
(``primary_key``, ``unique``, ``index``, ``foreign_key``, ``exclude``,
``sa_column_kwargs={"onupdate": ...}``); this module reads them and hands the
store plain :class:`store.TableSpec` values, so the store never sees a model.
"""

from __future__ import annotations

import enum
import types
import typing
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, EmailStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from sqlmodel import SQLModel

from server.models.order import Order
from server.models.session import Session
from server.models.user import User
from store import Auto, Column, ForeignKey, Kind, QueryParser, TableSpec

_SIMPLE_KINDS: dict[Any, Kind] = {
    UUID: Kind.UUID,
    str: Kind.STR,
    bool: Kind.BOOL,
    int: Kind.INT,
    Decimal: Kind.DECIMAL,
    datetime: Kind.DATETIME,
}


def _attribute(field: FieldInfo, name: str) -> Any:
    value = getattr(field, name, PydanticUndefined)
    return None if value is PydanticUndefined else value


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0], len(members) < len(typing.get_args(annotation))
    return annotation, False


def _kind(annotation: Any) -> tuple[Kind, tuple[str, ...]]:
    if annotation in _SIMPLE_KINDS:
        return _SIMPLE_KINDS[annotation], ()
    if annotation is EmailStr:
        return Kind.STR, ()
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return Kind.ENUM, tuple(str(member.value) for member in annotation)
    if typing.get_origin(annotation) is Literal:
        return Kind.ENUM, tuple(str(arg) for arg in typing.get_args(annotation))
    return Kind.JSON, ()


def _children(annotation: Any) -> dict[str, Kind]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {name: _kind(_unwrap_optional(f.annotation)[0])[0] for name, f in annotation.model_fields.items()}
    return {}


def _scale(field: FieldInfo) -> int:
    for constraint in field.metadata:
        places = getattr(constraint, "decimal_places", None)
        if places is not None:
            return int(places)
    return 0


def _auto(field: FieldInfo, kind: Kind) -> Auto | None:
    if kind is not Kind.DATETIME or field.default_factory is None:
        return None
    sa_kwargs = _attribute(field, "sa_column_kwargs") or {}
    return Auto.ON_WRITE if "onupdate" in sa_kwargs else Auto.ON_CREATE


def table_spec(model: type[SQLModel], name: str) -> TableSpec:
    """The :class:`TableSpec` that ``model``'s fields declare."""
    columns: list[Column] = []
    foreign_keys: list[ForeignKey] = []
    primary_key = "id"
    for attribute, field in model.model_fields.items():
        column_name = field.alias or attribute
        annotation, nullable = _unwrap_optional(field.annotation)
        kind, choices = _kind(annotation)
        if _attribute(field, "primary_key"):
            primary_key = column_name
        target = _attribute(field, "foreign_key")
        if target:
            table, _, _ = str(target).partition(".")
            cascade = str(_attribute(field, "ondelete") or "").upper() == "CASCADE"
            foreign_keys.append(ForeignKey(column_name, table, column_name.removesuffix("_id"), cascade))
        columns.append(
            Column(
                name=column_name,
                kind=kind,
                nullable=nullable,
                unique=bool(_attribute(field, "unique")),
                indexed=bool(_attribute(field, "index")),
                case_insensitive=annotation is EmailStr,
                hidden=field.exclude is True,
                scale=_scale(field) if kind is Kind.DECIMAL else 0,
                choices=choices,
                auto=_auto(field, kind),
                children=_children(annotation),
            )
        )
    return TableSpec(name, tuple(columns), primary_key, tuple(foreign_keys))


USERS = table_spec(User, "user")
ORDERS = table_spec(Order, "order")
SESSIONS = table_spec(Session, "session")
TABLES = (USERS, ORDERS, SESSIONS)

USER_QUERIES = QueryParser(USERS)
ORDER_QUERIES = QueryParser(ORDERS)
SESSION_QUERIES = QueryParser(SESSIONS)
