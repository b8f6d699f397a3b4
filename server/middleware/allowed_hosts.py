"""Requests whose ``Host`` names none of ``MEMDB_ALLOWED_HOSTS`` get ``400`` in the error envelope.

Starlette's ``TrustedHostMiddleware`` decides (exact names, ``*.example.com``
wildcards, IPv6 literals, the port ignored, a missing or malformed ``Host``
refused), but answers a refusal in plain text. So it guards a stand-in app that
only marks the request admitted, its own answer goes nowhere, and a request it
did not admit is answered here in the envelope; an admitted one goes on to the
real app.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.envelope import send_error

_ADMITTED = "memdb.host_admitted"


async def _discard(message: Message) -> None:
    """Where the gate's own plain-text refusal goes."""


async def _admit(scope: Scope, receive: Receive, send: Send) -> None:
    scope[_ADMITTED] = True


class AllowedHostsMiddleware:
    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.gate = TrustedHostMiddleware(_admit, allowed_hosts=list(allowed_hosts), www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.gate(scope, receive, _discard)
        if scope.pop(_ADMITTED, False):
            await self.app(scope, receive, send)
            return
        await send_error(scope, send, 400, "BAD_REQUEST", "the Host header names no host this service answers for")
