"""The API docs: ``/docs``, ``/redoc`` and ``/openapi.json``, over ASGI and in a real headless Chromium.

Over ASGI: the pages reference only this origin's assets, with no inline script
or style; the assets and the OpenAPI document are publicly cacheable; only
``/redoc`` gets its slightly wider policy. In Chromium (``chromium`` or
``chromium-browser`` on PATH, which the README asks for: these tests fail, never
skip, without it, and the failure says how to install it): both pages
render the API's operations from a real ``python -m server``, with no content
security policy violation in the browser's console.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from server import docs
from server.middleware.security_headers import CONTENT_SECURITY_POLICY
from tests.utils.server import running_server

CHROMIUM_NAMES = ("chromium", "chromium-browser")  # Debian's name, and the one some other distributions use
INSTALL_CHROMIUM = "apt-get install chromium (as root, on Debian); elsewhere, put Chromium on PATH as chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=10000",
)
# How Chromium words a blocked action in its console log ("... violates the following Content Security
# Policy directive ...", "Refused to ..."), and a script error (ReDoc logs one when it cannot render).
CONSOLE_TROUBLE = re.compile(r"Content Security Policy|Refused to|Uncaught|CONSOLE.*Error", re.IGNORECASE)
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-init.js": "text/javascript",
    "redoc.standalone.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "docs.css": "text/css",
    "favicon-32x32.png": "image/png",
}


@pytest.fixture
async def web(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def _references(page: str) -> list[str]:
    return re.findall(r'(?:src|href|spec-url|data-[a-z-]+-url)="([^"]*)"', page)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_docs_pages_reference_only_local_assets_and_nothing_inline(web: httpx.AsyncClient, path: str) -> None:
    response = await web.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    page = response.text
    assert not re.search(r"https?://", page), "the docs pages must not load anything from another host"
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "no inline scripts"
    assert "<style" not in page
    assert " style=" not in page
    assert not re.search(r"\son[a-z]+=", page), "no inline event handlers"
    references = _references(page)
    assert references
    for reference in references:
        assert reference.startswith((f"{docs.ASSETS_URL}/", docs.OPENAPI_URL, "/api/v1/")), reference
        if reference.startswith(docs.ASSETS_URL):
            assert (await web.get(reference)).status_code == 200, reference


async def test_swagger_page_carries_the_openapi_and_token_urls_for_its_init_script(web: httpx.AsyncClient) -> None:
    page = (await web.get("/docs")).text

    assert 'data-openapi-url="/openapi.json"' in page
    assert 'data-token-url="/api/v1/auth/token"' in page
    assert page.index("/swagger-ui-bundle.js") < page.index("/swagger-init.js")


@pytest.mark.parametrize(("name", "media_type"), ASSETS.items())
async def test_docs_assets_are_served_locally_and_publicly_cacheable(
    web: httpx.AsyncClient, name: str, media_type: str
) -> None:
    response = await web.get(f"{docs.ASSETS_URL}/{name}")

    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert response.headers["cache-control"] == "public, max-age=86400"
    assert response.headers["etag"]
    assert response.content == (docs.STATIC_DIR / name).read_bytes()


async def test_a_docs_asset_revalidates_with_its_etag(web: httpx.AsyncClient) -> None:
    first = await web.get(f"{docs.ASSETS_URL}/swagger-ui.css")
    again = await web.get(f"{docs.ASSETS_URL}/swagger-ui.css", headers={"If-None-Match": first.headers["etag"]})

    assert again.status_code == 304
    assert again.headers["cache-control"] == "public, max-age=86400"


async def test_an_unknown_docs_asset_is_not_found(web: httpx.AsyncClient) -> None:
    response = await web.get(f"{docs.ASSETS_URL}/no-such-file.js")

    assert response.status_code == 404
    assert "public" not in response.headers.get("cache-control", "")


def test_vendored_assets_match_their_recorded_checksums() -> None:
    recorded = (docs.STATIC_DIR / "SHA256SUMS").read_text().split("\n")
    sums = dict(reversed(line.split("  ", 1)) for line in recorded if line)

    assert set(sums) == {"favicon-32x32.png", "redoc.standalone.js", "swagger-ui-bundle.js", "swagger-ui.css"}
    for name, digest in sums.items():
        assert hashlib.sha256((docs.STATIC_DIR / name).read_bytes()).hexdigest() == digest, name


async def test_openapi_document_is_cacheable_and_declares_the_oauth2_password_flow(web: httpx.AsyncClient) -> None:
    response = await web.get("/openapi.json")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=300"
    spec = response.json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"] == {
        "type": "oauth2",
        "flows": {"password": {"scopes": {}, "tokenUrl": "/api/v1/auth/token"}},
    }
    assert spec["paths"]["/api/v1/users"]["get"]["security"] == [{"OAuth2PasswordBearer": []}]
    assert not any(path in spec["paths"] for path in ("/docs", "/redoc", "/openapi.json"))


async def test_every_reference_in_the_openapi_document_resolves(web: httpx.AsyncClient) -> None:
    """ReDoc refuses to render anything at all ("Invalid reference token") if one ``$ref`` dangles."""
    spec = (await web.get("/openapi.json")).json()

    dangling = [(where, ref) for where, ref in _refs(spec, "") if _resolve(spec, ref) is None]

    assert dangling == []


def _refs(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield where, value
            else:
                yield from _refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _refs(value, f"{where}/{index}")


def _resolve(spec: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        return None
    node: Any = spec
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or token not in node:
            return None
        node = node[token]
    return node


async def test_only_redoc_gets_its_wider_content_security_policy(web: httpx.AsyncClient) -> None:
    redoc = await web.get("/redoc")
    swagger = await web.get("/docs")
    health = await web.get("/api/v1/health")

    assert redoc.headers.get_list("content-security-policy") == [docs.REDOC_CONTENT_SECURITY_POLICY]
    assert swagger.headers.get_list("content-security-policy") == [CONTENT_SECURITY_POLICY]
    assert health.headers.get_list("content-security-policy") == [CONTENT_SECURITY_POLICY]
    strict = dict(_directives(CONTENT_SECURITY_POLICY))
    wider = dict(_directives(docs.REDOC_CONTENT_SECURITY_POLICY))
    assert {name: value for name, value in wider.items() if strict.get(name) != value} == {
        "style-src": wider["style-src"],
        "worker-src": "'self' blob:",
    }
    assert "unsafe" not in wider["style-src"]
    assert wider["style-src"].startswith("'self' 'sha256-")


def _directives(policy: str) -> Iterator[tuple[str, str]]:
    for directive in policy.split(";"):
        name, _, value = directive.strip().partition(" ")
        yield name, value


# --- a real browser -------------------------------------------------------------------------------


def _chromium(url: str, profile: Path) -> tuple[str, list[str]]:
    """The DOM of ``url`` once its scripts have run, and the console lines that report trouble."""
    chromium = next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    if chromium is None:
        pytest.fail(f"Chromium not found on PATH: the docs browser tests need it. Install it: {INSTALL_CHROMIUM}")
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, [line for line in result.stderr.splitlines() if CONSOLE_TROUBLE.search(line)]


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[str, dict[str, Any]]]:
    """A real server, and the OpenAPI document it serves."""
    with running_server() as base:
        yield base, httpx.get(f"{base}/openapi.json", timeout=10).json()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, operation) for path, item in spec["paths"].items() for method, operation in item.items()]


@pytest.mark.slow
def test_chromium_reports_a_content_security_policy_violation(tmp_path: Path) -> None:
    """The check below is only worth something if Chromium still logs violations the way it expects."""
    page = tmp_path / "violating.html"
    page.write_text(
        """<!doctype html><meta http-equiv="Content-Security-Policy" content="script-src 'self'">"""
        """<script>document.title = "ran"</script>"""
    )

    _, trouble = _chromium(page.as_uri(), tmp_path / "profile")

    assert any("Content Security Policy" in line for line in trouble), trouble


@pytest.mark.slow
def test_swagger_ui_renders_every_operation_in_chromium(live: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    base, spec = live

    dom, trouble = _chromium(f"{base}/docs", tmp_path)

    assert trouble == []
    rendered = re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom)
    assert sorted(rendered) == sorted(path for path, _, _ in _operations(spec))
    assert "/api/v1/users" in rendered
    assert re.search(r'<button[^>]*class="[^"]*\bauthorize\b', dom), "the Authorize button"


@pytest.mark.slow
def test_redoc_renders_every_operation_in_chromium(live: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    base, spec = live

    dom, trouble = _chromium(f"{base}/redoc", tmp_path)

    assert trouble == []
    titles = dict(re.findall(r'<h2[^>]*><a[^>]*href="#tag/[^"/]+/operation/([^"]+)"[^>]*></a>([^<]+)</h2>', dom))
    expected = {operation["operationId"]: operation["summary"] for _, _, operation in _operations(spec)}
    assert {name: title.strip() for name, title in titles.items()} == expected
    assert titles["list_users"].strip() == "List Users"
