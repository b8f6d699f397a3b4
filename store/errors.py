"""The store's error vocabulary: every failure a command can report, as data.

Each error carries the facts a caller needs (table, id, field) rather than a
pre-rendered message, so the HTTP layer can map it to a status and envelope in
one place. All of them derive from :class:`StoreError`.
"""

from __future__ import annotations

from typing import Any


class StoreError(Exception):
    """Root of everything the store raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(StoreError):
    """No row with this primary key in this table."""

    def __init__(self, table: str, key: Any) -> None:
        super().__init__(f"{table} {key} not found")
        self.table = table
        self.key = key


class Conflict(StoreError):
    """The write would break a uniqueness rule or orphan dependent rows."""

    def __init__(self, table: str, field: str | None, message: str) -> None:
        super().__init__(message)
        self.table = table
        self.field = field


class RestoreOutdated(Conflict):
    """A restore's prepared patch no longer fits the table: it was written to meanwhile (the client prepares again)."""

    def __init__(self, table: str) -> None:
        super().__init__(table, None, f"{table} changed while the restore was prepared; try again")


class MissingReference(StoreError):
    """A foreign key names a row that does not exist."""

    def __init__(self, table: str, field: str, target: str, key: Any) -> None:
        super().__init__(f"{field} {key} names no {target}")
        self.table = table
        self.field = field
        self.target = target
        self.key = key


class PreconditionFailed(StoreError):
    """An ``If-Match`` style version check did not match the current row."""

    def __init__(self, table: str, key: Any) -> None:
        super().__init__(f"{table} {key} has changed since the given version")
        self.table = table
        self.key = key


class InvalidQuery(StoreError):
    """A query parameter names an unknown field or operator, or cannot be parsed."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.reason = message


class InvalidValue(StoreError):
    """A value handed to the store does not fit its column."""

    def __init__(self, table: str, field: str, message: str) -> None:
        super().__init__(f"{table}.{field}: {message}")
        self.table = table
        self.field = field
        self.reason = message


class InsufficientStorage(StoreError):
    """The memory limit is reached: commands that add data are refused."""

    def __init__(self) -> None:
        super().__init__("memory limit reached; writes that add data are refused")


class PersistenceFailed(InsufficientStorage):
    """The data directory refused a write (disk full, read-only, I/O error): the command was not applied."""

    def __init__(self, reason: str) -> None:
        StoreError.__init__(self, f"{reason}; the write was not applied (reads still work)")
        self.reason = reason


class CorruptLog(StoreError):
    """The data directory holds damage recovery will not cut off by itself (the message names file and offset)."""


class StoreOverloaded(StoreError):
    """The mailbox stayed full for longer than the caller was willing to wait."""

    def __init__(self, waited: float) -> None:
        super().__init__(f"store mailbox full for {waited:.2f}s")
        self.waited = waited


class ActorCrashed(StoreError):
    """The actor's loop died while applying this command; it is being restarted."""

    def __init__(self, command: str) -> None:
        super().__init__(f"the store stopped while applying {command}; it is restarting")
        self.command = command


class StoreClosed(StoreError):
    """The store is shut down (or restarting) and takes no more commands."""

    def __init__(self) -> None:
        super().__init__("store is closed")


class StoreRecovering(StoreClosed):
    """The store is still loading its data directory at start-up; it takes no requests yet."""

    def __init__(self) -> None:
        StoreError.__init__(self, "the store is recovering its data; retry shortly")


class StoreUnavailable(StoreError):
    """The store's server (Redis) cannot be reached; the client reconnects by itself."""

    def __init__(self, reason: str = "the store's server cannot be reached") -> None:
        super().__init__(reason)


class Unsupported(StoreError):
    """The operation exists on another store backend but not on this one."""

    def __init__(self, backend: str) -> None:
        super().__init__(f"this operation is not available with the store on {backend}")
        self.backend = backend


class BatchRejected(StoreError):
    """One record of a multi-row load was refused; nothing of the load was applied."""

    def __init__(self, table: str, index: int, cause: StoreError) -> None:
        super().__init__(f"{table}[{index}]: {cause.message}")
        self.table = table
        self.index = index
        self.cause = cause
