"""What the API answers, as pydantic models. Unknown fields are kept (``extra="allow"``), so a
newer server never breaks an older client; times are aware ``datetime`` objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Page(Model, Generic[T]):
    """One page of a list; ``next_cursor`` is None on the last page."""

    data: list[T]
    next_cursor: str | None = None


class ApiKey(Model):
    id: str
    label: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


class CreatedKey(Model):
    """A new key: ``key`` is the secret, shown this once."""

    id: str
    key: str
    label: str
    created_at: datetime


class Session(Model):
    id: str
    name: str
    description: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    status: Literal["active", "paused", "completed"] | str
    created_at: datetime
    updated_at: datetime


class Task(Model):
    id: str
    session_id: str
    parent_task_id: str | None = None
    name: str
    status: Literal["pending", "active", "completed", "failed"] | str
    created_at: datetime
    updated_at: datetime


class TaskNode(Task):
    """A task in the session's tree, with its children."""

    children: list[TaskNode] = Field(default_factory=list)


class Usage(Model):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    latency_ms: float | None = None
    cost_usd: float | None = None


class Snapshot(Model):
    id: str
    session_id: str
    task_id: str
    label: str
    source: str
    model: str | None = None
    token_total: int = 0
    parent_snapshot_id: str | None = None
    rollback_of: str | None = None
    forked_from: str | None = None
    stored_bytes: int = 0
    captured_at: datetime
    created_at: datetime
    enriched: bool = False
    enriched_at: datetime | None = None
    usage: Usage | None = None


class Bundle(Model):
    """A snapshot's content: what ``to_anthropic`` / ``to_openai`` restore from."""

    snapshot_id: str
    session_id: str
    task_id: str
    captured_at: datetime | None = None
    model: str | None = None
    token_total: int | None = None
    source: str | None = None
    usage: Usage | None = None
    messages: list[dict[str, Any]] = Field(default_factory=list)
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    files: list[dict[str, Any]] = Field(default_factory=list)
    reasoning: str | None = None
    log_events: list[dict[str, Any]] = Field(default_factory=list)


class SnapshotWithBundle(Snapshot):
    bundle: Bundle


class Revision(Model):
    seq: int
    token_total: int
    model: str | None = None
    created_at: datetime


class Fork(Model):
    task: Task
    snapshot: Snapshot


class TimelineEntry(Snapshot):
    task_name: str | None = None
    token_delta: int = 0


class MessagesDiff(Model):
    common_prefix: int
    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]


class ListDiff(Model):
    added: list[Any]
    removed: list[Any]


class FilesDiff(ListDiff):
    modified: list[str] = Field(default_factory=list)


class Diff(Model):
    from_: str = Field(alias="from")
    to: str
    messages: MessagesDiff
    tool_calls: ListDiff
    files: FilesDiff
    token_delta: int


class Graph(Model):
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]


class SessionStats(Model):
    total_messages: int = 0
    total_tool_calls: int = 0
    total_snapshots: int = 0
    total_tokens: int = 0
    context_tokens: int = 0
    llm_calls: int = 0
    usage: dict[str, Any] = Field(default_factory=dict)


class AccountUsage(Model):
    usage: dict[str, Any] = Field(default_factory=dict)
    usage_this_month: dict[str, Any] = Field(default_factory=dict)


class LinkedTrace(Model):
    session_id: str
    trace_ids: list[str]
    snapshots_created: int


class ThreadState(Model):
    thread_id: str
    user_data: str
    version: int
    updated_at: datetime


class MessageRecord(Model):
    """A row of ``GET /v1/messages``: a stored message and where it was first seen."""


class ToolCallRecord(Model):
    """A row of ``GET /v1/tool-calls``."""


class SearchSnippet(Model):
    text: str
    role: str | None = None
    position: int | None = None
    source: str | None = None


class SearchHit(Model):
    snapshot_id: str
    session_id: str
    task_id: str
    label: str | None = None
    score: float
    created_at: datetime | None = None
    snippet: SearchSnippet


class SearchResults(Model):
    results: list[SearchHit]


class LiveEvent(Model):
    """A pushed event of the live feed (``snapshot.created``, ``session.updated``...)."""

    type: str
    session_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
