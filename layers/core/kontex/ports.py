"""Ports: the small protocols the services depend on. Adapters live in ``kontex.adapters``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
class ChainNode:
    """One element of a content-addressed list (messages, tool calls, files, log events).

    ``node_hash`` = sha256(parent_hash + item_hash): equal prefixes share nodes, so a session
    stores every distinct prefix once, however many snapshots repeat it. Message and tool-call
    nodes also carry what the query APIs filter on, so the chain is its own index.
    """

    node_hash: str
    parent_hash: str | None
    item_hash: str
    position: int
    tokens: int  # cumulative token count from the head of the list to this node
    kind: str = ""  # message | tool_call | file | log_event
    item_tokens: int = 0
    role: str | None = None
    has_text: bool = False
    has_tool_use: bool = False
    has_tool_result: bool = False
    tool_name: str | None = None
    is_error: bool = False


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


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None


class Store(Protocol):
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
    def insert_session(self, session: Session) -> None: ...
    def get_session(self, account_id: str, session_id: str) -> Session | None: ...
    def list_sessions(
        self,
        account_id: str,
        status: SessionStatus | None,
        limit: int,
        after: tuple[str, str] | None,
    ) -> list[Session]: ...
    def update_session(
        self, account_id: str, session_id: str, changes: dict[str, Any]
    ) -> Session | None: ...
    def insert_task(self, task: Task) -> None: ...
    def get_task(self, account_id: str, task_id: str) -> Task | None: ...
    def list_tasks(self, account_id: str, session_id: str) -> list[Task]: ...
    def update_task(
        self, account_id: str, task_id: str, changes: dict[str, Any]
    ) -> Task | None: ...

    # snapshots
    def known_nodes(self, session_id: str, node_hashes: Sequence[str]) -> dict[str, int]: ...
    def read_chain(self, session_id: str, head: str) -> list[str]: ...
    def insert_snapshot(self, snapshot: Snapshot, nodes: Iterable[ChainNode]) -> None: ...
    def get_snapshot(self, account_id: str, snapshot_id: str) -> Snapshot | None: ...
    def latest_snapshot(self, account_id: str, task_id: str) -> Snapshot | None: ...
    def list_snapshots(
        self, account_id: str, session_id: str, limit: int, after: tuple[str, str] | None
    ) -> list[Snapshot]: ...
    def insert_revision(self, revision: Revision, nodes: Iterable[ChainNode]) -> None: ...
    def list_revisions(self, account_id: str, snapshot_id: str) -> list[Revision]: ...

    # queries and aggregates
    def query_objects(
        self, account_id: str, where: ObjectFilter, limit: int, after: tuple[str, str] | None
    ) -> list[dict[str, Any]]: ...
    def session_stats(self, account_id: str, session_id: str) -> dict[str, int]: ...
    def usage(self, account_id: str, month_start: datetime) -> dict[str, int]: ...

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
    def ensure_tasks(self, tasks: Sequence[Task]) -> None: ...
    def mark_spans_done(self, spans: Sequence[tuple[str, str, str]]) -> None: ...
    def session_for_alias(self, account_id: str, alias: str) -> str | None: ...
    def add_alias(self, account_id: str, alias: str, session_id: str) -> str: ...

    # fixed-window counters
    def hit_rate_limit(self, key_id: str, kind: str, window_start: int) -> int: ...

    # the one way to remove snapshots
    def purge_session(self, account_id: str, session_id: str) -> bool: ...


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
    """Where services announce what changed (live feed, embedding)."""

    def publish(
        self, type: str, account_id: str, session_id: str, data: dict[str, Any]
    ) -> None: ...


class Queue(Protocol):
    """Named work queues (SQS on AWS, an in-process queue locally)."""

    def send(self, queue: str, bodies: Sequence[str]) -> None: ...
