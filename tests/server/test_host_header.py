"""The ``Host`` header is never echoed, and ``MEMDB_ALLOWED_HOSTS`` refuses the others (over a real socket).

``Link`` and ``Location`` are relative references, or under ``MEMDB_PUBLIC_URL``
when it is set, whatever ``Host`` a client sends; the framework's own
trailing-slash redirect included.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from pydantic import ValidationError

from server.settings import Settings
from tests.utils.api import assert_error
from tests.utils.data import user_body
from tests.utils.server import running_server

ADMIN = {"email": "ops@example.com", "password": "ops-password-2026"}
EVIL = {"Host": "evil.example"}
PUBLIC_URL = "https://memdb.example.com"


def _serve(**settings: str) -> Iterator[httpx.Client]:
    environment = {
        "MEMDB_ADMIN_EMAIL": ADMIN["email"],
        "MEMDB_ADMIN_PASSWORD": ADMIN["password"],
        "MEMDB_RATE_LIMIT_PER_MINUTE": "0",
        **{f"MEMDB_{name.upper()}": value for name, value in settings.items()},
    }
    with running_server(environment) as base, httpx.Client(base_url=base, timeout=10) as http:
        token = http.post("/api/v1/auth/token", json=ADMIN).json()["data"]["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield http


@pytest.fixture(scope="module")
def plain() -> Iterator[httpx.Client]:
    yield from _serve()


@pytest.fixture(scope="module")
def public() -> Iterator[httpx.Client]:
    yield from _serve(public_url=PUBLIC_URL)


@pytest.fixture(scope="module")
def guarded() -> Iterator[httpx.Client]:
    # 127.0.0.1 for the health checks (the test's, like the container's, call the loopback address).
    yield from _serve(allowed_hosts="memdb.example.com, *.internal.example, 127.0.0.1")


def _link_targets(response: httpx.Response) -> list[str]:
    return re.findall(r"<([^>]*)>", response.headers["link"])


def test_links_are_relative_whatever_the_host(plain: httpx.Client) -> None:
    response = plain.get("/api/v1/users", params={"per_page": 1, "sort": "email"}, headers=EVIL)

    assert response.status_code == 200
    targets = _link_targets(response)
    assert targets
    for target in targets:
        url = httpx.URL(target)
        assert (url.scheme, url.host, url.path) == ("", "", "/api/v1/users")
        assert {url.params["per_page"], url.params["sort"]} == {"1", "email"}


def test_a_created_resource_is_located_by_its_path(plain: httpx.Client) -> None:
    response = plain.post("/api/v1/users", json=user_body(), headers=EVIL)

    assert response.status_code == 201
    assert response.headers["location"] == f"/api/v1/users/{response.json()['data']['id']}"


def test_the_trailing_slash_redirect_does_not_echo_the_host(plain: httpx.Client) -> None:
    response = plain.get("/api/v1/users/", params={"per_page": 1}, headers=EVIL)

    assert response.status_code == 307
    assert response.headers["location"] == "/api/v1/users?per_page=1"


def test_with_a_public_url_every_link_names_it(public: httpx.Client) -> None:
    listing = public.get("/api/v1/users", params={"per_page": 1}, headers=EVIL)
    created = public.post("/api/v1/users", json=user_body(), headers=EVIL)
    redirect = public.get("/api/v1/users/", headers=EVIL)

    assert all(target.startswith(f"{PUBLIC_URL}/api/v1/users?per_page=1&page=") for target in _link_targets(listing))
    assert created.headers["location"] == f"{PUBLIC_URL}/api/v1/users/{created.json()['data']['id']}"
    assert redirect.headers["location"] == f"{PUBLIC_URL}/api/v1/users"
    assert "evil.example" not in str(listing.headers) + str(created.headers) + str(redirect.headers)


@pytest.mark.parametrize("host", ["evil.example", "memdb.example.com.evil.example", "internal.example", "127.0.0.2"])
def test_an_unlisted_host_is_refused_in_the_envelope(guarded: httpx.Client, host: str) -> None:
    response = guarded.get("/api/v1/users", headers={"Host": host})

    error = assert_error(response, 400, "BAD_REQUEST")
    assert error["message"] == "the Host header names no host this service answers for"
    assert error["request_id"] == response.headers["x-request-id"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert host not in response.text


@pytest.mark.parametrize("host", ["memdb.example.com", "MEMDB.example.com:8443", "api.internal.example"])
def test_a_listed_host_is_served(guarded: httpx.Client, host: str) -> None:
    response = guarded.get("/api/v1/users", params={"per_page": 1}, headers={"Host": host})

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("given", "kept"),
    [("https://memdb.example.com/", "https://memdb.example.com"), ("http://10.0.0.5:8000", "http://10.0.0.5:8000")],
)
def test_a_public_url_is_kept_as_its_origin(given: str, kept: str) -> None:
    assert Settings(public_url=given).public_url == kept


@pytest.mark.parametrize(
    "url", ["memdb.example.com", "ftp://memdb.example.com", "https://x.example/api", "https://x/?a=1"]
)
def test_a_public_url_that_is_not_an_origin_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="must be an origin"):
        Settings(public_url=url)


def test_allowed_hosts_are_a_comma_list_whose_wildcards_open_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMDB_ALLOWED_HOSTS", "memdb.example.com, *.internal.example,,127.0.0.1")

    assert Settings().allowed_hosts == ("memdb.example.com", "*.internal.example", "127.0.0.1")
    for pattern in ("memdb.*.com", "*example.com"):
        with pytest.raises(ValidationError, match="a wildcard may only open a name"):
            Settings(allowed_hosts=(pattern,))
