"""Loading a JSON dataset at start-up (``MEMDB_SEED_FILE``).

The file is ``{"users": [...], "orders": [...]}``. Every record is validated
with the API's own rules (plus the ids, timestamps and password hashes a
dataset carries). The file is streamed: records are read one at a time and
validated and inserted a chunk at a time, so a million records load without
the file, or a million models, ever being in memory at once. All or nothing:
any bad record stops start-up with a :class:`SeedError` naming it, after the
rows already loaded are rolled back. Rows are inserted in file order; a file
in creation order (as ``bench/make_dataset.py`` writes) keeps the store's
insertion-order shortcuts, any other order still sorts correctly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, TypeAdapter, ValidationError, model_validator

from server.dataset import DatasetError, Irregular, Record, document_records, stream_records
from server.models.common import UtcDatetime
from server.models.order import OrderCreate
from server.models.user import UserCreate
from server.security.passwords import hash_password
from server.tables import ORDERS, USERS
from store import BatchRejected, StoreClient

CHUNK = 2_000
"""Records validated and inserted per store command: the actor is held a few milliseconds at a time."""

_BCRYPT_HASH = re.compile(r"\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}")


LOCKED_PASSWORD_HASH = "!"  # noqa: S105 - deliberately not a hash, so no password matches
"""Stored for a user imported with neither password nor hash: no password matches it until one is set."""


class SeedError(Exception):
    """The dataset cannot be loaded; the message names the file and the record."""


def _check_hash(value: str) -> str:
    # A locked account's marker comes back in exports with hashes, so it must import again.
    if value != LOCKED_PASSWORD_HASH and not _BCRYPT_HASH.fullmatch(value):
        raise ValueError("is not a bcrypt hash")
    return value


class _Stamped(BaseModel):
    id: UUID
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


class UserRecord(_Stamped, UserCreate):
    """A user in a dataset: a password, an existing bcrypt hash, or neither (the account starts locked)."""

    password: str | None = None  # type: ignore[assignment]
    password_hash: Annotated[str, AfterValidator(_check_hash)] | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> UserRecord:
        if self.password is not None and self.password_hash is not None:
            raise ValueError("give at most one of password and password_hash")
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


_ADAPTERS: dict[str, tuple[str, TypeAdapter[list[Any]]]] = {
    "users": (USERS.name, TypeAdapter(list[UserRecord])),
    "orders": (ORDERS.name, TypeAdapter(list[OrderRecord])),
}
"""Each section's table and its records' validator; a whole chunk is validated (and dumped) in one call."""
_SECRETS = {"__all__": {"password"}}


async def load_seed(path: Path, store: StoreClient, bcrypt_rounds: int, chunk: int = CHUNK) -> dict[str, int]:
    """Load the dataset at ``path`` into ``store``; raise :class:`SeedError` if anything is wrong.

    Records are read one at a time (:mod:`server.dataset`), validated and
    inserted ``chunk`` at a time, so memory holds one chunk, never the file.
    All or nothing: if any record fails, every row loaded so far is rolled
    back before the error is raised.
    """
    mark = await store.checkpoint()
    try:
        try:
            return await _load(path, stream_records(path), store, bcrypt_rounds, chunk)
        except Irregular:
            # Valid JSON the streaming reader does not take (say, orders before users): read it whole.
            await store.rollback(mark)
            return await _load(path, document_records(path), store, bcrypt_rounds, chunk)
    except BaseException:
        await store.rollback(mark)
        raise


async def _load(
    path: Path, records: Iterator[Record], store: StoreClient, bcrypt_rounds: int, chunk: int
) -> dict[str, int]:
    loaded = dict.fromkeys(_ADAPTERS, 0)
    batch: list[Record] = []
    try:
        for record in records:
            if batch and (len(batch) >= chunk or record[0] != batch[0][0]):
                loaded[batch[0][0]] += await _insert(path, batch, store, bcrypt_rounds)
                batch = []
            batch.append(record)
        if batch:
            loaded[batch[0][0]] += await _insert(path, batch, store, bcrypt_rounds)
    except OSError as error:
        raise SeedError(f"{path}: cannot read: {error.strerror}") from None
    except DatasetError as error:
        raise SeedError(f"{path}: {error}") from None
    return {_ADAPTERS[section][0]: count for section, count in loaded.items()}


async def _insert(path: Path, batch: list[Record], store: StoreClient, bcrypt_rounds: int) -> int:
    """Validate one chunk of records of one section and load it in one store command."""
    section = batch[0][0]
    table, adapter = _ADAPTERS[section]
    try:
        records = adapter.validate_python([raw for _, _, raw in batch])
    except ValidationError as error:
        first = error.errors()[0]
        position, *where = first["loc"]
        _, index, raw = batch[int(position)]
        field = ".".join(str(part) for part in where) or "record"
        raise SeedError(f"{path}: {_describe(section, index, raw)}: {field}: {first['msg']}") from None
    rows: list[dict[str, Any]] = adapter.dump_python(records, exclude=_SECRETS)
    for record, values in zip(records, rows, strict=True):
        if isinstance(record, UserRecord):
            if record.password is not None:
                values["password_hash"] = await hash_password(record.password, bcrypt_rounds)
            elif record.password_hash is None:
                values["password_hash"] = LOCKED_PASSWORD_HASH
    try:
        loaded = await store.load([(table, rows)])
    except BatchRejected as error:
        _, index, raw = batch[error.index]
        raise SeedError(f"{path}: {_describe(section, index, raw)}: {error.cause.message}") from None
    return loaded.get(table, 0)
