"""Rate limits (CONTRACT §8): allowances per client, their headers, 429s, exemptions and bounded state.

The limiter reads the running loop's clock (or one it is handed), so the ``clock``
fixture freezes that clock and moves it only when a test says: the numbers in the
headers are then exact, and windows pass without sleeping.
"""

from __future__ import annotations

import asyncio
import math
import time
import tracemalloc
import uuid

import httpx
import pytest
from fastapi import FastAPI
from limits import RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter

from server.security.limits import RateLimiter, Verdict
from server.security.tokens import TokenService
from server.security.window_storage import BoundedWindowStorage
from server.settings import Settings
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.utils.api import assert_error, create_user
from tests.utils.asgi import asgi_client, serving, sign_in
from tests.utils.data import user_body
from tests.utils.server import running_server

LIMIT = 100
LOGIN_LIMIT = 15
ORIGIN = "https://app.example.com"
ADDRESS_A = "192.0.2.10"
ADDRESS_B = "192.0.2.20"
RATE_HEADERS = ("x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset")


class Clock:
    """A frozen clock: it moves only by :meth:`advance`."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    loop = asyncio.get_running_loop()
    # A whole number a little ahead of the real clock, so advancing by binary fractions stays exact.
    frozen = Clock(float(math.ceil(loop.time()) + 1))
    monkeypatch.setattr(loop, "time", frozen)
    return frozen


@pytest.fixture
def settings(settings: Settings) -> Settings:
    update = {"rate_limit_per_minute": LIMIT, "login_rate_limit_per_minute": LOGIN_LIMIT, "cors_origins": (ORIGIN,)}
    return settings.model_copy(update=update)


def allowance(response: httpx.Response) -> tuple[int, int, int]:
    """``X-Rate-Limit-Limit``, ``-Remaining`` and ``-Reset`` of ``response``."""
    limit, remaining, reset = (int(response.headers[name]) for name in RATE_HEADERS)
    return limit, remaining, reset


def assert_unlimited(response: httpx.Response) -> None:
    assert response.status_code != 429, response.text
    assert not [name for name in response.headers if name.startswith("x-rate-limit")]


async def spend(http: httpx.AsyncClient, requests: int) -> list[httpx.Response]:
    """Make ``requests`` cheap limited requests; every one must get through."""
    answers = [await http.get("/users", params={"per_page": 1}) for _ in range(requests)]
    assert all(answer.status_code != 429 for answer in answers)
    return answers


# --- the limiter itself ------------------------------------------------------------------------


async def test_verdicts_count_down_the_allowance_then_refuse() -> None:
    clock = Clock(1000.0)
    limiter = RateLimiter(60, clock=clock)

    verdicts = []
    for _ in range(61):
        verdicts.append(await limiter.check("addr:1"))
        clock.advance(0.5)

    assert verdicts[0] == Verdict(allowed=True, limit=60, remaining=59, reset_seconds=60, retry_after=0)
    assert verdicts[29] == Verdict(allowed=True, limit=60, remaining=30, reset_seconds=60, retry_after=0)
    assert verdicts[59] == Verdict(allowed=True, limit=60, remaining=0, reset_seconds=60, retry_after=0)
    # Refused 30 s in: the first request leaves the window 30 s later; the last one 59.5 s later.
    assert verdicts[60] == Verdict(allowed=False, limit=60, remaining=0, reset_seconds=60, retry_after=30)


async def test_requests_leave_the_window_a_minute_after_they_came() -> None:
    clock = Clock(1000.0)
    limiter = RateLimiter(60, clock=clock)
    for _ in range(20):
        await limiter.check("addr:1")
    clock.advance(30)
    for _ in range(40):
        await limiter.check("addr:1")

    clock.advance(29.5)
    still_full = await limiter.check("addr:1")
    clock.advance(0.5)  # the first 20 are now a minute old
    after_the_first_twenty = await limiter.check("addr:1")
    clock.advance(30)  # and so are the other 40
    after_all_of_them = await limiter.check("addr:1")

    assert still_full == Verdict(allowed=False, limit=60, remaining=0, reset_seconds=31, retry_after=1)
    assert after_the_first_twenty == Verdict(allowed=True, limit=60, remaining=19, reset_seconds=60, retry_after=0)
    assert after_all_of_them == Verdict(allowed=True, limit=60, remaining=58, reset_seconds=60, retry_after=0)


async def test_no_sixty_second_window_ever_holds_more_than_the_limit() -> None:
    # A client asking ten times a second for three minutes: a token bucket of 100 a minute let 199 through
    # in the first minute.
    clock = Clock(1000.0)
    limiter = RateLimiter(LIMIT, clock=clock)
    admitted: list[float] = []
    for _ in range(1800):
        if (await limiter.check("addr:1")).allowed:
            admitted.append(clock.now)
        clock.advance(0.1)

    busiest = max(sum(1 for t in admitted if start <= t < start + 60) for start in admitted)
    assert busiest == LIMIT
    assert sum(1 for t in admitted if t < 1060) == LIMIT
    assert len(admitted) == 3 * LIMIT  # and the allowance does come back, a window at a time


async def test_retry_after_is_when_one_more_request_fits() -> None:
    clock = Clock(1000.0)
    limiter = RateLimiter(15, clock=clock)
    for n in range(15):  # one every 4 s: the last at 1056
        clock.now = 1000.0 + 4 * n
        assert (await limiter.check("addr:1")).allowed

    clock.now = 1058.0
    refused = await limiter.check("addr:1")
    clock.advance(1.75)
    still_refused = await limiter.check("addr:1")
    clock.advance(0.25)  # the first request is a minute old
    allowed = await limiter.check("addr:1")

    assert refused == Verdict(allowed=False, limit=15, remaining=0, reset_seconds=58, retry_after=2)
    assert still_refused == Verdict(allowed=False, limit=15, remaining=0, reset_seconds=57, retry_after=1)
    assert allowed == Verdict(allowed=True, limit=15, remaining=0, reset_seconds=60, retry_after=0)


async def test_keys_have_separate_allowances() -> None:
    limiter = RateLimiter(2, clock=Clock(1000.0))

    first = [await limiter.check("addr:1") for _ in range(3)]
    second = await limiter.check("addr:2")

    assert [verdict.allowed for verdict in first] == [True, True, False]
    assert second.allowed
    assert second.remaining == 1


@pytest.mark.parametrize(("max_clients", "bound"), [(100, 100), (None, 10_000)])
async def test_a_flood_of_new_clients_keeps_the_limiter_bounded(max_clients: int | None, bound: int) -> None:
    clock = Clock(1000.0)
    limiter = RateLimiter(15, clock=clock) if max_clients is None else RateLimiter(15, max_clients, clock=clock)

    for n in range(100_000):
        await limiter.check(f"addr:{n}")

    assert len(limiter) == bound


async def test_the_memory_of_a_flood_stops_growing_at_the_bound() -> None:
    limiter = RateLimiter(LIMIT, max_clients=1000, clock=Clock(1000.0))
    tracemalloc.start()
    try:
        for n in range(2000):
            await limiter.check(f"addr:{n}")
        after_two_thousand = tracemalloc.get_traced_memory()[0]
        for n in range(2000, 50_000):
            await limiter.check(f"addr:{n}")
        after_fifty_thousand = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()

    assert after_fifty_thousand < after_two_thousand * 1.1


async def test_the_least_recently_seen_client_is_forgotten_first() -> None:
    limiter = RateLimiter(1, max_clients=2, clock=Clock(1000.0))
    await limiter.check("addr:old")
    await limiter.check("addr:busy")
    await limiter.check("addr:old")  # refused, but seen: now "busy" is the idlest

    await limiter.check("addr:new")  # a third client: one must go

    assert len(limiter) == 2
    assert not (await limiter.check("addr:old")).allowed  # remembered, still spent
    assert (await limiter.check("addr:busy")).allowed  # forgotten, so a fresh allowance


async def test_clients_idle_for_a_whole_window_are_forgotten() -> None:
    clock = Clock(1000.0)
    limiter = RateLimiter(5, clock=clock)
    for n in range(50):
        await limiter.check(f"addr:{n}")
    clock.advance(30)
    await limiter.check("addr:recent")

    clock.advance(30)  # the first fifty are a minute old; "recent" is not
    await limiter.check("addr:new")

    assert len(limiter) == 2


async def test_the_storage_serves_limits_own_moving_window_strategy() -> None:
    # So the limiter is a genuine ``limits`` storage: its strategies (and a Redis storage in its place) agree.
    clock = Clock(1000.0)
    storage = BoundedWindowStorage(100, clock)
    strategy = MovingWindowRateLimiter(storage)
    three_a_minute = RateLimitItemPerMinute(3)

    hits = [await strategy.hit(three_a_minute, "addr:1") for _ in range(4)]
    clock.advance(20)
    stats = await strategy.get_window_stats(three_a_minute, "addr:1")
    full = await strategy.test(three_a_minute, "addr:1")
    await strategy.clear(three_a_minute, "addr:1")
    after_clearing = await strategy.test(three_a_minute, "addr:1")

    assert hits == [True, True, True, False]
    assert stats == (1060.0, 0)  # the oldest entry leaves at 1060; nothing remains
    assert not full
    assert after_clearing
    assert await storage.check()
    assert await storage.reset() == 0
    assert storage.entries("addr:never-seen") == (0, None, None, 1000.0)  # as of the last acquisition
    assert storage.base_exceptions is ValueError


# --- over HTTP ---------------------------------------------------------------------------------


async def test_every_limited_response_carries_the_allowance(clock: Clock, client: httpx.AsyncClient) -> None:
    requests = [
        lambda: client.get("/users", params={"per_page": 1}),
        lambda: client.get(f"/users/{uuid.uuid4()}"),
        lambda: client.post("/users", json={"email": "not an email"}),
        lambda: client.get("/no/such/route"),
    ]
    answers = [await requests[n % len(requests)]() for n in range(LIMIT)]

    assert [answer.status_code for answer in answers[:4]] == [200, 404, 422, 404]
    assert [allowance(answer) for answer in answers] == [(LIMIT, LIMIT - used, 60) for used in range(1, LIMIT + 1)]


async def test_past_the_allowance_is_429_with_retry_after(clock: Clock, client: httpx.AsyncClient) -> None:
    await spend(client, LIMIT)
    body = user_body()

    refused = await client.post("/users", json=body)
    clock.advance(60)
    found = await client.get("/users", params={"email": body["email"]})

    assert_error(refused, 429, "RATE_LIMITED")
    assert int(refused.headers["retry-after"]) == 60  # every request came at one frozen instant
    assert allowance(refused) == (LIMIT, 0, 60)
    assert found.json()["meta"]["total"] == 0  # the refused request never reached the store


async def test_the_allowance_comes_back_after_retry_after(clock: Clock, client: httpx.AsyncClient) -> None:
    await spend(client, LIMIT // 2)
    clock.advance(20)
    await spend(client, LIMIT // 2)
    refused = await client.get("/users")

    clock.advance(int(refused.headers["retry-after"]))  # the first half leaves the window
    allowed_again = await client.get("/users")
    clock.advance(20)  # and now the second
    full_again = await client.get("/users")

    assert_error(refused, 429, "RATE_LIMITED")
    assert refused.headers["retry-after"] == "40"
    assert allowance(refused) == (LIMIT, 0, 60)
    assert allowed_again.status_code == 200
    assert allowance(allowed_again) == (LIMIT, LIMIT // 2 - 1, 60)
    assert full_again.status_code == 200
    assert allowance(full_again) == (LIMIT, LIMIT - 2, 60)


async def test_two_users_do_not_share_an_allowance(app: FastAPI, clock: Clock, client: httpx.AsyncClient) -> None:
    body = user_body()
    await create_user(client, **body)
    token = await sign_in(app, body["email"], body["password"], ADDRESS_A)
    await spend(client, LIMIT - 1)  # creating the user was the first

    async with asgi_client(app, token) as other:
        answer = await other.get("/auth/me")

    assert (await client.get("/auth/me")).status_code == 429
    assert answer.status_code == 200
    assert allowance(answer) == (LIMIT, LIMIT - 1, 60)


async def test_two_addresses_do_not_share_an_allowance(app: FastAPI, clock: Clock) -> None:
    async with asgi_client(app, address=ADDRESS_A) as first, asgi_client(app, address=ADDRESS_B) as second:
        await spend(first, LIMIT)
        refused = await first.get("/users")
        answer = await second.get("/users")

    assert_error(refused, 429, "RATE_LIMITED")
    assert_error(answer, 401, "UNAUTHORIZED")
    assert allowance(answer) == (LIMIT, LIMIT - 1, 60)


async def test_a_signed_in_user_is_one_client_from_any_address(app: FastAPI, clock: Clock) -> None:
    token = await sign_in(app, ADMIN_EMAIL, ADMIN_PASSWORD, "198.51.100.1")
    async with asgi_client(app, token, ADDRESS_A) as here, asgi_client(app, token, ADDRESS_B) as there:
        await spend(here, 60)
        answers = await spend(there, 40)
        refused_here = await here.get("/auth/me")
        refused_there = await there.get("/auth/me")
    async with asgi_client(app, address=ADDRESS_A) as anonymous:
        address_allowance = await anonymous.get("/users")

    assert allowance(answers[0]) == (LIMIT, 39, 60)
    assert allowance(answers[-1]) == (LIMIT, 0, 60)
    assert_error(refused_here, 429, "RATE_LIMITED")
    assert_error(refused_there, 429, "RATE_LIMITED")
    assert allowance(address_allowance) == (LIMIT, LIMIT - 1, 60)  # the user's requests were not the address's


async def test_an_expired_token_still_counts_against_its_user(app: FastAPI, clock: Clock) -> None:
    # Authentication refuses it, but it is genuine: a client cannot get a fresh allowance by letting it expire.
    token = await sign_in(app, ADMIN_EMAIL, ADMIN_PASSWORD, "198.51.100.1")
    claims = app.state.tokens.verify(token)
    expired = TokenService(app.state.settings.signing_key, -60).issue(claims.user_id, claims.role, claims.session_id)
    async with asgi_client(app, token, ADDRESS_A) as valid, asgi_client(app, expired, ADDRESS_B) as stale:
        await spend(valid, LIMIT - 1)
        last = await stale.get("/auth/me")
        refused = await valid.get("/auth/me")
    async with asgi_client(app, address=ADDRESS_B) as anonymous:
        address_allowance = await anonymous.get("/users")

    assert_error(last, 401, "UNAUTHORIZED")
    assert allowance(last) == (LIMIT, 0, 60)
    assert_error(refused, 429, "RATE_LIMITED")
    assert allowance(address_allowance) == (LIMIT, LIMIT - 1, 60)


async def test_tokens_that_do_not_verify_count_against_the_address(app: FastAPI, clock: Clock) -> None:
    # Otherwise every made-up token would be a fresh client with a fresh allowance.
    async with asgi_client(app, address=ADDRESS_A) as http:
        for n in range(LIMIT):
            await http.get("/users", headers={"Authorization": f"Bearer made-up-{n}"})
        refused = await http.get("/users", headers={"Authorization": "Bearer yet-another"})
        refused_without_token = await http.get("/users")

    assert_error(refused, 429, "RATE_LIMITED")
    assert_error(refused_without_token, 429, "RATE_LIMITED")


EXEMPT = [
    ("GET", "/health", {}),
    ("GET", "/ready", {}),
    ("GET", "http://testserver/metrics", {}),
    ("OPTIONS", "/users", {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}),
    ("OPTIONS", "/orders/x", {"Origin": ORIGIN, "Access-Control-Request-Method": "PATCH"}),
]


async def test_probes_metrics_and_preflights_are_not_limited(app: FastAPI, clock: Clock) -> None:
    async with asgi_client(app, address=ADDRESS_A) as spent, asgi_client(app, address=ADDRESS_B) as fresh:
        await spend(spent, LIMIT)
        refused = await spent.get("/users")
        when_spent = [await spent.request(method, path, headers=headers) for method, path, headers in EXEMPT]
        when_fresh = [await fresh.request(method, path, headers=headers) for method, path, headers in EXEMPT * 5]
        limited = await fresh.get("/users")

    assert refused.status_code == 429
    for answer in when_spent + when_fresh:
        assert_unlimited(answer)
    health, ready, _, *preflights = when_spent
    assert health.status_code == ready.status_code == 200
    for preflight in preflights:
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert allowance(limited) == (LIMIT, LIMIT - 1, 60)  # the exempt requests used none of it


async def test_logins_have_a_stricter_allowance_per_address(app: FastAPI, clock: Clock) -> None:
    wrong = {"email": ADMIN_EMAIL, "password": "wrong-password"}
    right = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    async with asgi_client(app, address=ADDRESS_A) as guesser, asgi_client(app, address=ADDRESS_B) as other:
        attempts = [await guesser.post("/auth/token", json=wrong) for _ in range(LOGIN_LIMIT)]
        other_request = await guesser.get("/users")
        refused = await guesser.post("/auth/token", json=right)
        elsewhere = await other.post("/auth/token", json=right)

    for answer in attempts:
        assert_error(answer, 401, "INVALID_CREDENTIALS")
    # Logins are ordinary anonymous requests of the address, too.
    assert [allowance(answer)[:2] for answer in attempts] == [(LIMIT, LIMIT - n) for n in range(1, LOGIN_LIMIT + 1)]
    assert allowance(other_request) == (LIMIT, LIMIT - LOGIN_LIMIT - 1, 60)
    assert_error(refused, 429, "RATE_LIMITED")
    assert allowance(refused) == (LOGIN_LIMIT, 0, 60)
    assert int(refused.headers["retry-after"]) == 60
    assert elsewhere.status_code == 200


async def test_logins_at_five_a_second_get_the_login_figure_a_minute(app: FastAPI, clock: Clock) -> None:
    # A token bucket of 15 a minute let a guesser at 5 a second make 29 attempts in the first minute.
    wrong = {"email": ADMIN_EMAIL, "password": "wrong-password"}
    statuses: list[int] = []
    async with asgi_client(app, address=ADDRESS_A) as guesser:
        for _ in range(5 * 90):
            statuses.append((await guesser.post("/auth/token", json=wrong)).status_code)
            clock.advance(0.2)

    first_minute, next_half = statuses[: 5 * 60], statuses[5 * 60 :]
    assert first_minute.count(401) == LOGIN_LIMIT
    assert set(first_minute) == {401, 429}
    assert next_half.count(401) == LOGIN_LIMIT  # each attempt's place came back a minute after it


async def test_a_login_counts_against_the_address_even_with_a_token(app: FastAPI, clock: Clock) -> None:
    token = await sign_in(app, ADMIN_EMAIL, ADMIN_PASSWORD, "198.51.100.1")
    credentials = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    async with asgi_client(app, token, ADDRESS_A) as http:
        login = await http.post("/auth/token", json=credentials)
        me = await http.get("/auth/me")

    assert login.status_code == 200
    assert allowance(login) == (LIMIT, LIMIT - 1, 60)  # the address's first request
    assert allowance(me) == (LIMIT, LIMIT - 1, 60)  # the user's first request


async def test_a_limit_of_zero_turns_limiting_off(settings: Settings) -> None:
    async with (
        serving(settings.model_copy(update={"rate_limit_per_minute": 0})) as app,
        asgi_client(app, address=ADDRESS_A) as http,
    ):
        answers = [await http.get("/users") for _ in range(LIMIT + 1)]
        logins = [
            await http.post("/auth/token", json={"email": ADMIN_EMAIL, "password": "wrong"})
            for _ in range(LOGIN_LIMIT + 1)
        ]

    for answer in answers:
        assert answer.status_code == 401
        assert_unlimited(answer)
    for answer in logins:
        assert answer.status_code == 401
        assert_unlimited(answer)


# --- a real server behind (or not behind) a proxy -------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "statuses", "remaining"),
    [
        ({}, [401, 401, 401, 429], ["2", "1", "0", "0"]),
        ({"MEMDB_FORWARDED_ALLOW_IPS": "127.0.0.1"}, [401, 401, 401, 401], ["2", "2", "2", "2"]),
    ],
    ids=["no-proxy-configured", "proxy-configured"],
)
def test_forwarded_for_names_the_client_only_behind_a_configured_proxy(
    trusted: dict[str, str], statuses: list[int], remaining: list[str]
) -> None:
    environment = {"MEMDB_RATE_LIMIT_PER_MINUTE": "3", **trusted}
    with running_server(environment) as base, httpx.Client(base_url=f"{base}/api/v1", timeout=10) as http:
        answers = [http.get("/users", headers={"X-Forwarded-For": f"203.0.113.{n}"}) for n in range(1, 5)]

    assert [answer.status_code for answer in answers] == statuses
    assert [answer.headers["x-rate-limit-remaining"] for answer in answers] == remaining


def test_a_real_server_admits_the_figure_once_per_minute_not_a_refill_more() -> None:
    # A token bucket of 60 a minute gives one more request every second after the first 60; a moving
    # window gives none until the first of them is a minute old.
    limit = 60
    environment = {"MEMDB_RATE_LIMIT_PER_MINUTE": str(limit), "MEMDB_LOG_LEVEL": "WARNING"}  # the test reads no log
    with running_server(environment) as base, httpx.Client(base_url=base) as http:
        started = time.monotonic()
        answers = [http.get("/api/v1/users") for _ in range(limit)]
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            answers.append(http.get("/api/v1/users"))
        elapsed = time.monotonic() - started

    admitted = [answer for answer in answers if answer.status_code != 429]
    refused = [answer for answer in answers if answer.status_code == 429]
    assert elapsed < 50, "the check needs the whole run inside one window"
    assert len(admitted) == limit
    assert [answer.status_code for answer in admitted] == [401] * limit
    assert [allowance(answer)[:2] for answer in admitted] == [(limit, limit - n) for n in range(1, limit + 1)]
    last = refused[-1]
    assert_error(last, 429, "RATE_LIMITED")
    # The first request leaves the window a minute after it came; the whole allowance is back a minute after
    # the last admitted one.
    assert 60 - elapsed - 1 <= int(last.headers["retry-after"]) <= 60
    assert int(last.headers["retry-after"]) <= allowance(last)[2] <= 60
