"""memdb's storage engine: tables, indexes, queries and the actor that owns them.

Nothing here knows about HTTP or about any particular resource: tables are
described by :class:`TableSpec` values handed in at start-up.
"""

from store.actor import StoreActor
from store.client import StoreClient
from store.database import Database, Page, Snapshot
from store.errors import (
    ActorCrashed,
    BatchRejected,
    Conflict,
    CorruptLog,
    InsufficientStorage,
    InvalidQuery,
    InvalidValue,
    MissingReference,
    NotFound,
    PersistenceFailed,
    PreconditionFailed,
    StoreClosed,
    StoreError,
    StoreOverloaded,
    StoreRecovering,
    StoreUnavailable,
    Unsupported,
)
from store.query import Predicate, Query, SortKey
from store.querylang import QueryParser
from store.schema import Auto, Column, ForeignKey, Kind, TableSpec

__all__ = [
    "ActorCrashed",
    "Auto",
    "BatchRejected",
    "Column",
    "Conflict",
    "CorruptLog",
    "Database",
    "ForeignKey",
    "InsufficientStorage",
    "InvalidQuery",
    "InvalidValue",
    "Kind",
    "MissingReference",
    "NotFound",
    "Page",
    "PersistenceFailed",
    "PreconditionFailed",
    "Predicate",
    "Query",
    "QueryParser",
    "Snapshot",
    "SortKey",
    "StoreActor",
    "StoreClient",
    "StoreClosed",
    "StoreError",
    "StoreOverloaded",
    "StoreRecovering",
    "StoreUnavailable",
    "TableSpec",
    "Unsupported",
]
