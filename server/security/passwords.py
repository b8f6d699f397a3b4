"""bcrypt hashing, always off the event loop so one login never stalls the rest."""

from __future__ import annotations

import asyncio

import bcrypt


def _hash(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


async def hash_password(password: str, rounds: int) -> str:
    """A bcrypt hash of ``password`` at cost ``rounds``, computed in a worker thread."""
    return await asyncio.to_thread(_hash, password, rounds)
