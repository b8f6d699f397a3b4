"""The auto-pipelined connection to Redis: every caller gets its own reply, errors stay with their command.

On a real ``redis-server`` the test starts: many concurrent calls share one
connection and each gets the reply to its own command; an error reply fails
only its command; a cancelled caller does not shift anyone's reply; a script
Redis does not know is loaded and run; the password and database in the URL
are used; a lost connection fails what waits on it and the next call connects
again.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import hiredis
import pytest
import redis
from redis.asyncio import ConnectionPool, Redis

from store.redis.client import RedisStore
from store.redis.link import Address, Link, LinkLost, Script
from store.redis.reads import PING_SECONDS
from tests.store.conftest import SPECS
from tests.utils.redis_server import RedisServer, running_redis


def link_to(url: str) -> Link:
    return Link(Address.of_pool(ConnectionPool.from_url(url), connect_seconds=5))


@pytest.fixture
async def link(redis_server: RedisServer) -> AsyncIterator[Link]:
    connection = link_to(redis_server.url)
    await connection.call("FLUSHDB")
    yield connection
    await connection.close()


async def test_concurrent_callers_each_get_the_reply_to_their_own_command(link: Link) -> None:
    await asyncio.gather(*(link.call("SET", f"key:{n}", f"value:{n}") for n in range(500)))
    replies = await asyncio.gather(*(link.call("GET", f"key:{n}") for n in range(500)))
    assert replies == [f"value:{n}".encode() for n in range(500)]


async def test_an_error_reply_fails_only_its_own_command(link: Link) -> None:
    await link.call("SET", "text", "not a number")
    results = await asyncio.gather(
        link.call("INCR", "counter"), link.call("INCR", "text"), link.call("INCR", "counter"), return_exceptions=True
    )
    assert results[0] == 1
    assert results[2] == 2
    assert isinstance(results[1], hiredis.ReplyError)
    assert "not an integer" in str(results[1])


async def test_a_cancelled_caller_does_not_shift_the_replies_of_the_others(link: Link) -> None:
    await link.call("SET", "a", "1")
    await link.call("SET", "b", "2")
    first = asyncio.ensure_future(link.call("GET", "a"))
    second = asyncio.ensure_future(link.call("GET", "b"))
    await asyncio.sleep(0)  # both sent
    first.cancel()
    assert await second == b"2"
    assert await link.call("GET", "a") == b"1"


async def test_a_script_redis_does_not_know_is_loaded_and_run(link: Link) -> None:
    script = Script("return ARGV[1] .. '!'")
    await link.call("SCRIPT", "FLUSH")
    assert await script(link, "hello") == b"hello!"
    assert await script(link, "again") == b"again!"  # by its SHA now
    with pytest.raises(hiredis.ReplyError):
        await Script("return redis.call('NO_SUCH_COMMAND')")(link)


async def test_the_password_and_database_in_the_url_are_used() -> None:
    with running_redis() as server:
        redis.Redis(port=server.port).config_set("requirepass", "sesame")
        right = link_to(f"redis://:sesame@127.0.0.1:{server.port}/3")
        wrong = link_to(f"redis://:open@127.0.0.1:{server.port}/0")
        try:
            assert (await right.call("CLIENT", "INFO")).split(b" db=")[1].startswith(b"3 ")
            with pytest.raises(LinkLost):
                await wrong.call("PING")
        finally:
            await right.close()
            await wrong.close()


async def test_a_lost_connection_fails_what_waits_and_the_next_call_connects_again() -> None:
    with running_redis() as server:
        link = link_to(server.url)
        try:
            assert await link.call("PING") == b"PONG"
            waiting = asyncio.ensure_future(link.call("BLPOP", "nothing", 0))  # blocks until the server goes
            await asyncio.sleep(0.05)
            assert server.process is not None
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(timeout=10)
            with pytest.raises(LinkLost):
                await waiting
            with pytest.raises(LinkLost):
                await link.call("PING")  # nothing listens: refused at once
            server.start()
            assert await link.call("PING") == b"PONG"
        finally:
            await link.close()


async def test_a_unix_socket_url_connects_through_the_socket(tmp_path: Path) -> None:
    socket_path = tmp_path / "redis.sock"
    with running_redis("--unixsocket", str(socket_path)) as server:
        link = link_to(f"unix://{socket_path}?db=2")
        try:
            assert link.address.path == str(socket_path)
            assert await link.call("SET", "via", "socket") == b"OK"
            assert redis.Redis(port=server.port, db=2).get("via") == b"socket"
        finally:
            await link.close()


def test_a_rediss_url_gets_tls_with_the_urls_certificate_options() -> None:
    address = Address.of_pool(ConnectionPool.from_url("rediss://:pw@cache.example.com:6380/1"), connect_seconds=5)
    assert (address.host, address.port, address.db, address.password) == ("cache.example.com", 6380, 1, "pw")
    assert address.tls is not None
    assert address.tls.verify_mode == ssl.CERT_REQUIRED
    relaxed = Address.of_pool(ConnectionPool.from_url("rediss://cache.example.com/0?ssl_cert_reqs=none"), 5)
    assert relaxed.tls is not None
    assert relaxed.tls.verify_mode == ssl.CERT_NONE


async def test_a_server_that_does_not_speak_redis_is_reported_lost_not_misread() -> None:
    async def not_redis(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_redis, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = link_to(f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises(LinkLost):
            await link.call("PING")
    finally:
        await link.close()
        server.close()
        await server.wait_closed()


async def test_callers_waiting_on_a_redis_that_never_answers_share_one_connection_attempt() -> None:
    accepted = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await reader.read()  # never answers the sign-in

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = Link(Address(port=port, password="sesame", connect_seconds=0.5))
    try:
        started = time.monotonic()
        results = await asyncio.gather(*(link.call("PING") for _ in range(20)), return_exceptions=True)
        assert all(isinstance(result, LinkLost) for result in results)
        assert len(accepted) == 1
        assert time.monotonic() - started < 5  # one timeout for all of them, not 20 in turn (10 s)
    finally:
        await link.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_reply_that_does_not_come_in_time_fails_its_command_and_later_replies_stay_in_order() -> None:
    with running_redis() as server:
        link = Link(Address.of_pool(ConnectionPool.from_url(server.url), connect_seconds=5), reply_seconds=0.5)
        assert server.process is not None
        try:
            assert await link.call("PING") == b"PONG"
            server.process.send_signal(signal.SIGSTOP)  # the connection stays open, but nothing answers
            started = time.monotonic()
            with pytest.raises(LinkLost, match="did not answer"):
                await link.call("ECHO", "late")
            assert time.monotonic() - started < 5
            server.process.send_signal(signal.SIGCONT)
            assert await link.call("ECHO", "mine") == b"mine"  # not the reply owed to the command that gave up
        finally:
            server.process.send_signal(signal.SIGCONT)
            await link.close()


async def test_a_store_on_a_stopped_redis_is_not_ready_within_the_ping_deadline() -> None:
    with running_redis() as server:
        store = RedisStore(Redis.from_url(server.url), SPECS)
        assert server.process is not None
        try:
            assert await store.ping()
            server.process.send_signal(signal.SIGSTOP)
            started = time.monotonic()
            assert not await store.ping()
            assert time.monotonic() - started < PING_SECONDS + 3
            server.process.send_signal(signal.SIGCONT)
            assert await store.ping()
        finally:
            server.process.send_signal(signal.SIGCONT)
            await store.close()
