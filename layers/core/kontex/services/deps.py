"""What every service needs: the ports and a few settings, bundled for passing around."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kontex.domain.models import utcnow
from kontex.ports import BlobStore, Events, Store


class NullEvents:
    """Events go nowhere (CLI, tools); the local stack and the workers wire real ones."""

    def publish(self, type: str, account_id: str, session_id: str, data: dict[str, Any]) -> None:
        return None


@dataclass
class Deps:
    store: Store
    blobs: BlobStore
    api_key_secret: bytes
    events: Events = field(default_factory=NullEvents)
    enrich_window_seconds: int = 60
    clock: Callable[[], datetime] = utcnow
