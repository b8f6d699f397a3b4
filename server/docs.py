"""The API docs, served with no internet access: ``/docs`` (Swagger UI), ``/redoc`` (ReDoc) and ``/openapi.json``.

FastAPI's own pages load Swagger UI and ReDoc from a CDN and start them with
inline scripts and styles, which our content security policy (``script-src
'self'; style-src 'self'``) forbids; so ``create_app`` turns them off and
:func:`install` serves pages that reference only this origin: the vendored
assets in ``server/static/docs/`` (Swagger UI and ReDoc from the npm registry,
see the README there and ``scripts/vendor-docs-assets``) under
:data:`ASSETS_URL`, plus ``swagger-init.js``, which starts Swagger UI and points
its "Authorize" dialog at the OAuth2 password flow of ``/api/v1/auth/token``
(unwrapping our response envelope for it). The assets are cached for a day and
the OpenAPI document for five minutes (``Cache-Control: public``); the pages
are revalidated every time and name each asset with a hash of its content, so
new assets are picked up at once. Only ``/redoc`` gets a wider policy,
:data:`REDOC_CONTENT_SECURITY_POLICY`, for the reasons given in
``server.middleware.security_headers``.
"""

from __future__ import annotations

import functools
import hashlib
import html
import os
from pathlib import Path
from typing import Final

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from server.middleware.security_headers import CONTENT_SECURITY_POLICY

STATIC_DIR: Final = Path(__file__).resolve().parent / "static" / "docs"
ASSETS_URL: Final = "/docs-assets"
OPENAPI_URL: Final = "/openapi.json"
SWAGGER_URL: Final = "/docs"
REDOC_URL: Final = "/redoc"
ASSET_CACHE_CONTROL: Final = "public, max-age=86400"
OPENAPI_CACHE_CONTROL: Final = "public, max-age=300"
PAGE_CACHE_CONTROL: Final = "no-cache"

# ReDoc 2.5.4 (styled-components) adds two <style> elements: an empty one that it fills through the CSSOM,
# and perfect-scrollbar's fixed CSS; and it builds its search worker from a blob: URL. Only those two
# stylesheets, by hash, and blob: workers (which only our own scripts can mint) are let in, on /redoc only.
_EMPTY_STYLE_HASH: Final = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
_SCROLLBAR_STYLE_HASH: Final = "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='"
REDOC_CONTENT_SECURITY_POLICY: Final = (
    CONTENT_SECURITY_POLICY.replace(
        "style-src 'self';", f"style-src 'self' {_EMPTY_STYLE_HASH} {_SCROLLBAR_STYLE_HASH};", 1
    )
    + "; worker-src 'self' blob:"
)


class CachedStaticFiles(StaticFiles):
    """Static files that browsers and proxies may keep for a day."""

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = ASSET_CACHE_CONTROL
        return response


@functools.cache
def asset_url(name: str) -> str:
    """Where an asset is served, with a hash of its content to bust caches when it changes."""
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
    return f"{ASSETS_URL}/{name}?v={digest}"


def _page(title: str, html_class: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en" class="{html_class}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" type="image/png" href="{asset_url("favicon-32x32.png")}">
<link rel="stylesheet" href="{asset_url("docs.css")}">
{body}
</html>
"""


def swagger_page(title: str, token_url: str) -> str:
    """Swagger UI's page: a mount point carrying its settings, the bundle and its start-up script."""
    mount = (
        f'<div id="swagger-ui" data-openapi-url="{html.escape(OPENAPI_URL)}" data-token-url="{html.escape(token_url)}">'
        "</div>"
    )
    return _page(
        f"{title} - Swagger UI",
        "swagger-page",
        f"""<link rel="stylesheet" href="{asset_url("swagger-ui.css")}">
</head>
<body>
{mount}
<script src="{asset_url("swagger-ui-bundle.js")}"></script>
<script src="{asset_url("swagger-init.js")}"></script>
</body>""",
    )


def redoc_page(title: str) -> str:
    """ReDoc's page: its standalone bundle starts itself on the ``<redoc spec-url>`` element."""
    return _page(
        f"{title} - ReDoc",
        "redoc-page",
        f"""</head>
<body>
<redoc spec-url="{html.escape(OPENAPI_URL)}"></redoc>
<script src="{asset_url("redoc.standalone.js")}"></script>
</body>""",
    )


def install(app: FastAPI, token_url: str) -> None:
    """Serve the docs pages, their assets and the OpenAPI document on ``app`` (built with the docs URLs off)."""
    swagger_html = swagger_page(app.title, token_url)
    redoc_html = redoc_page(app.title)

    async def openapi(request: Request) -> Response:
        return JSONResponse(app.openapi(), headers={"Cache-Control": OPENAPI_CACHE_CONTROL})

    async def swagger(request: Request) -> Response:
        return HTMLResponse(swagger_html, headers={"Cache-Control": PAGE_CACHE_CONTROL})

    async def redoc(request: Request) -> Response:
        # Set here, so SecurityHeadersMiddleware adds no stricter second policy (browsers enforce both).
        headers = {"Cache-Control": PAGE_CACHE_CONTROL, "Content-Security-Policy": REDOC_CONTENT_SECURITY_POLICY}
        return HTMLResponse(redoc_html, headers=headers)

    app.add_route(OPENAPI_URL, openapi, include_in_schema=False)
    app.add_route(SWAGGER_URL, swagger, include_in_schema=False)
    app.add_route(REDOC_URL, redoc, include_in_schema=False)
    app.mount(ASSETS_URL, CachedStaticFiles(directory=STATIC_DIR), name="docs-assets")
