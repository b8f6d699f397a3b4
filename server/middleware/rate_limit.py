"""Rate limiting per client, with ``X-Rate-Limit-*`` headers on every limited answer.

The client is the user id of a validly signed bearer token, else the client
address (which Uvicorn takes from proxy headers only when they are trusted).
The token is verified once per request (:func:`~server.security.bearer.checked_bearer`)
and authentication reuses that answer. ``/auth/token`` additionally has its
own, stricter per-address allowance against password guessing. Probes,
metrics and CORS preflights are exempt. The edge (:mod:`server.middleware.edge`)
asks :meth:`RateLimits.verdict` before the application runs.
"""

from __future__ import annotations

from starlette.types import Scope, Send

from server.envelope import send_error
from server.paths import LOGIN_PATH, PROBE_PATHS
from server.security.bearer import checked_bearer
from server.security.limits import RateLimiter, Verdict
from server.security.tokens import TokenService


def _is_preflight(scope: Scope) -> bool:
    return scope["method"] == "OPTIONS" and any(
        name == b"access-control-request-method" for name, _ in scope["headers"]
    )


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class RateLimits:
    """The per-client allowance and the login allowance, and who counts as which client."""

    def __init__(self, limiter: RateLimiter, login_limiter: RateLimiter, tokens: TokenService) -> None:
        self.limiter = limiter
        self.login_limiter = login_limiter
        self.tokens = tokens

    @staticmethod
    def exempt(scope: Scope) -> bool:
        return scope["path"] in PROBE_PATHS or _is_preflight(scope)

    def _client_key(self, scope: Scope) -> str:
        bearer = checked_bearer(scope, self.tokens)
        if bearer is not None:
            # An expired (but genuine) token still names its user: it is counted against them.
            subject = str(bearer.claims.user_id) if bearer.claims is not None else self.tokens.subject(bearer.token)
            if subject is not None:
                return f"user:{subject}"
        return f"addr:{_address(scope)}"

    async def verdict(self, scope: Scope) -> Verdict:
        """Count this request against its client's allowance (and a login against its address's too)."""
        login_attempt = scope["path"] == LOGIN_PATH
        address_key = f"addr:{_address(scope)}"
        # A login counts against the address even when it carries someone's token.
        verdict = await self.limiter.check(address_key if login_attempt else self._client_key(scope))
        if verdict.allowed and login_attempt:
            login = await self.login_limiter.check(address_key)
            if not login.allowed:
                verdict = login
        return verdict


async def refuse_rate_limited(scope: Scope, send: Send, verdict: Verdict) -> None:
    message = f"too many requests; retry in {verdict.retry_after} s"
    headers = [(b"retry-after", str(verdict.retry_after).encode()), *rate_headers(verdict)]
    await send_error(scope, send, 429, "RATE_LIMITED", message, headers)


def rate_headers(verdict: Verdict) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-rate-limit-limit", str(verdict.limit).encode()),
        (b"x-rate-limit-remaining", str(verdict.remaining).encode()),
        (b"x-rate-limit-reset", str(verdict.reset_seconds).encode()),
    ]
