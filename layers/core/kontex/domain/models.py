"""The Kontex domain: pydantic v2 models, no I/O.

Snapshot content (a ``ContextBundle``) is kept exactly as written: message content may be a
string or a list of content blocks, and unknown keys on messages, blocks, tool calls and log
events are preserved. Two things are filled in when absent: a file's ``content_hash`` and its
``token_count``.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


def utcnow() -> datetime:
    return datetime.now(UTC)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SessionStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"


class TaskStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"


class SnapshotSource(StrEnum):
    API = "api"
    OPENLLMETRY = "openllmetry"
    PROXY = "proxy"
    MCP = "mcp"
    ROLLBACK = "rollback"


class _Record(BaseModel):
    """A stored row: strict field names, no extras."""

    model_config = ConfigDict(extra="forbid")


class Account(_Record):
    id: str
    name: str | None = None
    created_at: datetime


class ApiKey(_Record):
    id: str
    account_id: str
    label: str
    prefix: str = Field(description="The first characters of the key, for display only.")
    created_at: datetime
    revoked_at: datetime | None = None


class Session(_Record):
    id: str
    account_id: str
    name: str
    description: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    status: SessionStatus = SessionStatus.ACTIVE
    created_at: datetime
    updated_at: datetime


class Task(_Record):
    id: str
    account_id: str
    session_id: str
    parent_task_id: str | None = None
    name: str
    status: TaskStatus = TaskStatus.PENDING
    created_at: datetime
    updated_at: datetime


# -- bundle content -------------------------------------------------------------------------


class _Content(BaseModel):
    """Content written by users: unknown keys are kept, so a bundle reads back exactly."""

    model_config = ConfigDict(extra="allow")


ContentBlock = dict[str, Any]


class Message(_Content):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[ContentBlock]


class ToolCall(_Content):
    id: str
    tool: str
    input: Any = None
    output: Any = None
    status: Literal["success", "error", "pending"] = "success"
    timestamp: datetime | None = None


class ContextFile(_Content):
    path: Annotated[str, Field(min_length=1)]
    content: str
    content_hash: str | None = None
    token_count: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _hash_matches_content(self) -> ContextFile:
        actual = sha256_hex(self.content.encode("utf-8"))
        if self.content_hash is None:
            self.content_hash = actual
        elif self.content_hash != actual:
            raise ValueError(f"content_hash of {self.path!r} does not match its content")
        return self


class LogEvent(_Content):
    message: str
    level: str = "info"
    timestamp: datetime | None = None
    data: dict[str, Any] | None = None


class ContextBundle(BaseModel):
    """The payload of a snapshot."""

    model_config = ConfigDict(extra="forbid")

    messages: list[Message] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    files: list[ContextFile] = Field(default_factory=list)
    reasoning: str | None = None
    log_events: list[LogEvent] = Field(default_factory=list)
    model: str | None = None
    token_total: int | None = Field(
        default=None, ge=0, description="Computed from the content when not given."
    )
    source: SnapshotSource = SnapshotSource.API
    captured_at: datetime | None = None
    usage: dict[str, Any] | None = Field(
        default=None,
        description="The LLM call this snapshot records: input_tokens, output_tokens,"
        " cache_read_tokens, cache_write_tokens, latency_ms, cost_usd (each when known).",
    )


class Snapshot(_Record):
    id: str
    account_id: str
    session_id: str
    task_id: str
    label: str
    source: SnapshotSource
    model: str | None = None
    token_total: int = 0
    parent_snapshot_id: str | None = None
    rollback_of: str | None = None
    forked_from: str | None = None
    bundle_hash: str = Field(description="sha256 of the snapshot's manifest (its content address).")
    stored_bytes: int = Field(default=0, description="Bytes of content this snapshot stored first.")
    captured_at: datetime
    created_at: datetime
    enriched: bool = False
    enriched_at: datetime | None = None


class ThreadState(_Record):
    account_id: str
    thread_id: str
    user_data: str
    version: int
    updated_at: datetime


THREAD_ID_RE = re.compile(r"^thrd_[a-zA-Z0-9-]{27,59}$")
THREAD_STATE_MAX_BYTES = 1024 * 1024


def validate_thread_id(thread_id: str) -> str:
    if not THREAD_ID_RE.fullmatch(thread_id):
        raise ValueError("thread ids are 'thrd_' followed by 27 to 59 of [a-zA-Z0-9-]")
    return thread_id
