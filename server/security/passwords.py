"""bcrypt hashing, always off the event loop so one login never stalls the rest.

:class:`LoginCheck` makes every failed login cost at least one bcrypt check at
the configured cost, whether the email is unknown, the account has no password
(imported locked) or its hash was made at a lower cost; and it says when a
stored hash should be made again at the configured cost.
"""

from __future__ import annotations

import asyncio
import re
import secrets

import bcrypt

BCRYPT_HASH = re.compile(r"\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}")
"""A bcrypt hash as bcrypt writes it; its group is the cost."""


def _hash(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


async def hash_password(password: str, rounds: int) -> str:
    """A bcrypt hash of ``password`` at cost ``rounds``, computed in a worker thread."""
    return await asyncio.to_thread(_hash, password, rounds)


def _verify(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:  # a password bcrypt cannot take (over 72 bytes, not encodable), or a malformed hash
        return False


async def verify_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches the bcrypt ``hashed``, checked in a worker thread."""
    return await asyncio.to_thread(_verify, password, hashed)


def hash_cost(hashed: str) -> int | None:
    """The cost (log2 of the rounds) of a bcrypt hash; None if ``hashed`` is not one (a locked account)."""
    match = BCRYPT_HASH.fullmatch(hashed)
    return int(match.group(1)) if match else None


class LoginCheck:
    """Checks login passwords at no less than the configured cost, whoever the email names."""

    def __init__(self, rounds: int, dummy_hash: str) -> None:
        self.rounds = rounds
        self.dummy_hash = dummy_hash

    @classmethod
    async def create(cls, rounds: int) -> LoginCheck:
        """A check whose stand-in hash (of a random password nobody knows) has cost ``rounds``."""
        return cls(rounds, await hash_password(secrets.token_hex(16), rounds))

    async def matches(self, password: str, stored_hash: str | None) -> bool:
        """Whether ``password`` matches ``stored_hash`` (None: no such account), at the configured cost or more.

        Without a usable hash the stand-in is checked instead, and a hash cheaper than the configured cost is
        followed by a check of the stand-in, so a failure says nothing about whether the email exists.
        """
        cost = None if stored_hash is None else hash_cost(stored_hash)
        if stored_hash is None or cost is None:
            await verify_password(password, self.dummy_hash)
            return False
        matched = await verify_password(password, stored_hash)
        if cost < self.rounds:
            await verify_password(password, self.dummy_hash)
        return matched

    def outdated(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` was made at another cost than the configured one (so it is made again)."""
        return hash_cost(stored_hash) != self.rounds
