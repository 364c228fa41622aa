"""What every service needs: the ports and a few settings, bundled for passing around."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kontex.domain.errors import Transient
from kontex.domain.models import utcnow
from kontex.ports import BlobStore, Embedder, Events, Store, VectorIndex
from kontex.services.publisher import Publisher

if TYPE_CHECKING:  # (kontex.port_transport: loads with the first event)
    from kontex.ports import Event


class NullEvents:
    """Events go nowhere: no consumer exists (a Lambda without a topic, a data dir that
    `kontex dev` never served); the composition root picks the real ones."""

    def publish(self, event: Event) -> None:
        return None


@dataclass
class Deps:
    store: Store
    blobs: BlobStore
    # The HMAC key for API keys, or how to get it: read on first use, so functions that never
    # see a key (the workers) need no access to the secret.
    api_key_secret: bytes | Callable[[], bytes]
    # where that secret comes from, named when a key is refused (services/keys.unknown_key):
    # KONTEX_API_KEY_SECRET, KONTEX_API_KEY_SECRET_ARN, or the data dir's path
    key_secret_source: str = ""
    events: Events = field(default_factory=NullEvents)
    enrich_window_seconds: int = 60
    span_grace_seconds: float = 30  # KONTEX_SPAN_GRACE_SECONDS (services/spans.py)
    prices_file: Path | None = None  # overrides the shipped price table (services/pricing)
    clock: Callable[[], datetime] = utcnow
    # search (services/search.py): the embedder and the vector index, or how to build them on
    # first use (only the embed worker, the search route and reindex ever do)
    # (a factory is called each time: the container caches what it builds)
    embedder: Embedder | Callable[[], Embedder] | None = None
    index: VectorIndex | Callable[[], VectorIndex] | None = None

    def __post_init__(self) -> None:
        # what a unit of work announced is published once it commits, through the events
        # port this Deps holds then (services/outbox.py)
        self.store.publish_with(lambda events: Publisher(self.store, self.events)(events))

    def key_secret(self) -> bytes:
        if callable(self.api_key_secret):
            self.api_key_secret = self.api_key_secret()
        return self.api_key_secret

    def search_ports(self) -> tuple[Embedder, VectorIndex]:
        """The embedder and the index; ``Transient`` (a 503) when search is not set up here."""
        if self.embedder is None or self.index is None:
            raise Transient("search is not configured here")
        embedder = self.embedder
        index = self.index
        if not hasattr(embedder, "embed_query"):
            embedder = embedder()  # type: ignore[operator]
        if not hasattr(index, "upsert"):
            index = index()  # type: ignore[operator]
        return embedder, index  # type: ignore[return-value]
