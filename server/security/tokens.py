"""Access and refresh tokens.

Access tokens are JWTs (HS256, signed with joserfc — authlib's JOSE successor)
carrying ``sub`` (user id), ``role``, ``sid`` (session id), ``jti``, ``iat``,
``exp`` and ``iss``. Refresh tokens are ``<session id>.<generation>.<mac>``: the
session's refresh generation, which moves on by one at every refresh, and an
HMAC of both under a key derived from the signing key. Only the generation is
stored (in the session row). So every refresh token the service ever issued can
be told from a forgery without storing any of them: a genuine token of an
earlier generation is a spent one being replayed, and revokes its session; a
forged one is refused and changes nothing.
"""

from __future__ import annotations

import base64
import functools
import hmac
import time
import uuid
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

ALGORITHM = "HS256"
ISSUER = "memdb"
VERIFIED_CACHE_SIZE = 4096
"""Access tokens whose signature and claims are remembered as checked (a client reuses its token per request)."""


class InvalidToken(Exception):
    """The token is malformed, unsigned, wrongly signed, expired or not ours."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    role: str


@dataclass(frozen=True, slots=True)
class RefreshToken:
    session_id: uuid.UUID
    generation: int
    mac: str

    def __str__(self) -> str:
        return f"{self.session_id}.{self.generation}.{self.mac}"


class TokenService:
    """Issues and checks access tokens with one signing key."""

    def __init__(self, secret: bytes, access_seconds: int) -> None:
        self._key = OctKey.import_key(secret)
        self.access_seconds = access_seconds
        self._claims = jwt.JWTClaimsRegistry(
            leeway=0,
            iss={"essential": True, "value": ISSUER},
            sub={"essential": True},
            sid={"essential": True},
            exp={"essential": True},
        )
        # Per instance, so a service's cache never answers for another key.
        self._checked = functools.lru_cache(maxsize=VERIFIED_CACHE_SIZE)(self._check)
        # A key of its own, so a refresh token's MAC is never also a valid JWT signature.
        self._refresh_key = hmac.digest(secret, b"memdb refresh tokens", "sha256")

    def refresh_token(self, session_id: uuid.UUID, generation: int) -> RefreshToken:
        """The refresh token of ``generation`` for ``session_id`` (always the same for the same pair)."""
        return RefreshToken(session_id, generation, self._mac(session_id, generation))

    def parse_refresh_token(self, text: str) -> RefreshToken:
        """A refresh token this service issued (spent or not); else :class:`InvalidToken`."""
        session, _, rest = text.partition(".")
        generation, _, mac = rest.partition(".")
        try:
            token = RefreshToken(uuid.UUID(session), int(generation), mac)
        except ValueError:
            raise InvalidToken("malformed refresh token") from None
        # One spelling per token, the one issued: "007" is not generation 7, nor "{…}" or "URN:UUID:…" this session.
        if str(token.generation) != generation or str(token.session_id) != session:
            raise InvalidToken("malformed refresh token")
        if not hmac.compare_digest(mac, self._mac(token.session_id, token.generation)):
            raise InvalidToken("not a refresh token of ours")
        return token

    def _mac(self, session_id: uuid.UUID, generation: int) -> str:
        signed = hmac.digest(self._refresh_key, f"{session_id}.{generation}".encode(), "sha256")
        return base64.urlsafe_b64encode(signed).rstrip(b"=").decode()

    def issue(self, user_id: uuid.UUID, role: str, session_id: uuid.UUID) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": str(user_id),
            "role": role,
            "sid": str(session_id),
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + self.access_seconds,
        }
        return jwt.encode({"alg": ALGORITHM, "typ": "JWT"}, claims, self._key)

    def subject(self, token: str) -> str | None:
        """The ``sub`` of a correctly signed token, expired or not (for rate-limit keys); else None."""
        try:
            return str(jwt.decode(token, self._key, algorithms=[ALGORITHM]).claims.get("sub"))
        except (JoseError, ValueError):
            return None

    def verify(self, token: str) -> AccessClaims:
        """The claims of a correctly signed, unexpired access token of ours; else :class:`InvalidToken`.

        A token that passed once is remembered (bounded LRU) with its expiry, so a client
        sending the same token on every request pays for the signature check once; the
        expiry is still checked on each use, and a refused token is never remembered.
        """
        claims, expires = self._checked(token)
        if expires <= int(time.time()):  # the rule joserfc applies (leeway 0)
            raise InvalidToken("the token has expired")
        return claims

    def _check(self, token: str) -> tuple[AccessClaims, float]:
        try:
            decoded = jwt.decode(token, self._key, algorithms=[ALGORITHM])
            self._claims.validate(decoded.claims)
            claims = decoded.claims
            access = AccessClaims(uuid.UUID(str(claims["sub"])), uuid.UUID(str(claims["sid"])), str(claims.get("role")))
            return access, float(claims["exp"])
        except (JoseError, ValueError, KeyError, TypeError) as error:
            raise InvalidToken(str(error) or type(error).__name__) from None
