"""Who holds each session: a cache of resolved callers that the store's writes empty.

Every authenticated request needs its session and that session's user. Reading
them through the store's mailbox costs a round trip per request, most of the
work of a small read. This cache keeps the answer per session id, and the store
actor shows it every command it applies, on the actor's loop, before the writer
hears back: any command that may change an existing session or user (an update,
a delete, a purge, a load, an import's commit, a rollback, a snapshot's restore) empties it. So a
logout, a password or role change, or a deleted user takes effect on the very
next request, exactly as without the cache. New rows (a login, a sign-up) change
no one already cached and leave it alone.

A lookup that was in flight while the cache was emptied must not put back what
it read before the write: callers note :attr:`CallerCache.epoch` before they ask
the store, and :meth:`CallerCache.remember` drops the answer if a write has
emptied the cache since.

With the store on Redis, other nodes write too: then :attr:`CallerCache.check`
is set, and each lookup first asks the store (one round trip) whether any node
changed a watched table since the cache was filled, emptying it if so; a logout
on one node is refused by every other node from the moment it is acknowledged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from store import commands as c

Value = TypeVar("Value")

_READS = c.Get | c.Find | c.Children | c.Parent | c.Snapshot | c.Checkpoint | c.Counts | c.Begin
_NEW_ROWS = c.Insert | c.InsertEach | c.Stage
"""Rows no cached caller depends on: new ones, or ones not visible yet (staged)."""
_NO_ROWS = c.ListSnapshots | c.DescribeSnapshot | c.FindSnapshot | c.TakeSnapshot | c.DropSnapshot
"""Snapshot commands that change no row (a restore does: it empties the cache like any other write)."""


class CallerCache(Generic[Value]):
    """Resolved callers by session id, at most ``size`` of them.

    ``watched`` names the tables a caller is read from (sessions, and the users they
    belong to, whose deletion cascades to sessions): updates, deletes and purges
    elsewhere leave the cache alone.
    """

    def __init__(self, watched: frozenset[str], size: int = 10_000) -> None:
        self.watched = watched
        self.size = size
        self.epoch = 0
        """Moves on every time the cache is emptied."""
        self.check: Callable[[], Awaitable[None]] | None = None
        """Set when other processes write to the store too: awaited before each lookup, it empties the cache
        if any of them changed a watched table since (see :class:`server.shared_store.SharedStore`)."""
        self._entries: dict[Hashable, Value] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, session_id: Hashable) -> Value | None:
        return self._entries.get(session_id)

    def remember(self, session_id: Hashable, value: Value, epoch: int) -> None:
        """Keep ``value``, read from the store when :attr:`epoch` was ``epoch``, unless a write came since."""
        if epoch != self.epoch:
            return
        entries = self._entries
        if len(entries) >= self.size and session_id not in entries:
            del entries[next(iter(entries))]  # the oldest: a full cache turns over, never grows
        entries[session_id] = value

    def clear(self) -> None:
        self._entries.clear()
        self.epoch += 1

    def watch(self, command: c.Command[Any]) -> None:
        """The store actor's watcher: empty the cache if ``command`` may have changed a watched row."""
        if isinstance(command, _READS | _NEW_ROWS | _NO_ROWS):
            return
        if isinstance(command, c.Update | c.Delete | c.Purge) and command.table not in self.watched:
            return
        self.clear()
