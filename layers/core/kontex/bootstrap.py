"""The composition root: builds the adapters the settings ask for, lazily, on first use.

Nothing here runs at import time, so tests can start moto (or set the environment) first.
"""

from __future__ import annotations

import os
import secrets
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kontex.domain.errors import KontexError, Transient
from kontex.ports import (
    BlobStore,
    Connections,
    Embedder,
    Events,
    Pipelines,
    Queue,
    Store,
    Upstream,
    VectorIndex,
)
from kontex.services.deps import Deps, NullEvents
from kontex.settings import Settings, settings

if TYPE_CHECKING:
    from kontex.adapters.sqs_batch import Redrive

SECRET_FILE = "api_key_secret"


def load_or_create_secret(data_dir: Path) -> bytes:
    """The local stack's key-hashing secret: made once per data dir, readable by its owner only."""
    path = data_dir / SECRET_FILE
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_hex(32).encode())
    return path.read_bytes().strip()


def make_store(
    database_url: str | None, data_dir: Path, prepare: bool = True, pooled: bool = False
) -> Store:
    if database_url and database_url.startswith(("postgres://", "postgresql://")):
        from kontex.adapters.postgres_store import PostgresStore

        return PostgresStore(database_url, prepare=prepare, pooled=pooled)
    from kontex.adapters.sqlite_store import SqliteStore

    if database_url and database_url.startswith("sqlite:///"):
        return SqliteStore(database_url.removeprefix("sqlite:///"))
    if database_url:
        raise KontexError("KONTEX_DATABASE_URL must start with postgresql:// or sqlite:///")
    return SqliteStore(data_dir / "kontex.db")


class Container:
    """One set of adapters for one configuration."""

    def __init__(
        self,
        config: Settings,
        *,
        store: Store | None = None,
        blobs: BlobStore | None = None,
        events: Events | None = None,
        connections: Connections | None = None,
    ) -> None:
        """Adapters given here are used as they are (tests, the local stack); others are built."""
        self.settings = config
        self._events = events
        if connections is not None:
            self.connections = connections
        if store is not None:
            self.store = store
        if blobs is not None:
            self.blobs = blobs

    @cached_property
    def store(self) -> Store:
        """The writer; with a reader configured, a ``RoutedStore`` that sends the read units of
        GET requests to the reader (``adapters/routed_store.py``)."""
        url = self.settings.kontex_database_url
        reader_url = self.settings.kontex_database_reader_url
        prepare = self.settings.kontex_database_prepare
        pooled = self.settings.kontex_database_pooled
        if url is None and self.settings.kontex_database_secret_arn:
            from kontex.adapters.aws_secrets import database_url, read_secret

            secret = read_secret(self.settings.kontex_database_secret_arn)
            url = database_url(secret, self.settings.kontex_database_host)
            if self.settings.kontex_database_reader_host and reader_url is None:
                reader_url = database_url(secret, self.settings.kontex_database_reader_host)
            if prepare is None:  # on AWS: through RDS Proxy
                prepare = False
            if pooled is None:
                pooled = True
        data_dir = self.settings.kontex_data_dir
        writer = make_store(url, data_dir, prepare is not False, bool(pooled))
        if not reader_url:
            return writer
        from kontex.adapters.routed_store import RoutedStore

        reader = make_store(reader_url, data_dir, prepare is not False, bool(pooled))
        return RoutedStore(writer, reader)

    @cached_property
    def blobs(self) -> BlobStore:
        if self.settings.kontex_bundle_bucket:
            from kontex.adapters.s3_blobs import S3Blobs

            return S3Blobs(self.settings.kontex_bundle_bucket)
        from kontex.adapters.local_blobs import LocalBlobs

        return LocalBlobs(self.settings.kontex_data_dir / "blobs")

    @cached_property
    def queue(self) -> Queue:
        """SQS when the queue URLs are configured, large messages by reference (claim check)
        in the object store; the local stack installs its own queue."""
        from kontex.adapters.claim_check import ClaimCheckQueue
        from kontex.adapters.sqs_queue import SqsQueue

        urls = {
            "spans": self.settings.kontex_spans_queue_url,
            "capture": self.settings.kontex_captures_queue_url,
            "embed": self.settings.kontex_embed_queue_url,  # the reindex backfill
        }
        configured = {name: url for name, url in urls.items() if url}
        if not configured:
            raise KontexError("no queue is configured (set the KONTEX_*_QUEUE_URL variables)")
        return ClaimCheckQueue(SqsQueue(configured), self.blobs)

    @cached_property
    def pipelines(self) -> Pipelines | None:
        """The lag of each pipeline: SQS and CloudWatch on AWS (``KONTEX_PIPELINES``), the
        data dir's queue file locally (None before `kontex dev` made it)."""
        if self.settings.kontex_pipelines:
            from kontex.adapters.sqs_pipelines import SqsPipelines

            return SqsPipelines.from_json(self.settings.kontex_pipelines)
        if self.settings.aws_lambda_function_name:
            return None
        from kontex.adapters.local_queue import QUEUE_FILE, LocalQueue

        installed = self.__dict__.get("queue")
        if isinstance(installed, LocalQueue):
            return installed
        path = self.settings.kontex_data_dir / QUEUE_FILE
        return LocalQueue(path) if path.exists() else None

    @cached_property
    def redrive(self) -> Redrive | None:
        """What a queue worker does itself with a failed record on AWS: a permanent failure to
        its DLQ, a transient one back after a backoff. None locally: the local queue does it."""
        if not self.settings.kontex_dead_letter_queue_url:
            return None
        from kontex.adapters.sqs_batch import SqsRedrive

        return SqsRedrive(self.settings.kontex_dead_letter_queue_url)

    @cached_property
    def upstream(self) -> Upstream:
        """The proxy's pooled HTTP client: connections kept across calls and warm invocations."""
        from kontex.adapters.http_upstream import HttpUpstream

        return HttpUpstream()

    @cached_property
    def api_key_secret(self) -> bytes:
        configured = self.settings.kontex_api_key_secret
        if configured is not None:
            return configured.get_secret_value().encode()
        if self.settings.kontex_api_key_secret_arn:
            from kontex.adapters.aws_secrets import read_secret

            return read_secret(self.settings.kontex_api_key_secret_arn).encode()
        if self.settings.aws_lambda_function_name:
            raise KontexError(
                "KONTEX_API_KEY_SECRET or KONTEX_API_KEY_SECRET_ARN must be set in a deployed"
                " function"
            )
        return load_or_create_secret(self.settings.kontex_data_dir)

    @property
    def api_key_secret_source(self) -> str:
        """Where ``api_key_secret`` comes from: its variable's name, or the data dir's path."""
        from kontex.services.keys import FROM_ENV, FROM_SECRETS_MANAGER

        if self.settings.kontex_api_key_secret is not None:
            return FROM_ENV
        if self.settings.kontex_api_key_secret_arn:
            return FROM_SECRETS_MANAGER
        return str(self.settings.kontex_data_dir.resolve())

    @cached_property
    def events(self) -> Events:
        """Where the outbox publishes: the SNS topic on AWS (fanned out to one queue per
        consumer); locally the topic on `kontex dev`'s durable queue in the data dir (its
        worker processes publish there too); nowhere when neither exists."""
        if self._events is not None:
            return self._events
        if self.settings.kontex_events_topic_arn:
            from kontex.adapters.sns_events import SnsEvents

            # an event too large for SNS travels by claim check in the object store
            return SnsEvents(self.settings.kontex_events_topic_arn, blobs=self.blobs)
        if not self.settings.aws_lambda_function_name:
            local = self.local_topic()
            if local is not None:
                return local
        return NullEvents()

    def local_topic(self, queue: Any = None) -> Events | None:
        """The local fan-out on ``queue``, or on the data dir's queue file once `kontex dev`
        has made it (None before: no consumer would ever read it)."""
        from kontex.adapters.local_queue import QUEUE_FILE, LocalQueue
        from kontex.adapters.local_topic import EVENT_CONSUMERS, LocalTopic
        from kontex.functions import worker_paths

        if queue is None:
            path = self.settings.kontex_data_dir / QUEUE_FILE
            if not path.exists():
                return None
            queue = LocalQueue(path)
        workers = worker_paths()
        return LocalTopic(queue, [name for name in EVENT_CONSUMERS if name in workers])

    @cached_property
    def connections(self) -> Connections:
        """The live feed's WebSocket connections: API Gateway's Management API on AWS; the
        local stack installs its open sockets."""
        endpoint = self.settings.kontex_websocket_endpoint
        if not endpoint:
            raise KontexError("no WebSocket endpoint is configured (KONTEX_WEBSOCKET_ENDPOINT)")
        from kontex.adapters.apigw_connections import ApiGatewayConnections

        return ApiGatewayConnections(endpoint)

    @cached_property
    def embedder(self) -> Embedder:
        """Voyage AI with a key (``VOYAGE_API_KEY`` or its secret), else the offline model (in
        ``kontex dev``'s API processes: the main process's, kontex/adapters/local_index.py)."""
        config = self.settings
        if config.kontex_index_address and config.kontex_index_authkey:
            from kontex.adapters.local_index import RemoteEmbedder

            authkey = config.kontex_index_authkey.get_secret_value().encode()
            return RemoteEmbedder(config.kontex_index_address, authkey)
        key = config.voyage_api_key.get_secret_value() if config.voyage_api_key else None
        if key is None and config.kontex_voyage_api_key_secret_arn:
            from kontex.adapters.aws_secrets import read_secret

            key = read_secret(config.kontex_voyage_api_key_secret_arn)
        if key:
            from kontex.adapters.voyage_embedder import VoyageEmbedder

            return VoyageEmbedder(key, config.kontex_voyage_model, config.kontex_voyage_base_url)
        from kontex.adapters.offline_embedder import OfflineEmbedder

        return OfflineEmbedder()

    @cached_property
    def index(self) -> VectorIndex:
        """Qdrant at ``QDRANT_URL``; locally Qdrant local mode in the data dir (in ``kontex
        dev``, the API's processes reach the one the main process holds)."""
        config = self.settings
        if config.kontex_index_address and config.kontex_index_authkey:
            from kontex.adapters.local_index import RemoteIndex

            authkey = config.kontex_index_authkey.get_secret_value().encode()
            return RemoteIndex(config.kontex_index_address, authkey)
        from kontex.adapters.qdrant_index import QdrantIndex

        embedder = self.embedder
        # "_v2": a point per distinct content of an account (docs/design.md, "Search"); the
        # points of before were per snapshot, so a new collection, filled by `kontex reindex`
        name = embedder.name.replace("-", "_").replace(".", "_")
        collection = config.kontex_qdrant_collection or f"kontex_{name}_v2"
        if config.qdrant_url:
            key = config.qdrant_api_key.get_secret_value() if config.qdrant_api_key else None
            if key is None and config.kontex_qdrant_api_key_secret_arn:
                from kontex.adapters.aws_secrets import read_secret

                key = read_secret(config.kontex_qdrant_api_key_secret_arn)
            return QdrantIndex(collection, embedder.dimensions, url=config.qdrant_url, api_key=key)
        if config.aws_lambda_function_name:  # a deployment without a vector store: a 503
            raise Transient("search is not configured here (the stage sets no qdrant_url)")
        return QdrantIndex(collection, embedder.dimensions, path=config.kontex_data_dir / "qdrant")

    def migrate(self) -> list[str]:
        """Apply pending SQL migrations, move rows of the v1 storage engine to v2, seal rows
        written before seals existed."""
        from kontex.services.upgrade import import_langgraph_threads, seal_rows, upgrade_v1

        applied = self.store.migrate()
        moved = upgrade_v1(self.deps)
        if moved:
            applied.append(f"v1 -> v2 content of {moved} snapshots and revisions")
        sealed = seal_rows(self.deps)
        if sealed:
            applied.append(f"{sealed} snapshot and revision rows sealed")
        threads = import_langgraph_threads(self.deps)
        if threads:
            applied.append(f"{threads} LangGraph thread(s) indexed as checkpoints")
        return applied

    @cached_property
    def deps(self) -> Deps:
        return Deps(
            store=self.store,
            blobs=self.blobs,
            api_key_secret=lambda: self.api_key_secret,
            key_secret_source=self.api_key_secret_source,
            events=self.events,
            enrich_window_seconds=self.settings.kontex_enrich_window_seconds,
            span_grace_seconds=self.settings.kontex_span_grace_seconds,
            prices_file=self.settings.kontex_prices_file,
            embedder=lambda: self.embedder,
            index=lambda: self.index,
        )


_current: Container | None = None
_lock = threading.Lock()


def container() -> Container:
    """The process-wide container handlers use (built from the environment on first use)."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = Container(settings())
    return _current


def configure(new: Container | None) -> None:
    """Install the container handlers use (the local stack and tests); None resets it."""
    global _current
    with _lock:
        _current = new
