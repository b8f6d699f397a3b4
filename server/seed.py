"""Loading a JSON dataset at start-up (``MEMDB_SEED_FILE``).

The file is ``{"users": [...], "orders": [...]}``. Every record is validated
with the API's own rules (plus the ids, timestamps and password hashes a
dataset carries) and the whole file goes into the store in one all-or-nothing
command. Any bad record stops start-up with a :class:`SeedError` naming it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import orjson
from pydantic import AfterValidator, BaseModel, ValidationError, model_validator

from server.models.common import UtcDatetime
from server.models.order import OrderCreate
from server.models.user import UserCreate
from server.security.passwords import hash_password
from server.tables import ORDERS, USERS
from store import BatchRejected, StoreClient
from store.codecs import datetime_to_micros

_BCRYPT_HASH = re.compile(r"\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}")


class SeedError(Exception):
    """The dataset cannot be loaded; the message names the file and the record."""


def _check_hash(value: str) -> str:
    if not _BCRYPT_HASH.fullmatch(value):
        raise ValueError("is not a bcrypt hash")
    return value


class _Stamped(BaseModel):
    id: UUID
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


class UserRecord(_Stamped, UserCreate):
    """A user in a dataset: a password or an existing bcrypt hash."""

    password: str | None = None  # type: ignore[assignment]
    password_hash: Annotated[str, AfterValidator(_check_hash)] | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> UserRecord:
        if (self.password is None) == (self.password_hash is None):
            raise ValueError("give exactly one of password and password_hash")
        if self.password is not None:
            UserCreate.model_validate(
                {**self.model_dump(include=set(UserCreate.model_fields)), "password": self.password}
            )
        return self


class OrderRecord(_Stamped, OrderCreate):
    """An order in a dataset."""


def _describe(section: str, index: int, record: Any) -> str:
    record_id = record.get("id") if isinstance(record, dict) else None
    return f"{section}[{index}]" + (f" (id {record_id})" if record_id else "")


def _validate(path: Path, section: str, records: Any, model: type[BaseModel]) -> list[BaseModel]:
    if not isinstance(records, list):
        raise SeedError(f"{path}: '{section}' must be a list of records")
    valid: list[BaseModel] = []
    for index, record in enumerate(records):
        try:
            valid.append(model.model_validate(record))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "record"
            raise SeedError(f"{path}: {_describe(section, index, record)}: {where}: {first['msg']}") from None
    return valid


def _in_creation_order(records: Sequence[BaseModel]) -> list[int]:
    """Record positions ordered by ``created_at`` (undated last), so insertion order is creation order."""

    def created(index: int) -> tuple[bool, int]:
        stamp = getattr(records[index], "created_at", None)
        return (True, 0) if stamp is None else (False, datetime_to_micros(stamp))

    return sorted(range(len(records)), key=created)


async def load_seed(path: Path, store: StoreClient, bcrypt_rounds: int) -> dict[str, int]:
    """Load the dataset at ``path`` into ``store``; raise :class:`SeedError` if anything is wrong."""
    try:
        document = orjson.loads(await asyncio.to_thread(path.read_bytes))
    except OSError as error:
        raise SeedError(f"{path}: cannot read: {error.strerror}") from None
    except orjson.JSONDecodeError as error:
        raise SeedError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(document, dict) or set(document) - {"users", "orders"}:
        raise SeedError(f"{path}: expected an object with 'users' and 'orders' lists")
    users = _validate(path, "users", document.get("users", []), UserRecord)
    orders = _validate(path, "orders", document.get("orders", []), OrderRecord)
    sections: list[tuple[str, str, list[BaseModel], list[int]]] = [
        ("users", USERS.name, users, _in_creation_order(users)),
        ("orders", ORDERS.name, orders, _in_creation_order(orders)),
    ]
    batches: list[tuple[str, list[dict[str, Any]]]] = []
    for _, table, records, order in sections:
        rows = []
        for index in order:
            record = records[index]
            values = record.model_dump(exclude={"password"})
            if isinstance(record, UserRecord) and record.password is not None:
                values["password_hash"] = await hash_password(record.password, bcrypt_rounds)
            rows.append(values)
        batches.append((table, rows))
    try:
        return await store.load(batches)
    except BatchRejected as error:
        section, _, records, order = next(s for s in sections if s[1] == error.table)
        original = order[error.index]
        raw = document[section][original]
        raise SeedError(f"{path}: {_describe(section, original, raw)}: {error.cause.message}") from None
