"""Authentication: logging in, the ways a token is refused, sessions, start-up accounts and production."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import bcrypt
import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr, ValidationError

from server.app import create_app
from server.models.dataset import LOCKED_PASSWORD_HASH
from server.routers import auth as auth_routes
from server.security import passwords
from server.security.tokens import ISSUER, InvalidToken, TokenService
from server.settings import MIN_PRODUCTION_BCRYPT_ROUNDS, Settings, load_settings
from server.tables import SESSIONS, USERS
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, SAMPLE
from tests.utils.api import assert_error, create_user, error_fields
from tests.utils.asgi import asgi_client, serving
from tests.utils.auth import (
    assert_unauthorized,
    bearer,
    claims_of,
    expired,
    header_of,
    refreshed,
    signed_token,
    token_pair,
    unsigned_token,
)
from tests.utils.data import order_body, user_body
from tests.utils.server import running_server

PASSWORD = "correct-horse"
NEW_PASSWORD = "battery-staple"
OTHER_KEY = b"another-service-entirely-0123456789abcdef"
TOKEN_KEYS = {"access_token", "refresh_token", "token_type", "expires_in"}
FORM = "application/x-www-form-urlencoded"
PRODUCTION_SECRET = "a-production-secret-of-some-variety-2026"


def _variant(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with ``changes``, validated like any other settings."""
    return Settings(**{**settings.model_dump(), **changes})


@pytest.fixture
async def alice(anon: httpx.AsyncClient) -> dict[str, Any]:
    """A signed-up user (password ``PASSWORD``)."""
    return await create_user(anon, email="alice@example.com", password=PASSWORD)


@pytest.fixture
async def pair(anon: httpx.AsyncClient, alice: dict[str, Any]) -> dict[str, Any]:
    """A fresh token pair of ``alice``."""
    return await token_pair(anon, alice["email"], PASSWORD)


# -- logging in ----------------------------------------------------------------


def _assert_token_pair(response: httpx.Response, settings: Settings) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["status"] == "success"
    data: dict[str, Any] = body["data"]
    assert set(data) == TOKEN_KEYS
    assert data["token_type"] == "bearer"
    assert data["expires_in"] == settings.access_token_minutes * 60
    assert header_of(data["access_token"])["alg"] == "HS256"
    assert data["refresh_token"] != data["access_token"]
    return data


async def test_logging_in_with_json_returns_a_working_token_pair(
    anon: httpx.AsyncClient, alice: dict[str, Any], settings: Settings
) -> None:
    response = await anon.post("/auth/token", json={"email": alice["email"], "password": PASSWORD})

    data = _assert_token_pair(response, settings)
    claims = claims_of(data["access_token"])
    assert claims["sub"] == alice["id"]
    assert claims["iss"] == ISSUER
    assert claims["exp"] - claims["iat"] == settings.access_token_minutes * 60
    me = await anon.get("/auth/me", headers=bearer(data["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["data"]["id"] == alice["id"]


@pytest.mark.parametrize("content_type", [FORM, f"{FORM}; charset=utf-8", "Application/X-WWW-Form-URLEncoded"])
async def test_logging_in_with_the_oauth2_password_form(
    anon: httpx.AsyncClient, alice: dict[str, Any], settings: Settings, content_type: str
) -> None:
    form = httpx.QueryParams(grant_type="password", username=alice["email"], password=PASSWORD, scope="")

    response = await anon.post("/auth/token", content=str(form), headers={"Content-Type": content_type})

    data = _assert_token_pair(response, settings)
    me = await anon.get("/auth/me", headers=bearer(data["access_token"]))
    assert me.json()["data"]["id"] == alice["id"]


@pytest.mark.parametrize("typed", ["ALICE@EXAMPLE.COM", "Alice@Example.com", "alice@EXAMPLE.com"])
async def test_the_login_email_is_matched_case_insensitively(
    anon: httpx.AsyncClient, alice: dict[str, Any], typed: str
) -> None:
    data = await token_pair(anon, typed, PASSWORD)

    assert claims_of(data["access_token"])["sub"] == alice["id"]


async def test_an_email_signed_up_in_capitals_logs_in_in_lower_case(anon: httpx.AsyncClient) -> None:
    user = await create_user(anon, email="Bob.Smith@Example.ORG", password=PASSWORD)

    data = await token_pair(anon, "bob.smith@example.org", PASSWORD)

    assert claims_of(data["access_token"])["sub"] == user["id"]


def _without_request_id(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    body["error"].pop("request_id")
    return body


async def test_a_wrong_password_and_an_unknown_email_look_the_same(
    anon: httpx.AsyncClient, alice: dict[str, Any]
) -> None:
    wrong_password = await anon.post("/auth/token", json={"email": alice["email"], "password": "not-the-password"})
    unknown_email = await anon.post("/auth/token", json={"email": "nobody@example.com", "password": PASSWORD})

    assert_unauthorized(wrong_password, "INVALID_CREDENTIALS")
    assert_unauthorized(unknown_email, "INVALID_CREDENTIALS")
    assert _without_request_id(wrong_password) == _without_request_id(unknown_email)


async def test_wrong_credentials_over_the_form_are_refused_the_same_way(
    anon: httpx.AsyncClient, alice: dict[str, Any]
) -> None:
    response = await anon.post("/auth/token", data={"username": alice["email"], "password": "not-the-password"})

    assert_unauthorized(response, "INVALID_CREDENTIALS")


@pytest.fixture
def bcrypt_checks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, bool]]:
    """Every bcrypt check the app makes, as (password, hash, ran on the event loop's thread)."""
    calls: list[tuple[str, str, bool]] = []
    original = passwords._verify
    loop_thread = threading.get_ident()

    def spy(password: str, hashed: str) -> bool:
        calls.append((password, hashed, threading.get_ident() == loop_thread))
        return original(password, hashed)

    monkeypatch.setattr(passwords, "_verify", spy)
    return calls


async def test_an_unknown_email_still_costs_a_bcrypt_check(
    app: FastAPI, anon: httpx.AsyncClient, settings: Settings, bcrypt_checks: list[tuple[str, str, bool]]
) -> None:
    dummy_hash: str = app.state.login_check.dummy_hash

    response = await anon.post("/auth/token", json={"email": "nobody@example.com", "password": "guess-1234"})

    assert_unauthorized(response, "INVALID_CREDENTIALS")
    assert bcrypt_checks == [("guess-1234", dummy_hash, False)]
    # A real hash at the configured cost, so the dummy check costs what a real one does.
    assert dummy_hash.startswith(f"$2b${settings.bcrypt_rounds:02d}$")


async def _set_hash(app: FastAPI, user_id: str, password_hash: str) -> None:
    await app.state.store.update(USERS.name, uuid.UUID(user_id), {"password_hash": password_hash})


async def _stored_hash(app: FastAPI, user_id: str) -> str:
    snapshot = await app.state.store.get(USERS.name, uuid.UUID(user_id), reveal=True)
    stored: str = snapshot.data["password_hash"]
    return stored


async def test_a_locked_account_costs_the_same_check_as_an_unknown_email(
    app: FastAPI, anon: httpx.AsyncClient, alice: dict[str, Any], bcrypt_checks: list[tuple[str, str, bool]]
) -> None:
    await _set_hash(app, alice["id"], LOCKED_PASSWORD_HASH)  # as an import without a password leaves it

    response = await anon.post("/auth/token", json={"email": alice["email"], "password": "!"})

    assert_unauthorized(response, "INVALID_CREDENTIALS")
    assert bcrypt_checks == [("!", app.state.login_check.dummy_hash, False)]


async def test_a_hash_cheaper_than_the_configured_cost_is_topped_up_then_made_again(
    settings: Settings, bcrypt_checks: list[tuple[str, str, bool]]
) -> None:
    cheap = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    async with serving(_variant(settings, bcrypt_rounds=5)) as application, asgi_client(application) as http:
        alice = await create_user(http, email="alice@example.com", password=PASSWORD)
        await _set_hash(application, alice["id"], cheap)  # imported from a system with a lower cost
        bcrypt_checks.clear()

        wrong = await http.post("/auth/token", json={"email": alice["email"], "password": "not-the-password"})
        checks_of_a_failure = list(bcrypt_checks)
        right = await http.post("/auth/token", json={"email": alice["email"], "password": PASSWORD})
        made_again = await _stored_hash(application, alice["id"])
        bcrypt_checks.clear()
        again = await http.post("/auth/token", json={"email": alice["email"], "password": PASSWORD})
        dummy_hash = application.state.login_check.dummy_hash

    assert_unauthorized(wrong, "INVALID_CREDENTIALS")
    # The cheap check, then one at the configured cost: a failure costs at least what an unknown email does.
    assert [hashed for _, hashed, _ in checks_of_a_failure] == [cheap, dummy_hash]
    assert right.status_code == again.status_code == 200
    assert made_again.startswith("$2b$05$")
    assert bcrypt.checkpw(PASSWORD.encode(), made_again.encode())
    assert [hashed for _, hashed, _ in bcrypt_checks] == [made_again]  # no top-up, no re-hash any more


async def test_a_hash_dearer_than_the_configured_cost_is_made_again_at_login(
    app: FastAPI, anon: httpx.AsyncClient, alice: dict[str, Any], pair: dict[str, Any]
) -> None:
    dear = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(6)).decode()  # the sample data's cost, scaled down
    await _set_hash(app, alice["id"], dear)

    response = await anon.post("/auth/token", json={"email": alice["email"], "password": PASSWORD})
    made_again = await _stored_hash(app, alice["id"])

    assert response.status_code == 200
    assert made_again.startswith("$2b$04$")
    assert bcrypt.checkpw(PASSWORD.encode(), made_again.encode())
    # Re-hashing is not a password change: the user's other sessions go on.
    assert (await anon.get("/auth/me", headers=bearer(pair["access_token"]))).status_code == 200


async def test_logins_racing_the_re_hash_of_the_same_password_all_succeed(
    app: FastAPI, anon: httpx.AsyncClient, alice: dict[str, Any]
) -> None:
    dear = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(6)).decode()
    await _set_hash(app, alice["id"], dear)

    # Each checks the dear hash; the first to finish stores a new one, which the others' sessions must survive.
    responses = await asyncio.gather(
        *(anon.post("/auth/token", json={"email": alice["email"], "password": PASSWORD}) for _ in range(4))
    )

    assert [response.status_code for response in responses] == [200] * 4
    for response in responses:
        token = response.json()["data"]["access_token"]
        assert (await anon.get("/auth/me", headers=bearer(token))).status_code == 200


async def test_a_re_hash_never_overwrites_a_password_changed_meanwhile(
    app: FastAPI, anon: httpx.AsyncClient, alice: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    dear = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(5)).decode()
    await _set_hash(app, alice["id"], dear)
    changed = bcrypt.hashpw(NEW_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    original = passwords.hash_password

    async def hash_while_the_password_changes(password: str, rounds: int) -> str:
        await _set_hash(app, alice["id"], changed)
        return await original(password, rounds)

    monkeypatch.setattr(auth_routes, "hash_password", hash_while_the_password_changes)
    response = await anon.post("/auth/token", json={"email": alice["email"], "password": PASSWORD})

    assert response.status_code == 200
    assert await _stored_hash(app, alice["id"]) == changed


def test_the_sample_data_is_hashed_at_the_cost_it_is_served_with() -> None:
    hashes = [user["password_hash"] for user in json.loads(SAMPLE.read_text())["users"]]

    assert hashes
    assert {passwords.hash_cost(hashed) for hashed in hashes} == {Settings.model_fields["bcrypt_rounds"].default}


async def test_a_known_email_is_checked_against_its_own_hash_off_the_event_loop(
    anon: httpx.AsyncClient, alice: dict[str, Any], bcrypt_checks: list[tuple[str, str, bool]]
) -> None:
    response = await anon.post("/auth/token", json={"email": alice["email"], "password": "not-the-password"})

    assert_unauthorized(response, "INVALID_CREDENTIALS")
    assert len(bcrypt_checks) == 1
    password, hashed, on_loop = bcrypt_checks[0]
    assert password == "not-the-password"
    assert hashed.startswith("$2b$04$")
    assert not on_loop


@pytest.mark.parametrize(
    ("request_kwargs", "status", "fields"),
    [
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, []),
        ({"content": b"", "headers": {"Content-Type": "application/json"}}, 400, []),
        ({"content": b"\xff\xfe", "headers": {"Content-Type": FORM}}, 400, []),
        ({"json": ["alice@example.com", PASSWORD]}, 422, ["body"]),
        ({"json": {"email": "alice@example.com"}}, 422, ["body.password"]),
        ({"json": {"password": PASSWORD}}, 422, ["body.email"]),
        ({"json": {"email": 42, "password": PASSWORD}}, 422, ["body.email"]),
        ({"json": {"email": "alice@example.com", "password": PASSWORD, "role": "admin"}}, 422, ["body.role"]),
        ({"data": {"username": "alice@example.com"}}, 422, ["body.password"]),
        ({"data": {"password": PASSWORD}}, 422, ["body.email"]),
    ],
    ids=[
        "invalid-json",
        "empty-body",
        "form-not-utf8",
        "json-array",
        "no-password",
        "no-email",
        "email-not-a-string",
        "unknown-field",
        "form-no-password",
        "form-no-username",
    ],
)
async def test_a_malformed_login_body_is_a_client_error(
    anon: httpx.AsyncClient,
    alice: dict[str, Any],
    bcrypt_checks: list[tuple[str, str, bool]],
    request_kwargs: dict[str, Any],
    status: int,
    fields: list[str],
) -> None:
    response = await anon.post("/auth/token", **request_kwargs)

    assert_error(response, status, "BAD_REQUEST" if status == 400 else "VALIDATION_ERROR")
    assert error_fields(response) == fields
    assert bcrypt_checks == []


async def test_a_password_past_bcrypts_limit_at_login_is_just_wrong(
    anon: httpx.AsyncClient, alice: dict[str, Any]
) -> None:
    response = await anon.post("/auth/token", json={"email": alice["email"], "password": PASSWORD + "x" * 80})

    assert_unauthorized(response, "INVALID_CREDENTIALS")


# -- tokens that must not get in ----------------------------------------------------


TokenForge = Callable[[dict[str, Any], bytes], str]
"""Makes a token from a genuine token's claims and the app's signing key."""

FORGERIES: dict[str, TokenForge] = {
    "garbage": lambda claims, key: "not-a-token",
    "three-garbage-parts": lambda claims, key: "a.b.c",
    "five-parts": lambda claims, key: "a.b.c.d.e",
    "another-key": lambda claims, key: signed_token(OTHER_KEY, claims),
    "alg-none": lambda claims, key: unsigned_token(claims),
    "alg-none-signature-kept": lambda claims, key: unsigned_token(claims) + signed_token(key, claims).split(".")[2],
    "signature-stripped": lambda claims, key: signed_token(key, claims).rsplit(".", 1)[0] + ".",
    "hs512-with-the-right-key": lambda claims, key: signed_token(key, claims, "HS512"),
    "expired": lambda claims, key: signed_token(key, expired(claims)),
    "wrong-issuer": lambda claims, key: signed_token(key, {**claims, "iss": "someone-else"}),
    "no-issuer": lambda claims, key: signed_token(key, {k: v for k, v in claims.items() if k != "iss"}),
    "no-expiry": lambda claims, key: signed_token(key, {k: v for k, v in claims.items() if k != "exp"}),
    "no-session": lambda claims, key: signed_token(key, {k: v for k, v in claims.items() if k != "sid"}),
    "unknown-session": lambda claims, key: signed_token(key, {**claims, "sid": str(uuid.uuid4())}),
    "subject-not-a-uuid": lambda claims, key: signed_token(key, {**claims, "sub": "alice"}),
    "subject-of-someone-else": lambda claims, key: signed_token(key, {**claims, "sub": str(uuid.uuid4())}),
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
async def test_a_forged_or_broken_token_is_refused(app: FastAPI, anon: httpx.AsyncClient, forge: TokenForge) -> None:
    genuine = await token_pair(anon, ADMIN_EMAIL, ADMIN_PASSWORD)
    token = forge(claims_of(genuine["access_token"]), app.state.settings.signing_key)

    for path in ("/auth/me", "/orders", "/users"):
        assert_unauthorized(await anon.get(path, headers=bearer(token)))
    assert_unauthorized(await anon.post("/users", json=user_body(role="admin"), headers=bearer(token)))


async def test_a_token_made_like_the_forgeries_but_genuine_is_accepted(app: FastAPI, anon: httpx.AsyncClient) -> None:
    # The control for the forgeries above: the same claims, correctly signed, get in.
    genuine = await token_pair(anon, ADMIN_EMAIL, ADMIN_PASSWORD)
    token = signed_token(app.state.settings.signing_key, claims_of(genuine["access_token"]))

    response = await anon.get("/users", headers=bearer(token))

    assert response.status_code == 200, response.text


async def test_an_admins_session_with_the_subject_swapped_does_not_become_another_user(
    app: FastAPI, anon: httpx.AsyncClient, alice: dict[str, Any]
) -> None:
    admin = await token_pair(anon, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert (await anon.get("/auth/me", headers=bearer(admin["access_token"]))).status_code == 200  # now cached
    token = signed_token(app.state.settings.signing_key, {**claims_of(admin["access_token"]), "sub": alice["id"]})

    assert_unauthorized(await anon.get("/auth/me", headers=bearer(token)))


# A fixed id: test ids must be the same in every xdist worker.
@pytest.mark.parametrize("path", ["/auth/me", "/orders", "/users", f"/users/{uuid.UUID(int=1)}"])
async def test_no_token_on_a_protected_route_is_refused(anon: httpx.AsyncClient, path: str) -> None:
    assert_unauthorized(await anon.get(path))


@pytest.mark.parametrize("authorization", ["Basic cm9vdDpwYXNzd29yZA==", "Bearer", "Bearer "])
async def test_a_header_without_a_bearer_token_is_refused(anon: httpx.AsyncClient, authorization: str) -> None:
    assert_unauthorized(await anon.get("/auth/me", headers={"Authorization": authorization}))


def test_a_token_checked_once_is_still_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    service = TokenService(OTHER_KEY, access_seconds=60)
    user, session = uuid.uuid4(), uuid.uuid4()
    token = service.issue(user, "user", session)
    assert service.verify(token).user_id == user  # checked, and remembered

    issued = time.time()
    monkeypatch.setattr(time, "time", lambda: issued + 61)

    with pytest.raises(InvalidToken):
        service.verify(token)


async def test_a_token_from_a_service_with_negative_lifetime_is_expired_at_once(
    app: FastAPI, anon: httpx.AsyncClient, pair: dict[str, Any]
) -> None:
    claims = claims_of(pair["access_token"])
    issuer = TokenService(app.state.settings.signing_key, access_seconds=-1)
    token = issuer.issue(uuid.UUID(claims["sub"]), claims["role"], uuid.UUID(claims["sid"]))

    assert_unauthorized(await anon.get("/auth/me", headers=bearer(token)))
    assert (await anon.get("/auth/me", headers=bearer(pair["access_token"]))).status_code == 200


async def test_a_deleted_users_tokens_are_refused(
    anon: httpx.AsyncClient, client: httpx.AsyncClient, alice: dict[str, Any], pair: dict[str, Any]
) -> None:
    deleted = await client.delete(f"/users/{alice['id']}")
    assert deleted.status_code == 204, deleted.text

    assert_unauthorized(await anon.get("/auth/me", headers=bearer(pair["access_token"])))
    assert_unauthorized(await anon.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}))
    assert_unauthorized(
        await anon.post("/auth/token", json={"email": alice["email"], "password": PASSWORD}), "INVALID_CREDENTIALS"
    )


async def test_deleting_yourself_with_your_orders_ends_your_sessions(
    anon: httpx.AsyncClient, alice: dict[str, Any], pair: dict[str, Any]
) -> None:
    own = bearer(pair["access_token"])
    order = await anon.post("/orders", json=order_body(alice["id"]), headers=own)
    assert order.status_code == 201, order.text

    deleted = await anon.delete(f"/users/{alice['id']}", params={"cascade": "true"}, headers=own)

    assert deleted.status_code == 204, deleted.text
    assert_unauthorized(await anon.get("/auth/me", headers=own))
    assert_unauthorized(await anon.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}))


# -- refresh and logout ----------------------------------------------------------


async def test_refresh_rotates_the_pair(anon: httpx.AsyncClient, pair: dict[str, Any], settings: Settings) -> None:
    response = await anon.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})

    rotated = _assert_token_pair(response, settings)
    assert rotated["refresh_token"] != pair["refresh_token"]
    assert rotated["access_token"] != pair["access_token"]
    assert claims_of(rotated["access_token"])["sid"] == claims_of(pair["access_token"])["sid"]
    me = await anon.get("/auth/me", headers=bearer(rotated["access_token"]))
    assert me.status_code == 200, me.text
    again = await refreshed(anon, rotated["refresh_token"])
    assert (await anon.get("/auth/me", headers=bearer(again["access_token"]))).status_code == 200


async def test_a_spent_refresh_token_stops_working(anon: httpx.AsyncClient, pair: dict[str, Any]) -> None:
    await refreshed(anon, pair["refresh_token"])

    assert_unauthorized(await anon.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}))


async def test_reusing_a_refresh_token_revokes_the_whole_session(anon: httpx.AsyncClient, pair: dict[str, Any]) -> None:
    rotated = await refreshed(anon, pair["refresh_token"])
    assert (await anon.get("/auth/me", headers=bearer(rotated["access_token"]))).status_code == 200

    reuse = await anon.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})

    assert_unauthorized(reuse)
    assert_unauthorized(await anon.post("/auth/refresh", json={"refresh_token": rotated["refresh_token"]}))
    assert_unauthorized(await anon.get("/auth/me", headers=bearer(rotated["access_token"])))
    assert_unauthorized(await anon.get("/auth/me", headers=bearer(pair["access_token"])))


async def test_replaying_any_earlier_refresh_token_revokes_the_session(
    anon: httpx.AsyncClient, pair: dict[str, Any]
) -> None:
    second = await refreshed(anon, pair["refresh_token"])
    third = await refreshed(anon, second["refresh_token"])

    assert_unauthorized(await anon.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}))

    assert_unauthorized(await anon.post("/auth/refresh", json={"refresh_token": third["refresh_token"]}))
    assert_unauthorized(await anon.get("/auth/me", headers=bearer(third["access_token"])))


@pytest.mark.parametrize(
    "forge",
    [
        lambda sid, real: f"{sid}.1.{real.rpartition('.')[2]}",  # the next generation, with the current MAC
        lambda sid, real: f"{sid}.0.guessed-mac",
        lambda sid, real: str(TokenService(OTHER_KEY, 60).refresh_token(uuid.UUID(sid), 0)),  # another service's
    ],
    ids=["next-generation", "guessed-mac", "another-service"],
)
async def test_a_forged_refresh_token_naming_a_real_session_changes_nothing(
    anon: httpx.AsyncClient, pair: dict[str, Any], forge: Callable[[str, str], str]
) -> None:
    """The session id is in every access token; knowing it must not let anyone end the session."""
    sid = claims_of(pair["access_token"])["sid"]

    assert_unauthorized(await anon.post("/auth/refresh", json={"refresh_token": forge(sid, pair["refresh_token"])}))

    assert (await anon.get("/auth/me", headers=bearer(pair["access_token"]))).status_code == 200
    await refreshed(anon, pair["refresh_token"])


SPELLINGS = {
    "generation with a leading zero": "{sid}.07.{mac}",
    "generation with a sign": "{sid}.+7.{mac}",
    "no mac": "{sid}.7",
    "no generation": "{sid}..{mac}",
    "no session": "x.7.{mac}",
    "session in capitals": "{upper}.7.{mac}",
    "session without dashes": "{hex}.7.{mac}",
    "session in braces": "{{{sid}}}.7.{mac}",
    "session as a urn": "urn:uuid:{sid}.7.{mac}",
}


@pytest.mark.parametrize("text", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_a_refresh_token_has_one_spelling(text: str) -> None:
    service = TokenService(OTHER_KEY, 60)
    genuine = service.refresh_token(uuid.uuid4(), 7)
    assert service.parse_refresh_token(str(genuine)) == genuine
    sid = genuine.session_id

    with pytest.raises(InvalidToken):
        service.parse_refresh_token(text.format(sid=sid, upper=str(sid).upper(), hex=sid.hex, mac=genuine.mac))


async def test_revoking_one_session_leaves_the_users_other_sessions_alone(
    anon: httpx.AsyncClient, alice: dict[str, Any], pair: dict[str, Any]
) -> None:
    other = await token_pair(anon, alice["email"], PASSWORD)
    await refreshed(anon, pair["refresh_token"])

    assert_unauthorized(await anon.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}))

    assert (await anon.get("/auth/me", headers=bearer(other["access_token"]))).status_code == 200
    await refreshed(anon, other["refresh_token"])


@pytest.mark.parametrize(
    "make_token",
    [
        lambda real: "no-dot-at-all",
        lambda real: f"{uuid.uuid4()}.{real.partition('.')[2]}",
        lambda real: f"{real.partition('.')[0]}.",
        lambda real: f"{real.partition('.')[0]}.guessed-secret",
        lambda real: real + "x",
    ],
    ids=["garbage", "another-session", "no-secret", "wrong-secret", "secret-altered"],
)
async def test_a_bad_refresh_token_is_refused(
    anon: httpx.AsyncClient, pair: dict[str, Any], make_token: Callable[[str], str]
) -> None:
    response = await anon.post("/auth/refresh", json={"refresh_token": make_token(pair["refresh_token"])})

    assert_unauthorized(response)


async def test_an_expired_refresh_token_is_refused(app: FastAPI, anon: httpx.AsyncClient, pair: dict[str, Any]) -> None:
    session_id = uuid.UUID(claims_of(pair["access_token"])["sid"])
    await app.state.store.update(SESSIONS.name, session_id, {"refresh_expires_at": "2000-01-01T00:00:00Z"})

    assert_unauthorized(await anon.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}))


@pytest.mark.parametrize("body", [{}, {"refresh_token": 7}, {"refresh_token": "x", "extra": 1}])
async def test_a_malformed_refresh_body_is_a_validation_error(anon: httpx.AsyncClient, body: dict[str, Any]) -> None:
    assert_error(await anon.post("/auth/refresh", json=body), 422, "VALIDATION_ERROR")


async def test_logout_revokes_the_session(anon: httpx.AsyncClient, pair: dict[str, Any]) -> None:
    response = await anon.post("/auth/logout", headers=bearer(pair["access_token"]))

    assert response.status_code == 204
    assert response.content == b""
    assert_unauthorized(await anon.get("/auth/me", headers=bearer(pair["access_token"])))
    assert_unauthorized(await anon.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}))
    assert_unauthorized(await anon.post("/auth/logout", headers=bearer(pair["access_token"])))


async def test_logout_needs_a_token(anon: httpx.AsyncClient) -> None:
    assert_unauthorized(await anon.post("/auth/logout"))


# -- who am I, and changing what a session rests on --------------------------------


async def test_me_returns_the_caller_without_secrets(
    anon: httpx.AsyncClient, alice: dict[str, Any], pair: dict[str, Any]
) -> None:
    response = await anon.get("/auth/me", headers=bearer(pair["access_token"]))

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    data = response.json()["data"]
    assert data == alice
    assert "password" not in response.text
    assert "$2b$" not in response.text


@pytest.mark.parametrize("who", ["self", "admin"])
async def test_changing_a_password_revokes_every_session_of_that_user(
    anon: httpx.AsyncClient, client: httpx.AsyncClient, alice: dict[str, Any], pair: dict[str, Any], who: str
) -> None:
    second = await token_pair(anon, alice["email"], PASSWORD)
    caller = bearer(pair["access_token"]) if who == "self" else dict(client.headers)

    response = await anon.patch(f"/users/{alice['id']}", json={"password": NEW_PASSWORD}, headers=caller)

    assert response.status_code == 200, response.text
    for session in (pair, second):
        assert_unauthorized(await anon.get("/auth/me", headers=bearer(session["access_token"])))
        assert_unauthorized(await anon.post("/auth/refresh", json={"refresh_token": session["refresh_token"]}))
    old = await anon.post("/auth/token", json={"email": alice["email"], "password": PASSWORD})
    assert_unauthorized(old, "INVALID_CREDENTIALS")
    await token_pair(anon, alice["email"], NEW_PASSWORD)
    # An admin who changes someone else's password keeps their own session.
    assert (await client.get("/auth/me")).status_code == 200


async def test_other_changes_leave_sessions_alone(
    anon: httpx.AsyncClient, alice: dict[str, Any], pair: dict[str, Any]
) -> None:
    own = bearer(pair["access_token"])

    response = await anon.patch(f"/users/{alice['id']}", json={"full_name": "Alice B.", "role": "user"}, headers=own)

    assert response.status_code == 200, response.text
    assert response.json()["data"]["role"] == "user"
    assert (await anon.get("/auth/me", headers=own)).json()["data"]["full_name"] == "Alice B."


async def test_a_role_change_takes_effect_on_existing_tokens(
    anon: httpx.AsyncClient, client: httpx.AsyncClient, alice: dict[str, Any], pair: dict[str, Any]
) -> None:
    own = bearer(pair["access_token"])
    assert_error(await anon.get("/users", headers=own), 403, "FORBIDDEN")

    promoted = await client.patch(f"/users/{alice['id']}", json={"role": "admin"})
    assert promoted.status_code == 200, promoted.text
    assert (await anon.get("/users", headers=own)).status_code == 200

    demoted = await client.patch(f"/users/{alice['id']}", json={"role": "user"})
    assert demoted.status_code == 200, demoted.text
    assert_error(await anon.get("/users", headers=own), 403, "FORBIDDEN")


async def _login_held_across(
    anon: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    credentials: dict[str, str],
    meanwhile: Callable[[], Awaitable[httpx.Response]],
) -> httpx.Response:
    """Log in, and run ``meanwhile`` after the password check has passed but before the session is made."""
    checked, release = threading.Event(), threading.Event()
    original = passwords._verify

    def held(password: str, hashed: str) -> bool:
        result = original(password, hashed)
        checked.set()
        release.wait(timeout=30)
        return result

    monkeypatch.setattr(passwords, "_verify", held)
    login = asyncio.create_task(anon.post("/auth/token", json=credentials))
    try:
        assert await asyncio.to_thread(checked.wait, 30)
        during = await meanwhile()
        assert during.status_code in (200, 204), during.text
    finally:
        release.set()
    return await login


async def test_a_password_change_racing_a_login_leaves_no_session_on_the_old_password(
    anon: httpx.AsyncClient, alice: dict[str, Any], pair: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def change() -> Awaitable[httpx.Response]:
        body = {"password": NEW_PASSWORD}
        return anon.patch(f"/users/{alice['id']}", json=body, headers=bearer(pair["access_token"]))

    credentials = {"email": alice["email"], "password": PASSWORD}
    response = await _login_held_across(anon, monkeypatch, credentials, change)

    assert_unauthorized(response, "INVALID_CREDENTIALS")


async def test_a_user_deleted_during_their_login_gets_no_session(
    anon: httpx.AsyncClient, client: httpx.AsyncClient, alice: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = {"email": alice["email"], "password": PASSWORD}
    response = await _login_held_across(anon, monkeypatch, credentials, lambda: client.delete(f"/users/{alice['id']}"))

    assert_unauthorized(response, "INVALID_CREDENTIALS")


# -- passwords past bcrypt's limit ----------------------------------------------------


@pytest.mark.parametrize("password", ["x" * 73, "é" * 37, "🔑" * 19], ids=["73-ascii", "74-bytes-in-37-chars", "emoji"])
async def test_a_password_over_72_bytes_is_a_validation_error(
    anon: httpx.AsyncClient, alice: dict[str, Any], pair: dict[str, Any], password: str
) -> None:
    signup = await anon.post("/users", json=user_body(password=password))
    patch = await anon.patch(f"/users/{alice['id']}", json={"password": password}, headers=bearer(pair["access_token"]))

    for response in (signup, patch):
        assert_error(response, 422, "VALIDATION_ERROR")
        assert error_fields(response) == ["body.password"]
    assert (await anon.get("/auth/me", headers=bearer(pair["access_token"]))).status_code == 200


async def test_a_password_of_exactly_72_bytes_is_accepted(anon: httpx.AsyncClient) -> None:
    password = "é" * 36
    user = await create_user(anon, password=password)

    data = await token_pair(anon, user["email"], password)

    assert claims_of(data["access_token"])["sub"] == user["id"]
    refused = await anon.post("/auth/token", json={"email": user["email"], "password": "é" * 35 + "e"})
    assert_unauthorized(refused, "INVALID_CREDENTIALS")


# -- start-up accounts and production --------------------------------------------------


async def _users_seen_by(app: FastAPI, email: str, password: str) -> list[dict[str, Any]]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver/api/v1") as http:
        pair = await token_pair(http, email, password)
        response = await http.get("/users", params={"per_page": 100}, headers=bearer(pair["access_token"]))
    assert response.status_code == 200, response.text
    users: list[dict[str, Any]] = response.json()["data"]
    return users


async def test_the_start_up_admin_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setenv("MEMDB_ADMIN_EMAIL", "boss@example.com")
    monkeypatch.setenv("MEMDB_ADMIN_PASSWORD", "boss-password-1")
    from_env = Settings(**settings.model_dump(exclude={"admin_email", "admin_password"}))
    application = create_app(from_env)

    async with application.router.lifespan_context(application):
        users = await _users_seen_by(application, "Boss@Example.com", "boss-password-1")

    assert [(user["email"], user["role"]) for user in users] == [("boss@example.com", "admin")]


async def test_the_start_up_admin_takes_over_an_existing_account(settings: Settings) -> None:
    email = "schmidt.noah@mail.example.com"  # a plain user in the sample data
    application = create_app(_variant(settings, seed_file=SAMPLE, admin_email=email, admin_password="taken-over-1"))

    async with application.router.lifespan_context(application):
        users = await _users_seen_by(application, email, "taken-over-1")

    assert {user["email"]: user["role"] for user in users}[email] == "admin"


def test_production_refuses_to_start_without_a_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMDB_JWT_SECRET", raising=False)

    with pytest.raises(ValidationError, match="MEMDB_JWT_SECRET"):
        Settings(env="production")


@pytest.mark.parametrize("secret", ["s" * 31, "é" * 15 + "s", ""])
def test_production_refuses_a_short_jwt_secret(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.delenv("MEMDB_JWT_SECRET", raising=False)

    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings(env="production", jwt_secret=secret)


@pytest.mark.parametrize("secret", ["0123456789abcdef" * 2, "éèêëàâäôöûüçîïÿæ"])
def test_production_takes_a_32_byte_jwt_secret(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.delenv("MEMDB_JWT_SECRET", raising=False)

    settings = Settings(env="production", jwt_secret=secret)

    assert settings.signing_key == secret.encode()


@pytest.mark.parametrize("secret", ["s" * 48, "ab" * 24, "abcdefg" * 6], ids=["one", "two", "seven"])
def test_production_refuses_a_secret_of_few_different_characters(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.delenv("MEMDB_JWT_SECRET", raising=False)

    with pytest.raises(ValidationError, match="at least 8 different characters"):
        Settings(env="production", jwt_secret=secret)


@pytest.mark.parametrize("rounds", [4, MIN_PRODUCTION_BCRYPT_ROUNDS - 1])
def test_production_refuses_a_cheap_bcrypt_cost(rounds: int) -> None:
    with pytest.raises(
        ValidationError, match=f"MEMDB_BCRYPT_ROUNDS must be at least 10 in production .it is {rounds}."
    ):
        Settings(env="production", jwt_secret=PRODUCTION_SECRET, bcrypt_rounds=rounds)


def test_development_may_use_the_cheapest_bcrypt_cost_and_any_secret() -> None:
    settings = Settings(env="development", jwt_secret="s" * 8, bcrypt_rounds=4)

    assert settings.bcrypt_rounds == 4
    assert Settings(env="production", jwt_secret=PRODUCTION_SECRET, bcrypt_rounds=10).bcrypt_rounds == 10


def test_load_settings_turns_every_refusal_into_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEMDB_ENV", "production")
    monkeypatch.setenv("MEMDB_JWT_SECRET", "s" * 48)
    monkeypatch.setenv("MEMDB_PORT", "not-a-port")

    with pytest.raises(SystemExit) as refused:
        load_settings()

    assert refused.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == "memdb: MEMDB_PORT must be a whole number from 0 to 65535"
    monkeypatch.setenv("MEMDB_PORT", "8000")
    with pytest.raises(SystemExit):
        load_settings()
    assert capsys.readouterr().err.startswith("memdb: MEMDB_JWT_SECRET must use at least 8")
    monkeypatch.setenv("MEMDB_JWT_SECRET", PRODUCTION_SECRET)
    monkeypatch.setenv("MEMDB_BCRYPT_ROUNDS", "12")
    assert load_settings().bcrypt_rounds == 12


@pytest.mark.parametrize(
    ("environment", "line"),
    [
        (
            {"MEMDB_JWT_SECRET": "s" * 48},
            "memdb: MEMDB_JWT_SECRET must use at least 8 different characters;",
        ),
        (
            {"MEMDB_JWT_SECRET": PRODUCTION_SECRET, "MEMDB_BCRYPT_ROUNDS": "4"},
            "memdb: MEMDB_BCRYPT_ROUNDS must be at least 10 in production (it is 4)",
        ),
    ],
    ids=["monotonous-secret", "cheap-bcrypt"],
)
def test_a_refused_production_configuration_stops_the_server_with_one_line(
    environment: dict[str, str], line: str
) -> None:
    env = {**os.environ, "MEMDB_ENV": "production", "MEMDB_PORT": "0", **environment}
    finished = subprocess.run(  # it exits before it would listen
        [sys.executable, "-m", "server"], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert finished.returncode == 2
    assert finished.stdout == ""
    assert finished.stderr.startswith(line)
    assert finished.stderr.count("\n") == 1
    assert "Traceback" not in finished.stderr


def test_production_reads_its_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMDB_ENV", "production")
    monkeypatch.setenv("MEMDB_JWT_SECRET", PRODUCTION_SECRET)

    assert Settings().signing_key == PRODUCTION_SECRET.encode()


def test_development_signs_with_a_random_key_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMDB_JWT_SECRET", raising=False)

    first, second = Settings(env="development"), Settings(env="development")

    assert len(first.signing_key) >= 32
    assert first.signing_key != second.signing_key


@pytest.mark.parametrize("env", ["development", "production"])
async def test_production_never_loads_the_seed_file(settings: Settings, env: str) -> None:
    secret = SecretStr(PRODUCTION_SECRET) if env == "production" else None
    rounds = MIN_PRODUCTION_BCRYPT_ROUNDS if env == "production" else settings.bcrypt_rounds
    application = create_app(_variant(settings, env=env, jwt_secret=secret, seed_file=SAMPLE, bcrypt_rounds=rounds))

    async with application.router.lifespan_context(application):
        users = await _users_seen_by(application, ADMIN_EMAIL, ADMIN_PASSWORD)

    emails = {user["email"] for user in users}
    if env == "production":
        assert emails == {ADMIN_EMAIL}
    else:
        assert {ADMIN_EMAIL, "admin@memdb.dev", "schmidt.noah@mail.example.com"} <= emails


async def _boom() -> None:
    raise RuntimeError("database password is hunter2, see /srv/memdb/server/secret.py line 12")


@pytest.mark.parametrize("env", ["development", "production"])
async def test_an_unexpected_error_in_production_says_only_internal_error(settings: Settings, env: str) -> None:
    secret = SecretStr(PRODUCTION_SECRET) if env == "production" else None
    rounds = MIN_PRODUCTION_BCRYPT_ROUNDS if env == "production" else settings.bcrypt_rounds
    application = create_app(_variant(settings, env=env, jwt_secret=secret, bcrypt_rounds=rounds))
    application.add_api_route("/api/v1/boom", _boom)

    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver/api/v1") as http:
            response = await http.get("/boom", headers={"X-Request-ID": "trace-me-1"})

    error = assert_error(response, 500, "INTERNAL_ERROR")
    assert error["request_id"] == response.headers["x-request-id"] == "trace-me-1"
    if env == "production":
        assert set(error) == {"code", "message", "request_id"}
        for leak in ("hunter2", "/srv/", "secret.py", "RuntimeError", "Traceback"):
            assert leak not in response.text


# -- over a real socket ---------------------------------------------------------------------


def test_the_whole_flow_over_http_against_a_real_server() -> None:
    admin = {"MEMDB_ADMIN_EMAIL": "flow-admin@example.com", "MEMDB_ADMIN_PASSWORD": "flow-admin-password"}
    body = user_body(password=PASSWORD)
    with running_server(admin) as base, httpx.Client(base_url=f"{base}/api/v1", timeout=10) as http:
        signed_up = http.post("/users", json={**body, "role": "user"})
        assert signed_up.status_code == 201, signed_up.text
        user = signed_up.json()["data"]
        assert user["role"] == "user"
        assert http.post("/users", json=user_body(role="admin")).status_code == 403

        login = http.post("/auth/token", data={"username": body["email"].upper(), "password": PASSWORD})
        assert login.status_code == 200, login.text
        assert login.headers["cache-control"] == "no-store"
        first = login.json()["data"]

        order = http.post("/orders", json=order_body(user["id"]), headers=bearer(first["access_token"]))
        assert order.status_code == 201, order.text
        assert http.get("/users", headers=bearer(first["access_token"])).status_code == 403

        refresh = http.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert refresh.status_code == 200, refresh.text
        second = refresh.json()["data"]
        mine = http.get("/orders", headers=bearer(second["access_token"]))
        assert [item["id"] for item in mine.json()["data"]] == [order.json()["data"]["id"]]

        logout = http.post("/auth/logout", headers=bearer(second["access_token"]))
        assert logout.status_code == 204

        refused = http.get("/orders", headers=bearer(second["access_token"]))
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["error"]["code"] == "UNAUTHORIZED"
        assert http.post("/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401

        as_admin = http.post(
            "/auth/token", json={"email": admin["MEMDB_ADMIN_EMAIL"], "password": admin["MEMDB_ADMIN_PASSWORD"]}
        )
        assert as_admin.status_code == 200, as_admin.text
        listed = http.get("/users", params={"id": user["id"]}, headers=bearer(as_admin.json()["data"]["access_token"]))
        assert listed.json()["data"] == [user]


@pytest.mark.parametrize("path", ["/orders?colour=red", "/users?colour=red", "/orders?status=nonsense"])
async def test_anonymous_callers_learn_nothing_from_a_bad_query(anon: httpx.AsyncClient, path: str) -> None:
    assert_error(await anon.get(path), 401, "UNAUTHORIZED")


def test_a_refused_configuration_does_not_echo_its_secrets() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(env="production", jwt_secret="too-short-but-secret", admin_password="hunter2-hunter2")

    assert "too-short-but-secret" not in str(refused.value)
    assert "hunter2-hunter2" not in str(refused.value)
