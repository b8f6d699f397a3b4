"""Rate limits (CONTRACT §8): allowances per client, their headers, 429s, exemptions and bounded state.

aiolimiter reads the running loop's clock, so the ``clock`` fixture freezes that
clock and moves it only when a test says: the numbers in the headers are then
exact, and refills need no sleeping.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from fractions import Fraction

import httpx
import pytest
from fastapi import FastAPI

from server.security.limits import RateLimiter, Verdict
from server.settings import Settings
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.utils.api import assert_error, create_user
from tests.utils.asgi import asgi_client, serving, sign_in
from tests.utils.data import user_body
from tests.utils.server import running_server

LIMIT = 100
LOGIN_LIMIT = 15  # one every 4 seconds: exact in binary floating point
ORIGIN = "https://app.example.com"
ADDRESS_A = "192.0.2.10"
ADDRESS_B = "192.0.2.20"
RATE_HEADERS = ("x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset")


class Clock:
    """The event loop's clock, frozen: it moves only by :meth:`advance`."""

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


def reset_after(used: int, limit: int = LIMIT) -> int:
    """Whole seconds until ``used`` requests have leaked out of a ``limit``-a-minute bucket."""
    return math.ceil(Fraction(used * 60, limit))


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


async def test_verdicts_count_down_the_allowance_then_refuse(clock: Clock) -> None:
    limiter = RateLimiter(60)  # one a second: every figure below is exact

    verdicts = [await limiter.check("addr:1") for _ in range(61)]

    assert verdicts[0] == Verdict(allowed=True, limit=60, remaining=59, reset_seconds=1, retry_after=0)
    assert verdicts[29] == Verdict(allowed=True, limit=60, remaining=30, reset_seconds=30, retry_after=0)
    assert verdicts[59] == Verdict(allowed=True, limit=60, remaining=0, reset_seconds=60, retry_after=0)
    assert verdicts[60] == Verdict(allowed=False, limit=60, remaining=0, reset_seconds=60, retry_after=1)


async def test_the_allowance_refills_as_time_passes(clock: Clock) -> None:
    limiter = RateLimiter(60)
    for _ in range(60):
        await limiter.check("addr:1")

    clock.advance(30)
    after_half_a_minute = await limiter.check("addr:1")
    clock.advance(0.5)
    half_a_second_later = await limiter.check("addr:1")
    clock.advance(60)
    after_a_full_minute = await limiter.check("addr:1")

    assert after_half_a_minute == Verdict(allowed=True, limit=60, remaining=29, reset_seconds=31, retry_after=0)
    assert half_a_second_later == Verdict(allowed=True, limit=60, remaining=28, reset_seconds=32, retry_after=0)
    assert after_a_full_minute == Verdict(allowed=True, limit=60, remaining=59, reset_seconds=1, retry_after=0)


async def test_retry_after_is_when_one_more_request_fits(clock: Clock) -> None:
    limiter = RateLimiter(15)  # one every 4 seconds
    for _ in range(15):
        assert (await limiter.check("addr:1")).allowed

    refused = await limiter.check("addr:1")
    clock.advance(3.75)
    still_refused = await limiter.check("addr:1")
    clock.advance(0.25)
    allowed = await limiter.check("addr:1")

    assert refused == Verdict(allowed=False, limit=15, remaining=0, reset_seconds=60, retry_after=4)
    assert still_refused == Verdict(allowed=False, limit=15, remaining=0, reset_seconds=57, retry_after=1)
    assert allowed == Verdict(allowed=True, limit=15, remaining=0, reset_seconds=60, retry_after=0)


async def test_keys_have_separate_allowances(clock: Clock) -> None:
    limiter = RateLimiter(2)

    first = [await limiter.check("addr:1") for _ in range(3)]
    second = await limiter.check("addr:2")

    assert [verdict.allowed for verdict in first] == [True, True, False]
    assert second.allowed
    assert second.remaining == 1


@pytest.mark.parametrize(("max_clients", "bound"), [(100, 100), (None, 10_000)])
async def test_a_flood_of_new_clients_keeps_the_limiter_bounded(
    clock: Clock, max_clients: int | None, bound: int
) -> None:
    limiter = RateLimiter(15) if max_clients is None else RateLimiter(15, max_clients)

    for n in range(100_000):
        await limiter.check(f"addr:{n}")

    assert len(limiter) == bound


async def test_the_least_recently_seen_client_is_forgotten_first(clock: Clock) -> None:
    limiter = RateLimiter(1, max_clients=2)
    await limiter.check("addr:old")
    await limiter.check("addr:busy")
    await limiter.check("addr:old")  # refused, but seen: now "busy" is the idlest

    await limiter.check("addr:new")  # a third client: one must go

    assert len(limiter) == 2
    assert not (await limiter.check("addr:old")).allowed  # remembered, still spent
    assert (await limiter.check("addr:busy")).allowed  # forgotten, so a fresh allowance


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
    assert [allowance(answer) for answer in answers] == [
        (LIMIT, LIMIT - used, reset_after(used)) for used in range(1, LIMIT + 1)
    ]


async def test_past_the_allowance_is_429_with_retry_after(clock: Clock, client: httpx.AsyncClient) -> None:
    await spend(client, LIMIT)
    body = user_body()

    refused = await client.post("/users", json=body)
    clock.advance(60)
    found = await client.get("/users", params={"email": body["email"]})

    assert_error(refused, 429, "RATE_LIMITED")
    assert int(refused.headers["retry-after"]) == 1
    assert allowance(refused) == (LIMIT, 0, 60)
    assert found.json()["meta"]["total"] == 0  # the refused request never reached the store


async def test_the_allowance_comes_back_after_retry_after(clock: Clock, client: httpx.AsyncClient) -> None:
    await spend(client, LIMIT)
    refused = await client.get("/users")

    clock.advance(int(refused.headers["retry-after"]))
    allowed_again = await client.get("/users")
    refused_again = await client.get("/users")
    clock.advance(60)
    full_again = await client.get("/users")

    assert refused.status_code == 429
    assert allowed_again.status_code == 200
    assert allowance(allowed_again) == (LIMIT, 0, 60)
    assert refused_again.status_code == 429
    assert int(refused_again.headers["retry-after"]) >= 1
    assert full_again.status_code == 200
    assert allowance(full_again) == (LIMIT, LIMIT - 1, 1)


async def test_two_users_do_not_share_an_allowance(app: FastAPI, clock: Clock, client: httpx.AsyncClient) -> None:
    body = user_body()
    await create_user(client, **body)
    token = await sign_in(app, body["email"], body["password"], ADDRESS_A)
    await spend(client, LIMIT - 1)  # creating the user was the first

    async with asgi_client(app, token) as other:
        answer = await other.get("/auth/me")

    assert (await client.get("/auth/me")).status_code == 429
    assert answer.status_code == 200
    assert allowance(answer) == (LIMIT, LIMIT - 1, 1)


async def test_two_addresses_do_not_share_an_allowance(app: FastAPI, clock: Clock) -> None:
    async with asgi_client(app, address=ADDRESS_A) as first, asgi_client(app, address=ADDRESS_B) as second:
        await spend(first, LIMIT)
        refused = await first.get("/users")
        answer = await second.get("/users")

    assert_error(refused, 429, "RATE_LIMITED")
    assert_error(answer, 401, "UNAUTHORIZED")
    assert allowance(answer) == (LIMIT, LIMIT - 1, 1)


async def test_a_signed_in_user_is_one_client_from_any_address(app: FastAPI, clock: Clock) -> None:
    token = await sign_in(app, ADMIN_EMAIL, ADMIN_PASSWORD, "198.51.100.1")
    async with asgi_client(app, token, ADDRESS_A) as here, asgi_client(app, token, ADDRESS_B) as there:
        await spend(here, 60)
        answers = await spend(there, 40)
        refused_here = await here.get("/auth/me")
        refused_there = await there.get("/auth/me")
    async with asgi_client(app, address=ADDRESS_A) as anonymous:
        address_allowance = await anonymous.get("/users")

    assert allowance(answers[0]) == (LIMIT, 39, reset_after(61))
    assert allowance(answers[-1]) == (LIMIT, 0, 60)
    assert_error(refused_here, 429, "RATE_LIMITED")
    assert_error(refused_there, 429, "RATE_LIMITED")
    assert allowance(address_allowance) == (LIMIT, LIMIT - 1, 1)  # the user's requests were not the address's


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
    assert allowance(limited) == (LIMIT, LIMIT - 1, 1)  # the exempt requests used none of it


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
    assert allowance(other_request) == (LIMIT, LIMIT - LOGIN_LIMIT - 1, reset_after(LOGIN_LIMIT + 1))
    assert_error(refused, 429, "RATE_LIMITED")
    assert allowance(refused) == (LOGIN_LIMIT, 0, 60)
    assert int(refused.headers["retry-after"]) == 60 // LOGIN_LIMIT
    assert elsewhere.status_code == 200


async def test_a_login_counts_against_the_address_even_with_a_token(app: FastAPI, clock: Clock) -> None:
    token = await sign_in(app, ADMIN_EMAIL, ADMIN_PASSWORD, "198.51.100.1")
    credentials = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    async with asgi_client(app, token, ADDRESS_A) as http:
        login = await http.post("/auth/token", json=credentials)
        me = await http.get("/auth/me")

    assert login.status_code == 200
    assert allowance(login) == (LIMIT, LIMIT - 1, 1)  # the address's first request
    assert allowance(me) == (LIMIT, LIMIT - 1, 1)  # the user's first request


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
