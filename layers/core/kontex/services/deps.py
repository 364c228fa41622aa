"""What every service needs: the ports and a few settings, bundled for passing around."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kontex.domain.models import utcnow
from kontex.ports import BlobStore, Events, Store


class NullEvents:
    """Events go nowhere: no consumer exists (a Lambda without a topic, a data dir that
    `kontex dev` never served); the composition root picks the real ones."""

    def publish(
        self,
        type: str,
        account_id: str,
        session_id: str,
        data: dict[str, Any],
        event_id: str | None = None,
    ) -> None:
        return None


@dataclass
class Deps:
    store: Store
    blobs: BlobStore
    # The HMAC key for API keys, or how to get it: read on first use, so functions that never
    # see a key (the workers) need no access to the secret.
    api_key_secret: bytes | Callable[[], bytes]
    events: Events = field(default_factory=NullEvents)
    enrich_window_seconds: int = 60
    span_grace_seconds: float = 30  # KONTEX_SPAN_GRACE_SECONDS (services/spans.py)
    prices_file: Path | None = None  # overrides the shipped price table (services/pricing)
    clock: Callable[[], datetime] = utcnow

    def key_secret(self) -> bytes:
        if callable(self.api_key_secret):
            self.api_key_secret = self.api_key_secret()
        return self.api_key_secret
