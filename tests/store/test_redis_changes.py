"""The change feed: a node hears of every other node's change to the tables it caches, or knows it may not have.

On a real ``redis-server``: a row changed or removed by another node reaches
``on_change`` (new rows do not); while a message waits unread on the feed's
socket the feed is not current, so a cache is never trusted past a change on
its way in; when Redis goes away the feed stops being current at once, and
once Redis is back it subscribes again by itself and reports a change (what
was published meanwhile was missed).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis
from redis.asyncio import Redis

from store.redis.changes import STALE_SECONDS, ChangeFeed
from store.redis.client import RedisStore
from tests.store.conftest import SPECS, uid
from tests.store.test_backends import child, parent
from tests.utils.redis_server import RedisServer, running_redis

BOUND = 10.0
"""Seconds a feed gets to subscribe or to notice a loss: generous, for a loaded machine."""


class Changes:
    """Counts ``on_change`` calls and lets a test wait for the next one."""

    def __init__(self) -> None:
        self.count = 0
        self.event = asyncio.Event()

    def __call__(self) -> None:
        self.count += 1
        self.event.set()

    async def next(self) -> None:
        async with asyncio.timeout(BOUND):
            await self.event.wait()
        self.event.clear()


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(BOUND):
        while not condition():  # noqa: ASYNC110 - the feed's state has no event to wait on: polled, within a bound
            await asyncio.sleep(0.01)


def node(url: str) -> RedisStore:
    return RedisStore(Redis.from_url(url), SPECS)


@pytest.fixture
async def nodes(redis_server: RedisServer) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    first, second = node(redis_server.url), node(redis_server.url)
    await first.redis.flushdb()
    yield first, second
    await first.close()
    await second.close()


async def subscribed(store: RedisStore, changes: Changes) -> ChangeFeed:
    feed = store.change_feed(("parent",), changes)
    feed.start()
    await changes.next()  # reported once subscribed: nothing before it was heard
    await until(feed.current)  # (a ping's answer may still wait on the socket for a moment)
    return feed


async def test_another_nodes_update_and_delete_reach_the_feed_but_new_rows_do_not(
    nodes: tuple[RedisStore, RedisStore],
) -> None:
    mine, other = nodes
    changes = Changes()
    feed = await subscribed(mine, changes)
    try:
        await other.insert("parent", parent(1))
        await other.insert("child", child(2, 1))
        await other.update("parent", uid(1), {"name": "renamed"})
        await changes.next()
        assert changes.count == 2  # the subscription, then the update: the inserts changed no existing row
        await other.delete("parent", uid(1), cascade=True)
        await changes.next()
        assert changes.count == 3
    finally:
        await feed.close()


async def test_a_change_waiting_unread_on_the_socket_makes_the_feed_not_current(
    nodes: tuple[RedisStore, RedisStore], redis_server: RedisServer
) -> None:
    mine, _ = nodes
    changes = Changes()
    feed = await subscribed(mine, changes)
    try:
        with redis.Redis(port=redis_server.port) as publisher:
            publisher.publish("memdb:changed:parent", "")  # as a script on another node does
        # The event loop does not run here: only the bytes waiting on the socket can tell (well before the
        # feed would count as silent for too long).
        deadline = time.monotonic() + STALE_SECONDS / 3
        while feed.current() and time.monotonic() < deadline:
            pass
        assert not feed.current()
        assert changes.count == 1
        await changes.next()  # the loop reads the message
        await until(feed.current)
    finally:
        await feed.close()


async def test_the_feed_stops_being_current_when_redis_goes_and_resubscribes_when_it_is_back() -> None:
    with running_redis() as server:
        store = node(server.url)
        changes = Changes()
        feed = await subscribed(store, changes)
        try:
            assert server.process is not None
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(timeout=10)
            await until(lambda: not feed.current())
            server.start()
            await changes.next()  # subscribed again, and told so: changes made meanwhile were missed
            await until(feed.current)
        finally:
            await feed.close()
            await store.close()


async def test_a_redis_that_stops_answering_makes_the_feed_not_current_until_it_answers_again() -> None:
    with running_redis() as server:
        store = node(server.url)
        changes = Changes()
        feed = await subscribed(store, changes)
        assert server.process is not None
        try:
            server.process.send_signal(signal.SIGSTOP)  # the connection stays open, but nothing answers
            await until(lambda: not feed.current())  # within STALE_SECONDS of the last answer
            server.process.send_signal(signal.SIGCONT)
            # Trusted again once Redis answers: on the same connection (nothing published to it was lost), or
            # on a new subscription if the feed gave the old one up first (then on_change empties the cache).
            await until(feed.current)
        finally:
            server.process.send_signal(signal.SIGCONT)
            await feed.close()
            await store.close()


async def test_a_feed_that_cannot_sign_in_is_never_current_and_one_with_the_password_is(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running_redis() as server:
        redis.Redis(port=server.port).config_set("requirepass", "sesame")
        refused = node(f"redis://:wrong@127.0.0.1:{server.port}/0")
        allowed = node(f"redis://:sesame@127.0.0.1:{server.port}/0")
        changes = Changes()
        wrong = refused.change_feed(("parent",), changes)
        wrong.start()
        wrong.start()  # once is enough: a second start changes nothing
        try:
            await until(lambda: "change feed from Redis lost" in caplog.text)
            assert not wrong.current()
            assert changes.count == 0
            feed = await subscribed(allowed, changes)
            await feed.close()
        finally:
            await wrong.close()
            await refused.close()
            await allowed.close()
