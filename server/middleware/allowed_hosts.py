"""Requests whose ``Host`` names none of ``MEMDB_ALLOWED_HOSTS`` get ``400`` in the error envelope.

Starlette's ``TrustedHostMiddleware`` decides (exact names, ``*.example.com``
wildcards, IPv6 literals, the port ignored, a missing or malformed ``Host``
refused), but answers a refusal in plain text. So :class:`HostGate` runs it in
front of a stand-in app that only marks the request admitted; its own answer
goes nowhere, and the edge (:mod:`server.middleware.edge`) answers a request it
did not admit with :func:`refuse_host`, in the envelope.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import Message, Receive, Scope, Send

from server.envelope import send_error

_ADMITTED = "memdb.host_admitted"


async def _discard(message: Message) -> None:
    """Where the gate's own plain-text refusal goes."""


async def _admit(scope: Scope, receive: Receive, send: Send) -> None:
    scope[_ADMITTED] = True


class HostGate:
    def __init__(self, allowed_hosts: Sequence[str]) -> None:
        self.gate = TrustedHostMiddleware(_admit, allowed_hosts=list(allowed_hosts), www_redirect=False)

    async def admits(self, scope: Scope, receive: Receive) -> bool:
        """Whether the request's ``Host`` is one this service answers for."""
        await self.gate(scope, receive, _discard)
        return bool(scope.pop(_ADMITTED, False))


async def refuse_host(scope: Scope, send: Send) -> None:
    await send_error(scope, send, 400, "BAD_REQUEST", "the Host header names no host this service answers for")
