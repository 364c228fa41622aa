"""The value types of the ports that no function's first request uses: rows of the content,
checkpoint, archive, query and search repositories, the live feed's connections, the vector
index's points and queries, and a pipeline's lag (``kontex.ports.Pipelines``). ``kontex.ports``
gives them too (loading this module on first use), so ``from kontex.ports import Revision``
works as before; kept apart because each frozen dataclass costs about half a millisecond to
create at import, which every cold start paid (docs/benchmarks.md, "Cold start, fourth round
(issue 25)")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


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
    # role, has_text, has_tool_use, has_tool_result (messages); tool_name, is_error, call_id
    index: dict[str, Any]


@dataclass(frozen=True)
class CheckpointRow:
    """A checkpoint of a thread's namespace (LangGraph's shape): the snapshot that holds its
    state, its parent, and the metadata ``list(filter=...)`` matches."""

    thread_id: str
    ns: str
    checkpoint_id: str
    parent_id: str | None
    session_id: str
    snapshot_id: str
    metadata: dict[str, Any]
    run_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class CheckpointWrite:
    """A pending write of a checkpoint: a task's value for a channel, kept as the client's
    serialised JSON text (``value``)."""

    task_id: str
    idx: int
    channel: str
    value: str
    task_path: str = ""


@dataclass(frozen=True)
class CheckpointListing:
    """One page of checkpoints, newest first: of an account, or one thread (and namespace),
    older than ``before`` (a checkpoint id) and after the cursor ``(checkpoint_id, ns,
    thread_id)``."""

    limit: int
    thread_id: str | None = None
    ns: str | None = None
    before: str | None = None
    after: tuple[str, str, str] | None = None
    run_ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class LiveConnection:
    """A WebSocket connection of the live feed: unauthenticated until its first frame names a
    valid key; it expires after 2 hours (API Gateway's limit for a connection)."""

    id: str
    account_id: str | None
    authenticated: bool
    connected_at: datetime
    expires_at: datetime


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
class SearchChange:
    """A point of the vector index (one distinct piece of searchable content of an account)
    entering a snapshot (its parent did not hold it; with the role and position it has there)
    or leaving it (its parent held it, the snapshot does not)."""

    point_id: str
    snapshot_id: str
    account_id: str
    session_id: str
    task_id: str
    created_at: datetime  # the snapshot's
    entered: bool
    role: str | None = None
    position: int = 0


@dataclass(frozen=True)
class HeldRange:
    """The snapshots of one task's chain from ``start`` up to ``end`` (excluded; None: to its
    head), each bound a snapshot's ``(created_at, id)``."""

    session_id: str
    task_id: str
    start: tuple[datetime, str]
    end: tuple[datetime, str] | None


@dataclass(frozen=True)
class SparseVector:
    """Lexical weights by token id (``services/lexical.py``); the index applies the IDF."""

    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class Point:
    """One embedded chunk of content, once per account however many snapshots hold it: its id
    (a UUID derived from the account, the source and the text), its dense and sparse vectors,
    and the payload a hit answers with (``account_id`` always set)."""

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
    """What a query is limited to: always one account; optionally one source and a set of
    points (a session's or task's content, as the store knows it)."""

    account_id: str
    source: str | None = None
    point_ids: frozenset[str] | None = None


@dataclass(frozen=True)
class IndexQuery:
    """One search: the dense and/or sparse vector, what it is limited to and how many hits;
    ``mode`` ``hybrid`` (both fused by reciprocal rank), ``dense`` or ``sparse``."""

    where: IndexFilter
    limit: int
    dense: list[float] | None = None
    sparse: SparseVector | None = None
    mode: str = "hybrid"


@dataclass(frozen=True)
class PipelineLag:
    """How far one pipeline is behind: messages waiting or in flight, the age of the oldest
    (None when empty, or not known yet), and messages given up on (its dead letters)."""

    name: str
    depth: int
    oldest_age_seconds: float | None
    dead_letters: int
