"""A ``Location`` never echoes the ``Host`` a client sent.

Routes answer with paths (``/api/v1/users/…``), but the framework's own
trailing-slash redirect builds an absolute URL from the request's ``Host``
(``Host: evil.example`` → ``location: http://evil.example/api/v1/users``). Every
``Location`` leaving the app is cut to its path and query here, then, when
``MEMDB_PUBLIC_URL`` is set, put under that origin. ``Link`` headers are built
the same way where they are made (``server.responses.link_header``).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

Headers = list[tuple[bytes, bytes]]


class Locator:
    """Rewrites the ``Location`` of an answer under ``public_url`` (or as a bare path)."""

    def __init__(self, public_url: str | None) -> None:
        self.origin = public_url or ""

    def relocate(self, headers: Headers) -> Headers:
        """``headers`` with any ``Location`` cut to its path and query, under the public origin."""
        return [
            (name, self._located(value)) if name.lower() == b"location" else (name, value) for name, value in headers
        ]

    def _located(self, location: bytes) -> bytes:
        parts = urlsplit(location.decode("latin-1"))
        return (self.origin + urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))).encode("latin-1")
