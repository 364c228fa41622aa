"""Identifiers: a type prefix and a time-ordered random part (ULID-like, Crockford base32)."""

from __future__ import annotations

import hashlib
import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """``prefix_`` + 10 chars of millisecond time + 16 chars of randomness (26 in all)."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_base32(millis, 10)}{_base32(rand, 16)}"


def derived_id(prefix: str, *parts: str) -> str:
    """A stable id from its parts: what queue workers use, so a redelivery finds its own rows."""
    digest = hashlib.sha256(":".join(parts).encode()).hexdigest()[:26]
    return f"{prefix}_{digest}"
