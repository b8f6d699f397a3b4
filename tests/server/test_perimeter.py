"""The HTTP perimeter (CONTRACT §6, §8): body cap, media types, security headers, CORS and request ids."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from server.middleware.cors import answer_headers
from server.settings import Settings
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.utils.api import Target, assert_error, create_user, write_targets
from tests.utils.asgi import asgi_client, serving, sign_in
from tests.utils.data import user_body
from tests.utils.server import running_server

CAP = 2_000
ORIGIN = "https://app.example.com"
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
SECURITY_HEADERS = (
    "strict-transport-security",
    "content-security-policy",
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
)
EXPOSED = {"etag", "link", "location", "retry-after", "x-request-id"}
EXPOSED |= {"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_body_bytes": CAP, "cors_origins": (ORIGIN,)})


def sized(body: dict[str, Any], size: int) -> bytes:
    """``body`` as JSON of exactly ``size`` bytes, padded with ``metadata.pad``."""
    body = {**body, "metadata": {"pad": ""}}
    padding = size - len(orjson.dumps(body))
    assert padding >= 0
    body["metadata"]["pad"] = "x" * padding
    raw = orjson.dumps(body)
    assert len(raw) == size
    return raw


class Chunks:
    """A body httpx must send chunked (no ``Content-Length``), counting how much of it was read."""

    def __init__(self, raw: bytes, size: int = 500) -> None:
        self.raw = raw
        self.size = size
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.raw), self.size):
            chunk = self.raw[start : start + self.size]
            self.sent += len(chunk)
            yield chunk


async def totals(client: httpx.AsyncClient) -> tuple[int, int]:
    users = await client.get("/users", params={"per_page": 1})
    orders = await client.get("/orders", params={"per_page": 1})
    return users.json()["meta"]["total"], orders.json()["meta"]["total"]


def assert_security_headers(response: httpx.Response) -> None:
    for name in SECURITY_HEADERS:
        assert len(response.headers.get_list(name)) == 1, (name, response.headers)
    hsts = re.fullmatch(
        r"max-age=(\d+)(; includeSubDomains)?(; preload)?", response.headers["strict-transport-security"]
    )
    assert hsts is not None
    assert int(hsts.group(1)) >= 31_536_000
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] in {"no-referrer", "same-origin", "strict-origin"}


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.startswith("access-control-")}


def assert_no_wildcard(response: httpx.Response) -> None:
    for name, value in cors_headers(response).items():
        assert "*" not in value, (name, value)


def listed(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",") if part.strip()}


# --- body cap ----------------------------------------------------------------------------------


async def _targets(client: httpx.AsyncClient) -> dict[str, Target]:
    """The writing endpoints, and the login (bodies are capped there too)."""
    return {
        **await write_targets(client),
        "login": ("POST", "/auth/token", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
    }


TARGETS = ["create-user", "create-order", "patch-user", "patch-order", "login"]
BODY_TARGETS = ["create-user", "create-order", "patch-user", "patch-order"]


@pytest.mark.parametrize("target", BODY_TARGETS)
async def test_a_body_at_the_cap_is_accepted(client: httpx.AsyncClient, target: str) -> None:
    for chunked in (False, True):
        method, path, body = (await _targets(client))[target]
        raw = sized(body, CAP)

        response = await client.request(method, path, content=Chunks(raw) if chunked else raw, headers=JSON)

        assert response.status_code in (200, 201), (chunked, response.text)
        assert response.request.headers.get("transfer-encoding") == ("chunked" if chunked else None)
        assert response.json()["data"]["metadata"]["pad"] == orjson.loads(raw)["metadata"]["pad"]


@pytest.mark.parametrize("target", TARGETS)
async def test_a_body_over_the_cap_is_413_and_changes_nothing(client: httpx.AsyncClient, target: str) -> None:
    method, path, body = (await _targets(client))[target]
    raw = sized(body, CAP + 1)
    before = await totals(client)
    listing_before = (await client.get("/orders")).json()["data"]

    for chunked in (False, True):
        response = await client.request(method, path, content=Chunks(raw) if chunked else raw, headers=JSON)

        assert_error(response, 413, "PAYLOAD_TOO_LARGE")
        assert response.request.headers.get("transfer-encoding") == ("chunked" if chunked else None)
    assert await totals(client) == before
    assert (await client.get("/orders")).json()["data"] == listing_before


async def test_a_chunked_body_is_read_no_further_than_the_cap(client: httpx.AsyncClient) -> None:
    body = Chunks(sized(user_body(), 1_000_000), size=100)

    response = await client.post("/users", content=body, headers=JSON)

    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert CAP < body.sent <= CAP + body.size


async def test_a_declared_length_over_the_cap_is_refused_before_reading(client: httpx.AsyncClient) -> None:
    body = Chunks(sized(user_body(), 1_000_000), size=100)
    headers = {**JSON, "Content-Length": "1000000"}

    response = await client.post("/users", content=body, headers=headers)

    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert body.sent == 0


def _exchange(port: int, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` and ``body`` (perhaps an unfinished body) over a raw socket; read one response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
        head_part, _, content = received.partition(b"\r\n\r\n")
        status_line, *lines = head_part.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        while len(content) < int(headers["content-length"]):
            chunk = sock.recv(65536)
            assert chunk, content
            content += chunk
    return int(status_line.split()[1]), headers, content


def _request_head(port: int, framing: str) -> bytes:
    return (
        f"POST /api/v1/users HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    ).encode()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@pytest.fixture(scope="module")
def small_cap_server() -> Iterator[str]:
    environment = {
        "MEMDB_MAX_BODY_BYTES": str(CAP),
        "MEMDB_ADMIN_EMAIL": ADMIN_EMAIL,
        "MEMDB_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MEMDB_RATE_LIMIT_PER_MINUTE": "0",
    }
    with running_server(environment) as base:
        yield base


def test_a_real_server_refuses_an_unfinished_chunked_body_at_the_cap(small_cap_server: str) -> None:
    port = httpx.URL(small_cap_server).port
    assert port is not None
    # Half a megabyte announced in 1000-byte chunks, of which only three are ever sent: the answer
    # cannot wait for the rest, so it comes from reading just past the cap.
    raw = sized(user_body(), 500_000)
    sent = b"".join(_chunk(raw[start : start + 1000]) for start in range(0, 3000, 1000))

    status, headers, content = _exchange(port, _request_head(port, "Transfer-Encoding: chunked"), sent)

    assert status == 413
    assert headers["content-type"] == "application/json"
    assert orjson.loads(content)["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert orjson.loads(content)["error"]["request_id"] == headers["x-request-id"]
    assert headers["x-content-type-options"] == "nosniff"


def test_a_real_server_refuses_a_declared_length_before_the_body(small_cap_server: str) -> None:
    port = httpx.URL(small_cap_server).port
    assert port is not None

    status, _, content = _exchange(port, _request_head(port, "Content-Length: 100000000"))

    assert status == 413
    assert orjson.loads(content)["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_a_real_server_takes_chunked_bodies_up_to_the_cap_only(small_cap_server: str) -> None:
    under, over = user_body(), user_body()

    def chunks(raw: bytes) -> Iterator[bytes]:
        yield from (raw[start : start + 500] for start in range(0, len(raw), 500))

    with httpx.Client(base_url=f"{small_cap_server}/api/v1", timeout=10) as http:
        token = http.post("/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).json()
        admin = {"Authorization": f"Bearer {token['data']['access_token']}"}
        accepted = http.post("/users", content=chunks(sized(under, CAP)), headers=JSON)
        refused = http.post("/users", content=chunks(sized(over, 5 * CAP)), headers=JSON)
        found = {
            body["email"]: http.get("/users", params={"email": body["email"]}, headers=admin).json()["meta"]["total"]
            for body in (under, over)
        }
        health = http.get("/health")

    assert accepted.request.headers["transfer-encoding"] == "chunked"
    assert accepted.status_code == 201, accepted.text
    assert_error(refused, 413, "PAYLOAD_TOO_LARGE")
    assert found == {under["email"]: 1, over["email"]: 0}
    assert health.status_code == 200


# --- media types -------------------------------------------------------------------------------


NOT_JSON = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/xml",
    "text/html",
    None,
]


@pytest.mark.parametrize("target", BODY_TARGETS)
async def test_a_body_that_is_not_json_is_415(client: httpx.AsyncClient, target: str) -> None:
    method, path, body = (await _targets(client))[target]
    before = await totals(client)
    listing_before = (await client.get("/orders")).json()["data"]

    for content_type in NOT_JSON:
        headers = {} if content_type is None else {"Content-Type": content_type}
        response = await client.request(method, path, content=orjson.dumps(body), headers=headers)

        assert response.request.headers.get("content-type") == content_type
        assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert await totals(client) == before
    assert (await client.get("/orders")).json()["data"] == listing_before


async def test_a_form_body_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post("/users", data=user_body())

    assert response.request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_json_media_types_are_accepted_however_spelt(client: httpx.AsyncClient) -> None:
    for content_type in ("application/json; charset=utf-8", "Application/JSON"):
        headers = {"Content-Type": content_type}
        response = await client.post("/users", content=orjson.dumps(user_body()), headers=headers)

        assert response.status_code == 201, (content_type, response.text)


# --- security headers and request ids on every response -----------------------------------------


async def _provoke(kind: str, app: FastAPI, settings: Settings, headers: dict[str, str]) -> httpx.Response:
    """A response of ``kind``, to a request carrying ``headers``."""
    token = await sign_in(app, ADMIN_EMAIL, ADMIN_PASSWORD)
    async with asgi_client(app, token) as admin, asgi_client(app) as anon:
        if kind == "200":
            return await admin.get("/users", headers=headers)
        if kind == "201":
            return await admin.post("/users", json=user_body(), headers=headers)
        if kind == "204":
            user = await create_user(admin)
            return await admin.delete(f"/users/{user['id']}", headers=headers)
        if kind == "304":
            user = await create_user(admin)
            etag = (await admin.get(f"/users/{user['id']}")).headers["etag"]
            return await admin.get(f"/users/{user['id']}", headers={**headers, "If-None-Match": etag})
        if kind == "400":
            return await admin.post("/users", content=b"{not json", headers={**headers, **JSON})
        if kind == "401":
            return await anon.get("/users", headers=headers)
        if kind == "404":
            return await admin.get("/no/such/thing", headers=headers)
        if kind == "405":
            return await admin.put("/users", json={}, headers=headers)
        if kind == "413":
            return await admin.post("/users", content=sized(user_body(), CAP + 1), headers={**headers, **JSON})
        if kind == "415":
            return await admin.post("/users", content=b"{}", headers={**headers, "Content-Type": "text/plain"})
        if kind == "422":
            return await admin.post("/users", json={"email": "nobody"}, headers=headers)
        if kind == "preflight":
            preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
            return await anon.options("/users", headers={**headers, **preflight})
        if kind == "500":

            async def boom() -> None:
                raise RuntimeError("boom")

            app.add_api_route("/api/v1/boom", boom)
            return await admin.get("/boom", headers=headers)
    assert kind == "429"
    async with (
        serving(settings.model_copy(update={"rate_limit_per_minute": 1})) as limited,
        asgi_client(limited, address="192.0.2.1") as http,
    ):
        await http.get("/users")
        return await http.get("/users", headers=headers)


KINDS = ["200", "201", "204", "304", "400", "401", "404", "405", "413", "415", "422", "429", "500", "preflight"]


@pytest.mark.parametrize("kind", KINDS)
async def test_every_response_has_the_security_headers_and_a_request_id(
    app: FastAPI, settings: Settings, kind: str
) -> None:
    given = f"perimeter-{kind}.{uuid.uuid4().hex}"

    echoing = await _provoke(kind, app, settings, {"X-Request-ID": given})
    generating = await _provoke(kind, app, settings, {})

    for response in (echoing, generating):
        assert response.status_code == (int(kind) if kind.isdigit() else 200)
        assert_security_headers(response)
        [request_id] = response.headers.get_list("x-request-id")
        assert REQUEST_ID.fullmatch(request_id)
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/json"
            assert response.json()["error"]["request_id"] == request_id
    assert echoing.headers["x-request-id"] == given
    assert generating.headers["x-request-id"] != given


VALID_IDS = ["a", "Z", "7", "-", "A" * 128, "req-1.2_3", "0123456789abcdef" * 8]
INVALID_IDS = [
    b"",
    b"A" * 129,
    b"has space",
    b"semi;colon",
    b"<script>",
    b"a/b",
    b"a:b",
    b"a,b",
    b"\xc3\xbcn",
    b"a\x7fb",
]


async def test_a_valid_request_id_is_echoed(anon: httpx.AsyncClient) -> None:
    for request_id in VALID_IDS:
        found = await anon.get("/health", headers={"X-Request-ID": request_id})
        missing = await anon.get("/nowhere", headers={"X-Request-ID": request_id})

        assert found.headers["x-request-id"] == request_id
        assert missing.headers["x-request-id"] == request_id
        assert assert_error(missing, 404, "NOT_FOUND")["request_id"] == request_id


async def test_an_invalid_request_id_is_replaced(anon: httpx.AsyncClient) -> None:
    for request_id in INVALID_IDS:
        first = await anon.get("/nowhere", headers={b"X-Request-ID": request_id})
        second = await anon.get("/nowhere", headers={b"X-Request-ID": request_id})

        generated = first.headers["x-request-id"]
        assert generated.encode() != request_id
        assert REQUEST_ID.fullmatch(generated), request_id
        assert first.headers.get_list("x-request-id") == [generated]
        assert assert_error(first, 404, "NOT_FOUND")["request_id"] == generated
        assert second.headers["x-request-id"] != generated  # made afresh for each request


async def test_generated_request_ids_differ(anon: httpx.AsyncClient) -> None:
    ids = {(await anon.get("/health")).headers["x-request-id"] for _ in range(20)}

    assert len(ids) == 20
    assert all(REQUEST_ID.fullmatch(request_id) for request_id in ids)
    for request_id in ids:  # a random (version 4) UUID in hex, as before
        parsed = uuid.UUID(request_id)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, request_id)


# --- CORS ---------------------------------------------------------------------------------------


async def test_an_allowed_origin_is_echoed_with_the_exposed_headers(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    responses = {
        200: await client.get("/users", headers={"Origin": ORIGIN}),
        201: await client.post("/users", json=user_body(), headers={"Origin": ORIGIN}),
        401: await anon.get("/users", headers={"Origin": ORIGIN}),
        404: await client.get("/no/such/thing", headers={"Origin": ORIGIN}),
        413: await client.post("/users", content=sized(user_body(), CAP + 1), headers={"Origin": ORIGIN, **JSON}),
    }

    for status, response in responses.items():
        assert response.status_code == status
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert listed(response.headers["access-control-expose-headers"]) >= EXPOSED
        assert "origin" in listed(response.headers["vary"])
        assert "access-control-allow-credentials" not in response.headers
        assert_no_wildcard(response)


async def test_another_origin_is_granted_nothing(client: httpx.AsyncClient) -> None:
    for origin in ("https://evil.example.com", "http://app.example.com", "https://app.example.com.evil.net", "null"):
        response = await client.get("/users", headers={"Origin": origin})

        assert response.status_code == 200
        # Starlette still lists the exposed header names, which grant nothing without an allowed origin.
        assert [name for name in cors_headers(response) if name.startswith("access-control-allow-")] == []
        assert_no_wildcard(response)


PREFLIGHTS = [
    ("/users", "POST", "content-type, authorization"),
    ("/users/1", "PATCH", "authorization, content-type, if-match, x-request-id"),
    ("/orders/1", "DELETE", "authorization, if-match"),
    ("/orders", "GET", "authorization, if-none-match"),
]
REFUSED_PREFLIGHTS = [
    ("https://evil.example.com", "POST", {"Access-Control-Request-Headers": "content-type"}),
    ("https://evil.example.com", "GET", {}),
    (ORIGIN, "PUT", {}),
    (ORIGIN, "POST", {"Access-Control-Request-Headers": "x-evil"}),
]


async def test_a_preflight_from_an_allowed_origin_is_answered(anon: httpx.AsyncClient) -> None:
    for path, method, request_headers in PREFLIGHTS:
        headers = {
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": request_headers,
        }

        response = await anon.options(path, headers=headers)

        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert {"get", "post", "patch", "delete"} <= listed(response.headers["access-control-allow-methods"])
        assert listed(request_headers) <= listed(response.headers["access-control-allow-headers"])
        assert int(response.headers["access-control-max-age"]) > 0
        assert_no_wildcard(response)
        assert_security_headers(response)


async def test_a_refused_preflight_is_400_in_the_error_envelope(anon: httpx.AsyncClient) -> None:
    for origin, method, extra in REFUSED_PREFLIGHTS:
        headers = {"Origin": origin, "Access-Control-Request-Method": method, **extra}

        response = await anon.options("/users", headers=headers)

        assert_error(response, 400, "BAD_REQUEST")
        assert "access-control-allow-origin" not in response.headers
        assert_no_wildcard(response)
        assert_security_headers(response)


@pytest.mark.parametrize(
    ("origins", "origin", "allowed"),
    [
        ((ORIGIN,), ORIGIN, ORIGIN),
        (("*",), "https://anyone.example.com", "*"),
        ((ORIGIN,), "https://evil.example.com", None),
        ((ORIGIN,), None, None),
        ((), ORIGIN, None),
    ],
)
def test_an_answer_sent_outside_the_middleware_gets_the_same_cors_grant(
    origins: tuple[str, ...], origin: str | None, allowed: str | None
) -> None:
    headers = answer_headers(origins, origin)
    assert headers.get("Access-Control-Allow-Origin") == allowed
    assert (headers == {}) is (allowed is None)


async def test_a_listed_wildcard_lets_any_origin_read_but_never_with_credentials(settings: Settings) -> None:
    """``MEMDB_CORS_ORIGINS=*`` is the operator's explicit choice: any page may read, none with cookies."""
    anyone = "https://anyone.example.com"
    async with serving(settings.model_copy(update={"cors_origins": ("*",)})) as app:
        token = await sign_in(app, ADMIN_EMAIL, ADMIN_PASSWORD)
        async with asgi_client(app, token) as http:
            simple = await http.get("/users", headers={"Origin": anyone})
            preflight = await http.options(
                "/users", headers={"Origin": anyone, "Access-Control-Request-Method": "POST"}
            )

    assert simple.status_code == 200
    assert preflight.status_code == 200
    for response in (simple, preflight):
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers


async def test_without_configured_origins_there_are_no_cors_headers(settings: Settings) -> None:
    async with serving(settings.model_copy(update={"cors_origins": ()})) as app:
        token = await sign_in(app, ADMIN_EMAIL, ADMIN_PASSWORD)
        async with asgi_client(app, token) as http:
            simple = await http.get("/users", headers={"Origin": ORIGIN})
            created = await http.post("/users", json=user_body(), headers={"Origin": ORIGIN})
            preflight = await http.options(
                "/users", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
            )

    assert simple.status_code == 200
    assert created.status_code == 201
    assert_error(preflight, 405, "METHOD_NOT_ALLOWED")
    for response in (simple, created, preflight):
        assert cors_headers(response) == {}
        assert "*" not in response.headers.values()
