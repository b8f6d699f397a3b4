"""The limiter every node shares: a moving window in Redis, counted once for all limiters on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from server.security.shared_limits import SharedRateLimiter
from tests.utils.redis_server import RedisServer, running_redis
from tests.utils.server import free_port


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


async def test_two_limiters_on_one_redis_count_one_allowance(redis_server: RedisServer) -> None:
    first = SharedRateLimiter(redis_server.url, 3, "test-shared")
    second = SharedRateLimiter(redis_server.url, 3, "test-shared")
    try:
        verdicts = [await (first if n % 2 else second).check("addr:10.0.0.1") for n in range(5)]
        assert [verdict.allowed for verdict in verdicts] == [True, True, True, False, False]
        # The in-process limiter's figures: what is left, and when the newest admitted request leaves.
        assert [(verdict.remaining, verdict.reset_seconds, verdict.retry_after) for verdict in verdicts[:3]] == [
            (2, 60, 0),
            (1, 60, 0),
            (0, 60, 0),
        ]
        refused = verdicts[-1]
        assert (refused.limit, refused.remaining) == (3, 0)
        assert 1 <= refused.retry_after <= refused.reset_seconds <= 60
        assert (await first.check("addr:10.0.0.2")).allowed  # another client has its own window
    finally:
        await first.close()
        await second.close()


async def test_an_unreachable_redis_lets_requests_through_rather_than_failing_them() -> None:
    limiter = SharedRateLimiter(f"redis://127.0.0.1:{free_port()}/0", 1, "test-down")
    try:
        verdicts = [await limiter.check("addr:10.0.0.1") for _ in range(3)]
        assert all(verdict.allowed for verdict in verdicts)
    finally:
        await limiter.close()


async def test_a_redis_that_lost_its_scripts_still_counts_every_request_once(redis_server: RedisServer) -> None:
    limiter = SharedRateLimiter(redis_server.url, 2, "test-flushed")
    try:
        assert (await limiter.check("addr:10.0.0.3")).remaining == 1
        redis.Redis(port=redis_server.port).script_flush()  # as after a restart: the scripts are unknown again
        second = await limiter.check("addr:10.0.0.3")
        assert (second.allowed, second.remaining) == (True, 0)
        third = await limiter.check("addr:10.0.0.3")
        assert (third.allowed, third.remaining) == (False, 0)
        assert 1 <= third.retry_after <= 60
    finally:
        await limiter.close()
