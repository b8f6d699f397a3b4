"""One auto-pipelined connection to Redis: every command issued in one event-loop turn leaves in one write.

redis-py checks a connection out of its pool for each call, probes it, sends
the command in its own system call and waits for that one reply: about 80 µs
of client CPU for the smallest command here, most of a point read's cost. A
:class:`Link` instead keeps one connection and a queue of the replies it is
waiting for. Commands issued during one turn of the event loop (by any number
of concurrent requests) are packed by hiredis and written together at the
start of the next turn; replies, which Redis sends in the order the commands
came, are parsed by hiredis as they arrive and handed back in that order — as
ioredis's auto-pipelining does. Each command, and so each ``EVALSHA``, stays
atomic on its own: pipelining only shares the round trip.

A lost connection fails every command waiting on it with :class:`LinkLost`
at once (the event loop watches the socket, so a closed or reset connection is
noticed as it happens, not at the next use); the next command opens a new
connection. A link given a reply deadline also fails a command whose reply
does not come in time with :class:`LinkLost` (a Redis that is stopped or
stuck keeps its connection open and answers nothing); the reply, if it comes
later, is read and dropped, so the replies after it still reach their callers.
Redis's error replies are raised as :class:`hiredis.ReplyError`.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import hiredis
from redis.asyncio import ConnectionPool
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection

Argument = str | bytes | int | float

CONNECT_SECONDS = 10.0
"""How long opening a connection may take before the store is reported unreachable (generous: a busy event
loop delays the handshake too, and a refused connection fails at once anyway)."""

REPLY_SECONDS = 10.0
"""How long a request's small call may wait for its reply before Redis is reported unreachable (a point read
takes microseconds in Redis; ten seconds is a Redis that is stopped, stuck, or swapping)."""


class LinkLost(ConnectionError):
    """The connection to Redis could not be opened, or was lost with this command's reply outstanding."""


@dataclass(frozen=True)
class Address:
    """Where a Redis server is and how to sign in to it."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None
    """A Unix socket instead of ``host:port``."""
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: ssl.SSLContext | None = None
    connect_seconds: float = 10.0

    @classmethod
    def of_pool(cls, pool: ConnectionPool, connect_seconds: float) -> Address:
        """The address redis-py's ``pool`` connects to (its URL parsing and TLS options, reused)."""
        connection = pool.make_connection()  # type: ignore[no-untyped-call]
        tls = connection.ssl_context.get() if isinstance(connection, SSLConnection) else None
        path = connection.path if isinstance(connection, UnixDomainSocketConnection) else None
        return cls(
            host=getattr(connection, "host", "127.0.0.1"),
            port=int(getattr(connection, "port", 6379)),
            path=path,
            db=int(connection.db),
            username=connection.username,
            password=connection.password,
            tls=tls,
            connect_seconds=connect_seconds,
        )

    async def open(self, protocol: asyncio.Protocol) -> asyncio.Transport:
        """A connection to this address driven by ``protocol``, not yet signed in."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_seconds):
            if self.path is not None:
                transport, _ = await loop.create_unix_connection(lambda: protocol, self.path)
            else:
                server_hostname = self.host if self.tls is not None else None
                transport, _ = await loop.create_connection(
                    lambda: protocol, self.host, self.port, ssl=self.tls, server_hostname=server_hostname
                )
        return transport

    def handshake(self) -> list[tuple[Argument, ...]]:
        """The commands that sign a new connection in and pick the database."""
        commands: list[tuple[Argument, ...]] = []
        if self.password is not None:
            credentials = (self.password,) if self.username is None else (self.username, self.password)
            commands.append(("AUTH", *credentials))
        if self.db:
            commands.append(("SELECT", self.db))
        return commands


class Replies(asyncio.Protocol):
    """The wire side of a :class:`Link`: commands out in batches, replies back in order."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._reader = hiredis.Reader()
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._outgoing: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self.open = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def send(self, command: Sequence[Argument]) -> asyncio.Future[Any]:
        """Queue ``command``; its reply (or error) arrives on the future this returns."""
        if not self.open:
            raise LinkLost("the connection to Redis was lost")
        future = self._loop.create_future()
        self._waiting.append(future)
        if not self._outgoing:
            self._loop.call_soon(self._flush)
        self._outgoing.append(hiredis.pack_command(tuple(command)))  # type: ignore[arg-type]  # its stub: a 1-tuple
        return future

    def _flush(self) -> None:
        if self.open and self._transport is not None:
            self._transport.write(b"".join(self._outgoing))
        self._outgoing.clear()

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            while (reply := self._reader.gets()) is not False:
                future = self._waiting.popleft()
                if future.done():  # its caller was cancelled; the reply is still owed, and consumed here
                    continue
                if isinstance(reply, hiredis.ReplyError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except (hiredis.ProtocolError, IndexError):  # not Redis, or a reply nobody asked for
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        waiting, self._waiting = self._waiting, deque()
        for future in waiting:
            if not future.done():
                future.set_exception(LinkLost("the connection to Redis was lost"))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self.connection_lost(None)


class Link:
    """Commands to one Redis over one auto-pipelined connection, opened on first use and again after a loss."""

    def __init__(self, address: Address, reply_seconds: float | None = None) -> None:
        self.address = address
        self.reply_seconds = reply_seconds
        """How long a command waits for its reply before it fails with :class:`LinkLost` (``None``: as long as
        the connection stays open; for long scripts such as an export of every row)."""
        self._replies: Replies | None = None
        self._opening: asyncio.Task[Replies] | None = None

    async def call(self, *command: Argument) -> Any:
        """Redis's reply to ``command``; :class:`LinkLost` if Redis cannot be reached."""
        replies = self._replies
        if replies is None or not replies.open:
            replies = await self._connect()
        if self.reply_seconds is None:
            return await replies.send(command)
        try:
            async with asyncio.timeout(self.reply_seconds):
                return await replies.send(command)
        except TimeoutError:
            raise LinkLost(f"Redis did not answer within {self.reply_seconds:g} s") from None

    async def _connect(self) -> Replies:
        """The connection being opened, shared by every caller meanwhile: they all learn its outcome at once
        (a Redis that does not answer costs them one connect timeout together, not one each in turn)."""
        if self._opening is None or self._opening.done():
            self._opening = asyncio.get_running_loop().create_task(self._open(), name="memdb-redis-connect")
            self._opening.add_done_callback(_retrieved)
        return await asyncio.shield(self._opening)

    async def _open(self) -> Replies:
        replies = Replies()
        try:
            async with asyncio.timeout(self.address.connect_seconds):  # signing in too: a server may never answer
                await self.address.open(replies)
                await asyncio.gather(*(replies.send(command) for command in self.address.handshake()))
        except (OSError, TimeoutError, hiredis.ReplyError) as error:
            replies.close()
            raise LinkLost(f"cannot connect to Redis: {error}") from None
        self._replies = replies
        return replies

    async def close(self) -> None:
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
        if self._replies is not None:
            self._replies.close()
            self._replies = None


def _retrieved(task: asyncio.Task[Any]) -> None:
    """Mark a connection attempt's failure as seen even if every caller waiting on it was cancelled."""
    if not task.cancelled():
        task.exception()


class Script:
    """A Lua script called by its SHA1, loaded into Redis the first time Redis does not know it."""

    def __init__(self, source: str | bytes) -> None:
        self.source = source.encode() if isinstance(source, str) else source
        self.sha = hashlib.sha1(self.source, usedforsecurity=False).hexdigest()

    async def __call__(self, link: Link, *arguments: Argument, keys: Sequence[str] = ()) -> Any:
        try:
            return await link.call("EVALSHA", self.sha, len(keys), *keys, *arguments)
        except hiredis.ReplyError as error:
            if not unknown_script(error):
                raise
        await link.call("SCRIPT", "LOAD", self.source)
        return await link.call("EVALSHA", self.sha, len(keys), *keys, *arguments)


def unknown_script(error: BaseException) -> bool:
    """Whether ``error`` is Redis saying it does not know a script's SHA (restarted, or its scripts flushed)."""
    return isinstance(error, hiredis.ReplyError) and str(error).startswith("NOSCRIPT")
