"""Per-key rate limits in fixed hourly windows, counted in the database."""

from __future__ import annotations

from kontex.domain.errors import RateLimited
from kontex.services.deps import Deps

WINDOW_SECONDS = 3600


def hit(deps: Deps, key_id: str, kind: str, limit: int) -> None:
    """Count one use of ``kind`` by the key; ``RateLimited`` past ``limit`` in this window."""
    now = int(deps.clock().timestamp())
    window = now - now % WINDOW_SECONDS
    with deps.store.unit() as uow:
        used = uow.keys.hit(key_id, kind, window)
    if used > limit:
        retry_after = max(1, window + WINDOW_SECONDS - now)
        raise RateLimited(
            f"{kind} limit of {limit} per hour reached",
            retry_after=retry_after,
            details={"limit": limit, "window_seconds": WINDOW_SECONDS},
        )
