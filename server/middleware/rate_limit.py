"""Rate limiting per client, with ``X-Rate-Limit-*`` headers on every limited answer.

The client is the user id of a validly signed bearer token, else the client
address (which Uvicorn takes from proxy headers only when they are trusted).
``/auth/token`` additionally has its own, stricter per-address allowance
against password guessing. Probes, metrics and CORS preflights are exempt.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.envelope import send_error
from server.paths import LOGIN_PATH, PROBE_PATHS
from server.security.limits import RateLimiter, Verdict


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((value for key, value in scope["headers"] if key == name), None)


def _is_preflight(scope: Scope) -> bool:
    return scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method") is not None


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        login_limiter: RateLimiter,
        subject_of: Callable[[str], str | None],
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.login_limiter = login_limiter
        self.subject_of = subject_of

    def _client_key(self, scope: Scope) -> str:
        authorization = _header(scope, b"authorization")
        if authorization is not None:
            scheme, _, token = authorization.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                subject = self.subject_of(token.strip())
                if subject is not None:
                    return f"user:{subject}"
        return f"addr:{self._address(scope)}"

    @staticmethod
    def _address(scope: Scope) -> str:
        client = scope.get("client")
        return str(client[0]) if client else "unknown"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBE_PATHS or _is_preflight(scope):
            await self.app(scope, receive, send)
            return
        login_attempt = scope["path"] == LOGIN_PATH
        address_key = f"addr:{self._address(scope)}"
        # A login counts against the address even when it carries someone's token.
        verdict = await self.limiter.check(address_key if login_attempt else self._client_key(scope))
        if verdict.allowed and login_attempt:
            login = await self.login_limiter.check(address_key)
            if not login.allowed:
                verdict = login
        if not verdict.allowed:
            await self._refuse(scope, send, verdict)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_headers(verdict)]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, verdict: Verdict) -> None:
        message = f"too many requests; retry in {verdict.retry_after} s"
        headers = [(b"retry-after", str(verdict.retry_after).encode()), *_headers(verdict)]
        await send_error(scope, send, 429, "RATE_LIMITED", message, headers)


def _headers(verdict: Verdict) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-rate-limit-limit", str(verdict.limit).encode()),
        (b"x-rate-limit-remaining", str(verdict.remaining).encode()),
        (b"x-rate-limit-reset", str(verdict.reset_seconds).encode()),
    ]
