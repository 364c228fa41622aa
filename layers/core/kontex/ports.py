"""Ports: the small protocols the services depend on. Adapters live in ``kontex.adapters``."""

from __future__ import annotations

import collections.abc
import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from kontex.domain.models import (
    Account,
    ApiKey,
    Session,
    SessionStatus,
    Snapshot,
    Task,
    ThreadState,
)


@dataclass(frozen=True)
class ItemRow:
    """One distinct message, tool call, file entry, log event or reasoning text of a session.

    ``address`` = sha256(kind, body)[:16]. Message and tool-call rows also carry what the query
    APIs filter on, so the items table is its own index.
    """

    address: bytes
    kind: str  # message | tool_call | file | log_event | reasoning
    body: bytes
    tokens: int
    position: int  # its index in the list where it first appeared
    index: dict[str, Any]  # role, has_text, has_tool_use, has_tool_result, tool_name, is_error


@dataclass(frozen=True)
class Event:
    """A change announced through the outbox: written with the change, published after it."""

    id: str
    type: str  # snapshot.created | snapshot.enriched | session.updated | task.updated | ...
    account_id: str
    session_id: str
    data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class LiveConnection:
    """A WebSocket connection of the live feed: unauthenticated until its first frame names a
    valid key; it expires after 2 hours (API Gateway's limit for a connection)."""

    id: str
    account_id: str | None
    authenticated: bool
    connected_at: datetime
    expires_at: datetime


def event_message(
    type: str, account_id: str, session_id: str, data: dict[str, Any], event_id: str | None
) -> str:
    """The message body every event consumer reads, on SNS and on the local topic alike:
    ``{id, type, account_id, session_id, data}``."""
    return json.dumps(
        {
            "id": event_id,
            "type": type,
            "account_id": account_id,
            "session_id": session_id,
            "data": data,
        },
        separators=(",", ":"),
        default=str,
    )


@dataclass(frozen=True)
class ObjectFilter:
    """What the message and tool-call queries filter on (all optional)."""

    kind: str
    session_id: str | None = None
    role: str | None = None
    content_type: str | None = None  # text | tool_use | tool_result
    tool_name: str | None = None
    is_error: bool | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class Revision:
    """An enrichment of a snapshot: a later bundle, appended; the original stays readable."""

    snapshot_id: str
    seq: int
    bundle_hash: str
    token_total: int
    model: str | None
    created_at: datetime
    stored_bytes: int = 0
    manifest: bytes | None = None


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None


class ConnectionStore(Protocol):
    """The live feed's WebSocket connections, their subscriptions and deliveries."""

    def open_connection(self, connection_id: str, at: datetime, expires_at: datetime) -> None:
        """Record a new (unauthenticated) connection; a second call for one id changes nothing."""
        ...

    def get_connection(self, connection_id: str, now: datetime) -> LiveConnection | None:
        """The connection, None when unknown or expired."""
        ...

    def authenticate_connection(self, connection_id: str, account_id: str) -> bool: ...
    def subscribe(self, connection_id: str, account_id: str, session_id: str) -> None: ...
    def unsubscribe(self, connection_id: str, session_id: str) -> bool: ...
    def subscribers(self, account_id: str, session_id: str, now: datetime) -> list[str]:
        """Ids of the live, authenticated connections of the account subscribed to the session."""
        ...

    def claim_deliveries(
        self, event_id: str, connection_ids: Sequence[str], at: datetime
    ) -> list[str]:
        """Record that the event goes to these connections; returns those not recorded before
        (an event redelivered by the queue is posted once per connection)."""
        ...

    def release_delivery(self, event_id: str, connection_id: str) -> None:
        """Forget a claimed delivery whose post failed, so a retry posts it."""
        ...

    def remove_connection(self, connection_id: str) -> bool: ...
    def remove_expired_connections(self, now: datetime, delivered_before: datetime) -> int:
        """Drop expired connections, and delivery records older than ``delivered_before``."""
        ...


class Store(ConnectionStore, Protocol):
    """Rows: accounts, keys, sessions, tasks, snapshots and the chains of their bundles.

    Every read and write of tenant data takes the ``account_id`` it is scoped to; a row of
    another account is treated as absent.
    """

    def migrate(self) -> list[str]: ...

    # accounts and keys
    def insert_account(self, account: Account) -> None: ...
    def get_account(self, account_id: str) -> Account | None: ...
    def insert_api_key(self, key: ApiKey, key_hash: str) -> None: ...
    def find_api_key(self, key_hash: str) -> ApiKey | None: ...
    def list_api_keys(self, account_id: str) -> list[ApiKey]: ...
    def revoke_api_key(self, account_id: str, key_id: str, at: datetime) -> bool: ...

    # sessions and tasks
    def insert_session(self, session: Session, event: Event | None = None) -> None:
        """With ``event`` (its ``session.updated``), the outbox row is written in the same
        transaction (likewise ``insert_task`` and its ``task.updated``)."""
        ...

    def get_session(self, account_id: str, session_id: str) -> Session | None: ...
    def list_sessions(
        self,
        account_id: str,
        status: SessionStatus | None,
        limit: int,
        after: tuple[str, str] | None,
        newest_first: bool = False,
    ) -> list[Session]: ...
    def update_session(
        self, account_id: str, session_id: str, changes: dict[str, Any], event_id: str | None = None
    ) -> Session | None:
        """With ``event_id``, a ``session.updated`` outbox row is written in the same
        transaction."""
        ...

    def insert_task(self, task: Task, event: Event | None = None) -> None: ...
    def get_task(self, account_id: str, task_id: str) -> Task | None: ...
    def list_tasks(self, account_id: str, session_id: str) -> list[Task]: ...
    def update_task(
        self, account_id: str, task_id: str, changes: dict[str, Any], event_id: str | None = None
    ) -> Task | None: ...

    # snapshots: reads outside a unit of work; every write goes through ``unit()``
    def unit(self, write: bool = True) -> AbstractContextManager[SnapshotUnit]: ...
    def snapshot_exists(self, snapshot_id: str) -> bool: ...
    def get_snapshot(self, account_id: str, snapshot_id: str) -> Snapshot | None: ...
    def latest_snapshot(self, account_id: str, task_id: str) -> Snapshot | None: ...
    def list_snapshots(
        self, account_id: str, session_id: str, limit: int, after: tuple[str, str] | None
    ) -> list[Snapshot]: ...
    def list_revisions(self, account_id: str, snapshot_id: str) -> list[Revision]: ...

    # the v1 engine's rows, for the upgrade
    def v1_rows(self) -> list[dict[str, Any]]: ...
    def v1_chain(self, session_id: str, head: str) -> list[str]: ...

    # queries and aggregates
    def query_objects(
        self, account_id: str, where: ObjectFilter, limit: int, after: tuple[str, str] | None
    ) -> list[dict[str, Any]]: ...
    def session_stats(self, account_id: str, session_id: str) -> dict[str, Any]: ...
    def usage(self, account_id: str, month_start: datetime) -> dict[str, Any]: ...

    # traces linked to sessions
    def link_trace(self, account_id: str, session_id: str, trace_id: str, at: datetime) -> str: ...
    def session_for_trace(self, account_id: str, trace_id: str) -> str | None: ...
    def list_traces(self, account_id: str, session_id: str) -> list[str]: ...

    # thread state
    def put_thread_state(
        self, account_id: str, thread_id: str, user_data: str, at: datetime
    ) -> ThreadState: ...
    def get_thread_state(self, account_id: str, thread_id: str) -> ThreadState | None: ...
    def delete_thread_state(self, account_id: str, thread_id: str) -> bool: ...

    # spans (OTLP ingest): each call one transaction, however many spans or traces
    def insert_spans(self, spans: Sequence[tuple[str, dict[str, Any]]], at: datetime) -> None: ...
    def trace_spans(
        self, traces: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], list[dict[str, Any]]]: ...
    def trace_sessions(self, traces: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]: ...
    def sessions_named(self, names: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]: ...
    def ensure_tasks(self, tasks: Sequence[Task], events: Sequence[Event] = ()) -> list[Event]:
        """Insert the tasks that do not exist yet; with ``events`` (one per task, its
        ``task.updated``), those of the inserted tasks go to the outbox in the same
        transaction and are returned."""
        ...

    def mark_spans_done(self, spans: Sequence[tuple[str, str, str]]) -> None: ...
    def session_for_alias(self, account_id: str, alias: str) -> str | None: ...
    def add_alias(self, account_id: str, alias: str, session_id: str) -> str: ...

    # the outbox
    def unpublished(self, before: datetime, limit: int) -> list[Event]: ...
    def delete_events(self, event_ids: Sequence[str]) -> None:
        """Remove published events: a row left in the outbox is one still to publish."""
        ...

    def get_events(self, event_ids: Sequence[str]) -> list[Event]: ...

    # fixed-window counters
    def hit_rate_limit(self, key_id: str, kind: str, window_start: int) -> int: ...

    # the one way to remove snapshots
    def purge_session(self, account_id: str, session_id: str, event: Event | None = None) -> bool:
        """With ``event`` (``session.purged``), its outbox row is written in the same
        transaction."""
        ...

    def inactive_sessions(
        self, cutoff: datetime, account_id: str | None, limit: int
    ) -> list[dict[str, Any]]: ...


class SnapshotUnit(Protocol):
    """One transaction over the snapshot aggregate (a unit of work): a use case reads what it
    needs once and writes all its rows; committed when the block ends, rolled back if it raises.
    Writes are sent together when the block ends (one pipelined round trip on PostgreSQL), so
    a unit never reads what it wrote itself.
    """

    def lock_task(
        self, account_id: str, task_id: str
    ) -> tuple[Task, str | None, bytes | None] | None:
        """The task, its head snapshot id and the head's manifest, the task locked against
        concurrent writers until the unit ends."""
        ...

    def lock_and_lookup(
        self, account_id: str, task_id: str, items: Sequence[bytes], chunks: Sequence[bytes]
    ) -> tuple[tuple[Task, str | None, bytes | None], dict[bytes, int], dict[bytes, bytes]] | None:
        """``lock_task`` and ``lookup`` in the task's session, in one round trip."""
        ...

    def head_snapshot(self, account_id: str, task_id: str) -> tuple[Snapshot, bytes | None] | None:
        """The task's latest snapshot as it stands, with its manifest."""
        ...

    def snapshot(self, account_id: str, snapshot_id: str) -> tuple[Snapshot, bytes | None] | None:
        """The snapshot as it stands (latest revision) with its manifest."""
        ...

    def revision(self, account_id: str, snapshot_id: str, seq: int) -> Revision | None: ...
    def revision_count(self, snapshot_id: str) -> int: ...
    def lookup(
        self, session_id: str, items: Sequence[bytes], chunks: Sequence[bytes]
    ) -> tuple[dict[bytes, int], dict[bytes, bytes]]:
        """Which items (their tokens) and chunks (their refs) the session has: one query."""
        ...

    def known_items(self, session_id: str, addresses: Sequence[bytes]) -> dict[bytes, int]: ...
    def items(self, session_id: str, addresses: Sequence[bytes]) -> dict[bytes, bytes]: ...
    def chunks(self, session_id: str, addresses: Sequence[bytes]) -> dict[bytes, bytes]: ...
    def add_items(self, session_id: str, at: datetime, rows: Sequence[ItemRow]) -> None: ...
    def add_chunks(self, session_id: str, chunks: dict[bytes, bytes]) -> None: ...
    def add_snapshot(self, snapshot: Snapshot, manifest: bytes) -> None:
        """Insert the sealed row and make it its task's head."""
        ...

    def add_revision(self, revision: Revision, manifest: bytes) -> None: ...
    def add_task(self, task: Task) -> None: ...
    def add_event(self, event: Event) -> None:
        """Write an outbox row in this unit's transaction."""
        ...

    def set_v2_manifest(
        self, snapshot_id: str, seq: int, manifest: bytes, bundle_hash: str
    ) -> None: ...


class BlobStore(Protocol):
    """Opaque objects by key. Writes never overwrite: a key, once written, keeps its bytes."""

    def put(self, key: str, data: bytes) -> bool:
        """Write ``data`` unless ``key`` exists; True when this call wrote it."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes at ``key``; ``NotFound`` when absent."""
        ...

    def get_many(self, keys: Sequence[str]) -> list[bytes]: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def size_of_prefix(self, prefix: str) -> int: ...


class Events(Protocol):
    """Where the outbox relay publishes what changed (live feed, embedding): SNS/SQS on AWS.

    ``publish`` raises when the event did not go out; the outbox keeps it for the sweeper.
    """

    def publish(
        self,
        type: str,
        account_id: str,
        session_id: str,
        data: dict[str, Any],
        event_id: str | None = None,
    ) -> None: ...


class ConnectionGone(Exception):
    """The WebSocket connection no longer exists (API Gateway's ``GoneException``)."""


class Connections(Protocol):
    """Writes to live WebSocket connections: API Gateway's Management API on AWS, the open
    sockets of ``kontex dev`` locally."""

    def post(self, connection_id: str, data: bytes) -> None:
        """Send one message; raises ``ConnectionGone`` when the connection is gone."""
        ...

    def close(self, connection_id: str) -> None: ...


class Queue(Protocol):
    """Named work queues (SQS on AWS, an in-process queue locally)."""

    def send(self, queue: str, bodies: Sequence[str], delay_seconds: int = 0) -> None:
        """Queue messages, delivered no sooner than ``delay_seconds`` from now."""
        ...


# -- search -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SparseVector:
    """Lexical weights by token id (``services/lexical.py``); the index applies the IDF."""

    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class Point:
    """One embedded chunk of a snapshot: its id (a UUID derived from its content), its dense
    and sparse vectors, and the payload a hit answers with (``account_id`` always set)."""

    id: str
    dense: list[float]
    sparse: SparseVector
    payload: dict[str, Any]


@dataclass(frozen=True)
class IndexHit:
    id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class IndexFilter:
    """What a query is limited to: always one account; the rest optional."""

    account_id: str
    session_id: str | None = None
    task_id: str | None = None
    source: str | None = None


class Embedder(Protocol):
    """Text to dense vectors (Voyage AI, or the offline model). Raises ``Transient`` when the
    service is down or keeps refusing."""

    @property
    def name(self) -> str:
        """The model, as the collection and the points record it."""
        ...

    @property
    def dimensions(self) -> int: ...

    @property
    def max_chars(self) -> int:
        """A chunk of at most this many characters fits the model's input."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...
    def embed_query(self, text: str) -> list[float]: ...


class VectorIndex(Protocol):
    """Points of every account in one collection, each query filtered on its account.

    ``mode``: ``hybrid`` (dense and sparse fused by reciprocal rank), ``dense`` or ``sparse``.
    Raises ``Transient`` when the store is unreachable.
    """

    def upsert(self, points: Sequence[Point]) -> None: ...
    def existing(self, ids: Sequence[str]) -> set[str]: ...
    def query(
        self,
        dense: list[float] | None,
        sparse: SparseVector | None,
        where: IndexFilter,
        limit: int,
        mode: str = "hybrid",
    ) -> list[IndexHit]: ...
    def delete_session(self, account_id: str, session_id: str) -> None: ...
    def count(self, account_id: str | None = None) -> int: ...


# -- the proxy's upstream API ----------------------------------------------------------------


@dataclass
class UpstreamResponse:
    """An upstream answer: its status, its end-to-end headers (names lower-case) and its body
    as it arrives, unchanged (still compressed if the upstream compressed it)."""

    status: int
    headers: dict[str, str]
    chunks: collections.abc.Iterator[bytes]

    @property
    def is_stream(self) -> bool:
        return self.headers.get("content-type", "").startswith("text/event-stream")


class Upstream(Protocol):
    """The API the proxy forwards to (Anthropic). Which headers go and come back, and the
    errors (``UpstreamError``, ``UpstreamTimeout``, raised by ``request`` or while ``chunks``
    is read): ``kontex.proxy.upstream``."""

    def request(
        self,
        base_url: str,
        method: str,
        path: str,
        query: str,
        headers: collections.abc.Mapping[str, str],
        body: bytes,
        timeout: float,
    ) -> UpstreamResponse:
        """``method {base_url}{path}?{query}``; the answer's body is read lazily."""
        ...
