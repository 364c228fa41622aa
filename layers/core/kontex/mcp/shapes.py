"""What the MCP tools answer: pydantic models, published as each tool's output schema.

Field names and values are those of the REST API's JSON (snake_case, ISO 8601 UTC), so an agent
and a REST client read one vocabulary.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class SessionOut(BaseModel):
    id: str
    name: str
    description: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    status: Literal["active", "paused", "completed"]
    created_at: str
    updated_at: str


class TaskOut(BaseModel):
    id: str
    session_id: str
    parent_task_id: str | None = None
    name: str
    status: Literal["pending", "active", "completed", "failed"]
    created_at: str
    updated_at: str


class SnapshotOut(BaseModel):
    """A snapshot's metadata (its content is read with ``kontex_get_context``)."""

    id: str
    session_id: str
    task_id: str
    label: str
    source: str
    model: str | None = None
    token_total: int
    parent_snapshot_id: str | None = None
    rollback_of: str | None = None
    forked_from: str | None = None
    stored_bytes: int
    captured_at: str
    created_at: str
    enriched: bool = False
    enriched_at: str | None = None
    usage: dict[str, Any] | None = None


class BundleOut(BaseModel):
    """A snapshot's content as captured."""

    messages: list[dict[str, Any]]
    tool_calls: list[dict[str, Any]]
    files: list[dict[str, Any]]
    reasoning: str | None = None
    log_events: list[dict[str, Any]]
    model: str | None = None
    token_total: int | None = None
    source: str
    captured_at: str | None = None
    usage: dict[str, Any] | None = None


class ContextOut(BaseModel):
    snapshot: SnapshotOut
    bundle: BundleOut


class RollbackOut(BaseModel):
    snapshot: SnapshotOut = Field(
        description="The new forward snapshot holding the restored state."
    )
    rolled_back_to: str = Field(description="The snapshot whose state was restored.")
    bundle: BundleOut = Field(description="The restored content.")
    resume: str = Field(description="How to continue the run from here.")


class SnapshotList(BaseModel):
    snapshots: list[SnapshotOut] = Field(description="Oldest first.")
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null on the last page."
    )


class ForkOut(BaseModel):
    task: TaskOut = Field(description="The new branch task.")
    snapshot: SnapshotOut = Field(description="Its first snapshot, with the source's content.")


class MessagesDiff(BaseModel):
    common_prefix: int = Field(description="How many leading messages are equal.")
    added: list[dict[str, Any]] = Field(description="Messages of `to` after the common prefix.")
    removed: list[dict[str, Any]] = Field(description="Messages of `from` after the prefix.")


class ToolCallsDiff(BaseModel):
    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]


class FilesDiff(BaseModel):
    added: list[str]
    removed: list[str]
    modified: list[str]


class DiffOut(BaseModel):
    from_: str = Field(alias="from")
    to: str
    messages: MessagesDiff
    tool_calls: ToolCallsDiff
    files: FilesDiff
    token_delta: int


class Snippet(BaseModel):
    text: str
    role: str | None = None
    position: int | None = None
    source: str | None = None


class SearchHit(BaseModel):
    snapshot_id: str
    session_id: str
    task_id: str
    label: str
    score: float
    created_at: str
    snippet: Snippet


class SearchOut(BaseModel):
    results: list[SearchHit] = Field(description="Best match first.")


class RestoredOut(BaseModel):
    snapshot_id: str
    format: Literal["anthropic", "openai"]
    system: str | None = Field(
        default=None,
        description="Anthropic: the system prompt, passed apart from the messages. OpenAI: null"
        " (system messages stay in `messages`).",
    )
    messages: list[dict[str, Any]] = Field(description="Ready to send as the API's `messages`.")
    repairs: list[str] = Field(
        description="What was changed to make the conversation valid for the API (empty: none)."
    )
