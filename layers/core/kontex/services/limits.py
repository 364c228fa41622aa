"""Per-key rate limits in fixed hourly windows, counted in the database.

A key's count of a window is spread over ``SHARDS`` rows, one chosen at random per request: the
requests of a key shared by many copies of a function (a team's key) do not all queue on one
row's lock (docs/design.md, "Rate limits")."""

from __future__ import annotations

import random

from kontex.domain.errors import RateLimited
from kontex.domain.models import ApiKey
from kontex.services.deps import Deps
from kontex.services.keys import Credential, hash_key, key_text, unknown_key

WINDOW_SECONDS = 3600
SHARDS = 8


def window_of(deps: Deps) -> tuple[int, int]:
    """``(now, the start of its window)`` in seconds."""
    now = int(deps.clock().timestamp())
    return now, now - now % WINDOW_SECONDS


def admit(deps: Deps, presented: Credential | str | None, kind: str, limit: int) -> ApiKey:
    """The key presented, if valid, with one use of ``kind`` counted, in one unit of work (one
    round trip, committed in it): ``Unauthorized`` naming the cause (none sent, malformed,
    unknown to this server: services/keys.py), or ``RateLimited`` past ``limit`` in this
    window."""
    text = key_text(presented)
    now, window = window_of(deps)
    # a count lost in a crash is harmless; one committed as it runs holds its row for no round
    # trip
    with deps.store.unit(durable=False, autocommit=True) as uow:
        key, used = uow.keys.find_and_hit(hash_key(deps.key_secret(), text), kind, window, shard())
    if key is None or key.revoked_at is not None:
        raise unknown_key(deps)
    check(used, limit, kind, window, now)
    return key


def hit(deps: Deps, key_id: str, kind: str, limit: int) -> None:
    """Count one use of ``kind`` by the key; ``RateLimited`` past ``limit`` in this window."""
    now, window = window_of(deps)
    with deps.store.unit(autocommit=True) as uow:
        used = uow.keys.hit(key_id, kind, window, shard())
    check(used, limit, kind, window, now)


def count(deps: Deps, key_id: str, kind: str, window: int, uses: int) -> int:
    """Count ``uses`` uses of ``kind`` by the key in ``window`` (already let through: nothing
    is refused); the window's count."""
    with deps.store.unit(durable=False, autocommit=True) as uow:
        return uow.keys.hit(key_id, kind, window, shard(), uses)


def shard() -> int:
    return random.randrange(SHARDS)  # noqa: S311 (spreads rows; nothing secret)


def check(used: int, limit: int, kind: str, window: int, now: int) -> None:
    if used > limit:
        retry_after = max(1, window + WINDOW_SECONDS - now)
        raise RateLimited(
            f"{kind} limit of {limit} per hour reached",
            retry_after=retry_after,
            details={"limit": limit, "window_seconds": WINDOW_SECONDS},
        )
