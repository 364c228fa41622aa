"""The answers of the snapshot listing and the session views (``GET /v1/sessions/{id}/snapshots``,
``.../snapshots/timeline``, ``.../diff``, ``.../graph``, ``.../stats``): part of
``kontex.api.shapes`` (which gives these names too), kept apart so that a session listing, the
REST function's usual first request, creates neither them nor a snapshot's content models
(``kontex.domain.snapshot_content``): docs/benchmarks.md, "Cold start of the api, sixth round
(issue 25)"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from kontex.api.shapes import Out, _listing, public
from kontex.domain.models import Message, Snapshot, TaskStatus, ToolCall

SnapshotOut = public(
    Snapshot,
    "Snapshot",
    without={"account_id", "bundle_hash"},
    doc="A snapshot's metadata (its content is its bundle).",
)


class TimelineEntry(SnapshotOut):  # type: ignore[valid-type,misc]
    task_name: str | None
    token_delta: int = Field(description="Against its parent; a task's first: its whole total.")
    context_window: int | None = Field(
        description="The context window of the snapshot's model in tokens (the price table's),"
        " when known."
    )


class MessagesDiff(Out):
    common_prefix: int = Field(description="How many leading messages are equal.")
    added: list[Message] = Field(description="Messages of `to` after the common prefix.")
    removed: list[Message] = Field(description="Messages of `from` after the prefix.")


class ToolCallsDiff(Out):
    added: list[ToolCall]
    removed: list[ToolCall]


class FilesDiff(Out):
    added: list[str]
    removed: list[str]
    modified: list[str]


class Diff(Out):
    model_config = ConfigDict(
        json_schema_serialization_defaults_required=True, populate_by_name=True
    )

    from_: str = Field(alias="from")
    to: str
    messages: MessagesDiff
    tool_calls: ToolCallsDiff
    files: FilesDiff
    token_delta: int


class GraphNodeData(Out):
    label: str
    status: TaskStatus
    token_total: int
    snapshot_count: int


class Position(Out):
    x: float
    y: float


class GraphNode(Out):
    id: str
    type: str
    data: GraphNodeData
    position: Position


class GraphEdge(Out):
    id: str
    source: str
    target: str


class Graph(Out):
    """The task tree as ReactFlow nodes and edges."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]


class Activity(Out):
    """The session's snapshots per equal slice of its life, from its first snapshot to its
    last (one slice when they are at the same instant; none without snapshots)."""

    start: datetime | None
    end: datetime | None
    snapshots: list[int]


class SessionStats(Out):
    last_activity_at: datetime
    total_messages: int
    total_tool_calls: int
    total_snapshots: int
    total_tokens: int
    usage: dict[str, Any] = Field(description="The session's LLM calls: tokens, calls, cost_usd.")
    context_tokens: int
    llm_calls: int
    tool_calls_by_status: dict[str, int]
    activity: Activity


SnapshotPage = _listing(SnapshotOut, "SnapshotPage", paged=True)
Timeline = _listing(TimelineEntry, "Timeline", paged=False)
