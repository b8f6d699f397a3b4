"""A subscription to the changes any node makes to some tables, so a cache of their rows needs no read to stay exact.

Every script that changes or removes rows of a table publishes on the channel
``<prefix>changed:<table>`` in the same step (:mod:`store.redis.scripts`). A
:class:`ChangeFeed` holds one connection subscribed to the channels of the
tables a cache depends on and calls ``on_change`` for every message, as the
event loop reads it. :meth:`ChangeFeed.current` says whether the cache may be
trusted without asking Redis: only while the subscription is confirmed, has
heard from Redis within :data:`STALE_SECONDS` (it pings every
:data:`HEARTBEAT_SECONDS`; a silent connection is as good as lost), and no
bytes wait unread on its socket (a message on its way in is read before the
cache is trusted). When the subscription drops it is opened again, with a
growing pause; ``on_change`` is called once it is confirmed again, because
messages published meanwhile were missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
from collections.abc import Callable, Sequence
from typing import Any

import hiredis

from store.redis.link import Address, Argument

logger = logging.getLogger("memdb.store.redis")

HEARTBEAT_SECONDS = 1.0
STALE_SECONDS = 3.0
"""Past this long without a word from Redis (a ping is answered within the heartbeat), the subscription is not
trusted: requests ask Redis themselves until it answers again or is opened anew."""
RETRY_SECONDS = (0.05, 2.0)
"""The first pause before subscribing again after a loss, and the longest (it doubles in between)."""


class _Subscription(asyncio.Protocol):
    """One subscribed connection: its confirmations, its messages and when it last heard from Redis."""

    def __init__(self, feed: ChangeFeed, answers_before: int, channels: int) -> None:
        self._feed = feed
        self._reader = hiredis.Reader()
        self._loop = asyncio.get_running_loop()
        self._answers_before = answers_before  # replies to the sign-in commands, before the subscriptions
        self._unconfirmed = channels
        self.confirmed: asyncio.Future[None] = self._loop.create_future()
        self.lost: asyncio.Future[None] = self._loop.create_future()
        self.heard = self._loop.time()
        self.transport: asyncio.Transport | None = None
        self._poll: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self._poll = select.poll()
            self._poll.register(sock.fileno(), select.POLLIN)

    def write(self, *command: Argument) -> None:
        assert self.transport is not None
        self.transport.write(hiredis.pack_command(command))  # type: ignore[arg-type]  # its stub: a 1-tuple

    def unread(self) -> bool:
        """Whether bytes wait on the socket that the event loop has not handed over yet."""
        return self._poll is None or bool(self._poll.poll(0))

    def data_received(self, data: bytes) -> None:
        self.heard = self._loop.time()
        self._reader.feed(data)
        try:
            while (reply := self._reader.gets()) is not False:
                self._take(reply)
        except (hiredis.ProtocolError, hiredis.ReplyError, IndexError, TypeError) as error:
            logger.warning("change feed: unexpected reply from Redis (%s); subscribing again", type(error).__name__)
            self.close()

    def _take(self, reply: Any) -> None:
        if isinstance(reply, hiredis.ReplyError):
            raise reply
        if self._answers_before:
            self._answers_before -= 1
            return
        kind = reply[0]
        if kind == b"message":
            self._feed.on_change()
        elif kind == b"subscribe":
            self._unconfirmed -= 1
            if self._unconfirmed == 0 and not self.confirmed.done():
                self.confirmed.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._feed.lost(self)
        if not self.confirmed.done():  # awaited from the moment the subscription is sent
            self.confirmed.set_exception(ConnectionError("lost before the subscription was confirmed"))
        if not self.lost.done():
            self.lost.set_result(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class ChangeFeed:
    """Calls ``on_change`` whenever any node changes rows of the tables whose ``channels`` it is given."""

    def __init__(self, address: Address, channels: Sequence[str], on_change: Callable[[], None]) -> None:
        self._address = address
        self._channels = tuple(channels)
        self.on_change = on_change
        self._current: _Subscription | None = None
        self._told = False  # of the current outage, in the log
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Subscribe (and keep subscribing after each loss) until :meth:`close`."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="memdb-change-feed")

    def current(self) -> bool:
        """Whether every change published until now has reached ``on_change`` (see the module docstring)."""
        subscription = self._current
        if subscription is None:
            return False
        fresh = asyncio.get_running_loop().time() - subscription.heard <= STALE_SECONDS
        return fresh and not subscription.unread()

    def lost(self, subscription: _Subscription) -> None:
        if self._current is subscription:
            self._current = None

    async def _run(self) -> None:
        pause = RETRY_SECONDS[0]
        while True:
            handshake = self._address.handshake()
            handshake = [command for command in handshake if command[0] == "AUTH"]  # channels span databases
            subscription = _Subscription(self, len(handshake), len(self._channels))
            try:
                await self._address.open(subscription)
                for command in handshake:
                    subscription.write(*command)
                subscription.write("SUBSCRIBE", *self._channels)
                async with asyncio.timeout(self._address.connect_seconds):
                    await subscription.confirmed
                self._current = subscription
                self.on_change()  # whatever was published while unsubscribed was missed
                pause, self._told = RETRY_SECONDS[0], False
                await self._heartbeat(subscription)
            except (OSError, TimeoutError, ConnectionError) as error:
                if not self._told:
                    logger.warning("change feed from Redis lost (%s); every request asks Redis meanwhile", error)
                    self._told = True
            finally:
                self.lost(subscription)
                subscription.close()
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_SECONDS[1])

    async def _heartbeat(self, subscription: _Subscription) -> None:
        loop = asyncio.get_running_loop()
        while True:
            subscription.write("PING")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HEARTBEAT_SECONDS):
                    await asyncio.shield(subscription.lost)
            if subscription.lost.done():
                raise ConnectionError("the connection was closed")
            if loop.time() - subscription.heard > STALE_SECONDS:
                raise TimeoutError("Redis has not answered the change feed's pings")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
