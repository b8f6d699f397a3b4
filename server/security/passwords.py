"""bcrypt hashing, always off the event loop so one login never stalls the rest."""

from __future__ import annotations

import asyncio

import bcrypt


def _hash(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


async def hash_password(password: str, rounds: int) -> str:
    """A bcrypt hash of ``password`` at cost ``rounds``, computed in a worker thread."""
    return await asyncio.to_thread(_hash, password, rounds)


def _verify(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:
        return False


async def verify_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches the bcrypt ``hashed``, checked in a worker thread."""
    return await asyncio.to_thread(_verify, password, hashed)
