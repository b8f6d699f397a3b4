"""Security headers on every response: HSTS, CSP, framing, sniffing, referrer.

The content security policy allows only this origin's own scripts, styles and
images (the API docs serve their assets locally), and no framing at all.
Swagger UI (``/docs``) renders under it as it is. ReDoc (``/redoc``) cannot:
its bundle injects two ``<style>`` elements (an empty one that
styled-components fills through the CSSOM, and perfect-scrollbar's fixed CSS)
and runs its search in a Web Worker built from a ``blob:`` URL. So that one
page sets its own policy (``server.docs.REDOC_CONTENT_SECURITY_POLICY``: those
two stylesheets by hash, and ``blob:`` workers, which only our own scripts can
mint), which is kept here rather than joined by a second, stricter one —
browsers enforce every policy a response carries. The edge
(:mod:`server.middleware.edge`) adds them with :func:`with_security_headers`.
"""

from __future__ import annotations

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


def with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` plus each security header a handler has not already set (the 500 handler sets them all)."""
    present = {name.lower() for name, _ in headers}
    return [*headers, *(header for header in HEADERS if header[0] not in present)]
