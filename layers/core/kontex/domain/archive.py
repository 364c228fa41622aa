"""A session as an archive (docs/export-format.md): every row Kontex serves of it, its content as
stored (items, chunks, manifests, large file bodies, each named by its hash) and the names its
account knows it by (checkpoint threads, thread states, trace links, aliases).

``GET /v1/sessions/{id}/export`` answers this document and ``POST /v1/sessions/import`` takes
it (``services/archive.py``); the client keeps it as a ``.kontex`` zip. Bytes travel as
base64. The fields are the stored ones, so an import writes the same rows: export -> import ->
export gives the same document but for the ids (new ones, unless ``keep_ids``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from kontex.domain.models import SessionStatus, SnapshotSource, TaskStatus, Usage


def _utc(value: datetime) -> datetime:
    """Times in UTC (a time without a zone is UTC, as in queries)."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("the time is out of range") from error


Time = Annotated[datetime, AfterValidator(_utc)]
Base64 = Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]*={0,2}$", description="base64 bytes")]
Hex32 = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description="a 16-byte address, hex")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="sha256, hex")]
Id = Annotated[str, Field(min_length=1, max_length=128)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Text512 = Annotated[str, Field(max_length=512)]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class ArchivedSession(_Row):
    id: Id
    name: Name
    description: str | None = Field(default=None, max_length=5000)
    metadata: dict[str, Any] = Field(default_factory=dict)
    status: SessionStatus = SessionStatus.ACTIVE
    created_at: Time
    updated_at: Time


class ArchivedTask(_Row):
    id: Id
    parent_task_id: Id | None = None
    name: Name
    status: TaskStatus = TaskStatus.PENDING
    created_at: Time
    updated_at: Time


class ArchivedRevision(_Row):
    """An enrichment (seq 1, 2, ...): its manifest names its whole bundle."""

    seq: int = Field(ge=1, le=1_000_000)
    bundle_hash: Sha256
    token_total: int = Field(ge=0, le=2**62)
    model: str | None = None
    stored_bytes: int = Field(default=0, ge=0, le=2**62)
    created_at: Time
    manifest: Base64


class ArchivedSnapshot(_Row):
    """The sealed row as first written (its revisions apart): ``usage`` is what the row counts
    in the session's stats (its columns; null when the snapshot is not one LLM call)."""

    id: Id
    task_id: Id
    label: str = Field(min_length=1, max_length=500)
    source: SnapshotSource
    model: str | None = None
    token_total: int = Field(ge=0, le=2**62)
    parent_snapshot_id: Id | None = None
    rollback_of: Id | None = None
    forked_from: Id | None = None
    bundle_hash: Sha256
    stored_bytes: int = Field(default=0, ge=0, le=2**62)
    captured_at: Time
    created_at: Time
    usage: Usage | None = None
    manifest: Base64
    revisions: list[ArchivedRevision] = Field(default_factory=list)


class ArchivedItem(_Row):
    """A distinct message, tool call, file entry, log event or reasoning text of the session:
    ``address`` is sha256(kind, NUL, body)[:16]."""

    address: Hex32
    kind: Literal["message", "tool_call", "file", "log_event", "reasoning"]
    body: Base64
    tokens: int = Field(default=0, ge=0, le=2**31 - 1)
    position: int = Field(default=0, ge=0, le=2**31 - 1)
    first_seen_at: Time
    role: str | None = Field(default=None, max_length=16)
    has_text: bool = False
    has_tool_use: bool = False
    has_tool_result: bool = False
    tool_name: str | None = None
    is_error: bool = False


class ArchivedChunk(_Row):
    """A chunk of a list: its item addresses, 16 bytes each; ``address`` is their hash."""

    address: Hex32
    refs: Base64


class ArchivedBody(_Row):
    """A file body over 64 KiB (kept in the object store), named by its sha256."""

    sha256: Sha256
    data: Base64


class ArchivedNamespace(_Row):
    """A checkpoint namespace of a LangGraph thread: the task holding its checkpoints."""

    thread_id: Annotated[str, Field(min_length=1, max_length=512)]
    ns: Text512 = ""
    task_id: Id
    created_at: Time


class ArchivedCheckpoint(_Row):
    thread_id: Annotated[str, Field(min_length=1, max_length=512)]
    ns: Text512 = ""
    checkpoint_id: Annotated[str, Field(min_length=1, max_length=128)]
    parent_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    snapshot_id: Id
    metadata: dict[str, Any] = Field(default_factory=dict)
    run_id: Text512 | None = None
    created_at: Time


class ArchivedWrite(_Row):
    thread_id: Annotated[str, Field(min_length=1, max_length=512)]
    ns: Text512 = ""
    checkpoint_id: Annotated[str, Field(min_length=1, max_length=128)]
    task_id: Annotated[str, Field(min_length=1, max_length=512)]
    idx: int = Field(ge=-(2**31), le=2**31 - 1)
    channel: Annotated[str, Field(min_length=1, max_length=512)]
    value: str = Field(description="The client's serialised value, as stored.")
    task_path: str = Field(default="", max_length=2048)


class ArchivedThreadState(_Row):
    """A thread-state document naming the session (an Agents SDK session's index): its ids
    are mapped with the session's on import."""

    thread_id: str = Field(pattern=r"^thrd_[a-zA-Z0-9-]{27,59}$")
    user_data: str
    version: int = Field(ge=1, le=2**31 - 1)
    updated_at: Time


class ArchivedTrace(_Row):
    """An OpenTelemetry trace linked to the session."""

    trace_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    created_at: Time


class SessionArchive(_Row):
    """One session, exactly as stored (docs/export-format.md, version 2)."""

    format: Literal["kontex-session"] = "kontex-session"
    version: Literal[2] = 2
    session: ArchivedSession
    tasks: list[ArchivedTask] = Field(description="Parents before children.")
    snapshots: list[ArchivedSnapshot] = Field(description="Oldest first.")
    items: list[ArchivedItem] = Field(default_factory=list)
    chunks: list[ArchivedChunk] = Field(default_factory=list)
    bodies: list[ArchivedBody] = Field(default_factory=list)
    checkpoint_namespaces: list[ArchivedNamespace] = Field(default_factory=list)
    checkpoints: list[ArchivedCheckpoint] = Field(default_factory=list)
    checkpoint_writes: list[ArchivedWrite] = Field(default_factory=list)
    thread_states: list[ArchivedThreadState] = Field(default_factory=list)
    traces: list[ArchivedTrace] = Field(default_factory=list)
    aliases: list[Annotated[str, Field(min_length=1, max_length=2048)]] = Field(
        default_factory=list, description="Other names spans know the session by."
    )


class ImportedSession(_Row):
    """What an import wrote: the new session and each archived id's new id."""

    session_id: str
    ids: dict[str, str] = Field(description="Archived id -> its id here (equal with keep_ids).")
    tasks: int
    snapshots: int
    revisions: int
    items: int
    checkpoints: int
    thread_states: int
