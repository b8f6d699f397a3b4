"""Validating a batch of records with the API's own models, ready for the store.

A batch of one section is validated in one call of its list adapter (the
dataset models of :mod:`server.models.dataset`: the API's rules plus ids,
timestamps and password hashes) and dumped to store values. A user with a
plain ``password`` has it hashed just before the batch goes in
(:func:`hash_passwords`, in worker threads); one with neither password nor
hash is stored locked. A bad record either stops everything
(:class:`~server.ingest.records.RecordError` for the first one) or, when the
caller collects them, is left out with its reason.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pydantic import TypeAdapter, ValidationError

from server.ingest.records import Record, RecordError, describe
from server.models.dataset import LOCKED_PASSWORD_HASH, OrderRecord, UserRecord
from server.security.passwords import hash_password
from server.validation import plain

ADAPTERS: dict[str, TypeAdapter[list[Any]]] = {
    "users": TypeAdapter(list[UserRecord]),
    "orders": TypeAdapter(list[OrderRecord]),
}
_SECRETS = {"__all__": {"password"}}


class Prepared(NamedTuple):
    """One batch, validated and dumped: what goes to the store once the passwords are hashed."""

    section: str
    rows: list[Any]
    """Store values: dicts, in the store's encoding once a seed worker has encoded them (a hash needs none)."""
    passwords: list[tuple[int, str]]
    """``(position in rows, password)`` of the users whose password is still to be hashed."""
    indexes: list[int]
    ids: list[Any]
    """Each row's record number in its section and ``id`` as given, to name a row the store refuses."""

    def name(self, position: int) -> str:
        return describe(self.section, self.indexes[position], {"id": self.ids[position]})


def problem(location: tuple[Any, ...], message: str) -> str:
    """A validation problem in plain words: ``quantity: must be greater than or equal to 1``."""
    return f"{'.'.join(str(part) for part in location) or 'record'}: {message}"


def prepare(batch: list[Record], rejected: list[RecordError] | None = None) -> Prepared:
    """Validate and dump ``batch`` (one section).

    A bad record raises :class:`RecordError` for the first one, or, given a
    ``rejected`` list, is added to it and left out.
    """
    section = batch[0].section
    adapter = ADAPTERS[section]
    try:
        models = adapter.validate_python([record.data for record in batch])
    except ValidationError as error:
        bad: dict[int, str] = {}
        for found in error.errors():
            position, *where = found["loc"]
            bad.setdefault(int(position), problem(tuple(where), plain(found)))
        if rejected is None:
            first = min(bad)
            raise RecordError.of(batch[first], bad[first]) from None
        rejected.extend(RecordError.of(batch[position], bad[position]) for position in sorted(bad))
        batch = [record for position, record in enumerate(batch) if position not in bad]
        models = adapter.validate_python([record.data for record in batch])
    rows: list[dict[str, Any]] = adapter.dump_python(models, exclude=_SECRETS)
    passwords: list[tuple[int, str]] = []
    for position, (model, values) in enumerate(zip(models, rows, strict=True)):
        if isinstance(model, UserRecord):
            if model.password is not None:
                passwords.append((position, model.password))
                del values["password_hash"]  # hashed just before the batch is stored
            elif model.password_hash is None:
                values["password_hash"] = LOCKED_PASSWORD_HASH
    ids = [record.data.get("id") for record in batch]
    return Prepared(section, rows, passwords, [record.number for record in batch], ids)


async def hash_passwords(prepared: Prepared, rounds: int) -> None:
    """Hash the batch's plain passwords (in worker threads) into its rows."""
    for position, password in prepared.passwords:
        prepared.rows[position]["password_hash"] = await hash_password(password, rounds)
