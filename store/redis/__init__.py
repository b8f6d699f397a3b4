"""The store on Redis: many memdb nodes sharing one dataset, behind the same client API as the embedded actor.

:func:`connect` gives a :class:`RedisStore` for a ``redis://`` or ``rediss://``
URL. Layout of the keys: :mod:`store.redis.layout`; the atomic write scripts:
:mod:`store.redis.scripts`; reads: :mod:`store.redis.reads`; writes:
:mod:`store.redis.client`; the auto-pipelined connections they use:
:mod:`store.redis.link`; the subscription that tells a node of other nodes'
changes: :mod:`store.redis.changes`.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import ConnectionPool, Redis

from store.redis.client import RedisStore
from store.redis.link import CONNECT_SECONDS
from store.schema import TableSpec

__all__ = ["CONNECT_SECONDS", "RedisStore", "connect"]


def connect(url: str, specs: Iterable[TableSpec], prefix: str = "memdb:") -> RedisStore:
    """A store on the Redis at ``url`` (connections are opened on first use, and again after a loss)."""
    pool = ConnectionPool.from_url(url, health_check_interval=5, socket_connect_timeout=CONNECT_SECONDS)
    return RedisStore(Redis.from_pool(pool), specs, prefix)
