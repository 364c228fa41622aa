# Generated from /v1/openapi.json by clients/python/scripts/gen_models.py: do not edit.

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class AccountUsage(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    usage: dict[str, Any] = Field(..., title="Usage")
    usage_this_month: dict[str, Any] = Field(..., title="Usage This Month")


class Activity(BaseModel):
    """
    The session's snapshots per equal slice of its life, from its first snapshot to its
    last (one slice when they are at the same instant; none without snapshots).
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    start: AwareDatetime | None = Field(None, title="Start")
    end: AwareDatetime | None = Field(None, title="End")
    snapshots: list[int] = Field(..., title="Snapshots")


class ApiKey(BaseModel):
    """
    An API key (never the secret).
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    id: str = Field(..., title="Id")
    label: str = Field(..., title="Label")
    prefix: str = Field(..., title="Prefix")
    """
    The first characters of the key, for display only.
    """
    created_at: AwareDatetime = Field(..., title="Created At")
    revoked_at: AwareDatetime | None = Field(None, title="Revoked At")


class ApiKeyList(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    data: list[ApiKey] = Field(..., title="Data")


class ArchivedBody(BaseModel):
    """
    A file body over 64 KiB (kept in the object store), named by its sha256.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    sha256: str = Field(..., title="Sha256")
    """
    sha256, hex
    """
    data: str = Field(..., title="Data")
    """
    base64 bytes
    """


class ArchivedCheckpoint(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    thread_id: str = Field(..., title="Thread Id")
    ns: str = Field("", title="Ns")
    checkpoint_id: str = Field(..., title="Checkpoint Id")
    parent_id: str | None = Field(None, title="Parent Id")
    snapshot_id: str = Field(..., title="Snapshot Id")
    metadata: dict[str, Any] | None = Field(None, title="Metadata")
    run_id: str | None = Field(None, title="Run Id")
    created_at: AwareDatetime = Field(..., title="Created At")


class ArchivedChunk(BaseModel):
    """
    A chunk of a list: its item addresses, 16 bytes each; ``address`` is their hash.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    address: str = Field(..., title="Address")
    """
    a 16-byte address, hex
    """
    refs: str = Field(..., title="Refs")
    """
    base64 bytes
    """


class ArchivedItem(BaseModel):
    """
    A distinct message, tool call, file entry, log event or reasoning text of the session:
    ``address`` is sha256(kind, NUL, body)[:16].
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    address: str = Field(..., title="Address")
    """
    a 16-byte address, hex
    """
    kind: Literal["message", "tool_call", "file", "log_event", "reasoning"] | str = Field(
        ..., title="Kind"
    )
    body: str = Field(..., title="Body")
    """
    base64 bytes
    """
    tokens: int = Field(0, title="Tokens")
    position: int = Field(0, title="Position")
    first_seen_at: AwareDatetime = Field(..., title="First Seen At")
    role: str | None = Field(None, title="Role")
    has_text: bool = Field(False, title="Has Text")
    has_tool_use: bool = Field(False, title="Has Tool Use")
    has_tool_result: bool = Field(False, title="Has Tool Result")
    tool_name: str | None = Field(None, title="Tool Name")
    is_error: bool = Field(False, title="Is Error")


class ArchivedNamespace(BaseModel):
    """
    A checkpoint namespace of a LangGraph thread: the task holding its checkpoints.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    thread_id: str = Field(..., title="Thread Id")
    ns: str = Field("", title="Ns")
    task_id: str = Field(..., title="Task Id")
    created_at: AwareDatetime = Field(..., title="Created At")


class ArchivedRevision(BaseModel):
    """
    An enrichment (seq 1, 2, ...): its manifest names its whole bundle.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    seq: int = Field(..., title="Seq")
    bundle_hash: str = Field(..., title="Bundle Hash")
    """
    sha256, hex
    """
    token_total: int = Field(..., title="Token Total")
    model: str | None = Field(None, title="Model")
    stored_bytes: int = Field(0, title="Stored Bytes")
    created_at: AwareDatetime = Field(..., title="Created At")
    manifest: str = Field(..., title="Manifest")
    """
    base64 bytes
    """


class ArchivedThreadState(BaseModel):
    """
    A thread-state document naming the session (an Agents SDK session's index): its ids
    are mapped with the session's on import.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    thread_id: str = Field(..., title="Thread Id")
    user_data: str = Field(..., title="User Data")
    version: int = Field(..., title="Version")
    updated_at: AwareDatetime = Field(..., title="Updated At")


class ArchivedTrace(BaseModel):
    """
    An OpenTelemetry trace linked to the session.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    trace_id: str = Field(..., title="Trace Id")
    created_at: AwareDatetime = Field(..., title="Created At")


class ArchivedWrite(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    thread_id: str = Field(..., title="Thread Id")
    ns: str = Field("", title="Ns")
    checkpoint_id: str = Field(..., title="Checkpoint Id")
    task_id: str = Field(..., title="Task Id")
    idx: int = Field(..., title="Idx")
    channel: str = Field(..., title="Channel")
    value: str = Field(..., title="Value")
    """
    The client's serialised value, as stored.
    """
    task_path: str = Field("", title="Task Path")


class CheckpointRef(BaseModel):
    """
    Where a checkpoint was stored.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    thread_id: str = Field(..., title="Thread Id")
    namespace: str = Field(..., title="Namespace")
    checkpoint_id: str = Field(..., title="Checkpoint Id")
    session_id: str = Field(..., title="Session Id")
    task_id: str = Field(..., title="Task Id")
    snapshot_id: str = Field(..., title="Snapshot Id")


class Copied(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    copied: int = Field(..., title="Copied")


class CreatedKey(BaseModel):
    """
    A new key: ``key`` is the secret, shown this once.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    id: str = Field(..., title="Id")
    key: str = Field(..., title="Key")
    label: str = Field(..., title="Label")
    created_at: AwareDatetime = Field(..., title="Created At")


class FilesDiff(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    added: list[str] = Field(..., title="Added")
    removed: list[str] = Field(..., title="Removed")
    modified: list[str] = Field(..., title="Modified")


class Graph(BaseModel):
    """
    The task tree as ReactFlow nodes and edges.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    nodes: list[dict[str, Any]] = Field(..., title="Nodes")
    edges: list[dict[str, Any]] = Field(..., title="Edges")


class ImportedSession(BaseModel):
    """
    What an import wrote: the new session and each archived id's new id.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    session_id: str = Field(..., title="Session Id")
    ids: dict[str, str] = Field(..., title="Ids")
    """
    Archived id -> its id here (equal with keep_ids).
    """
    tasks: int = Field(..., title="Tasks")
    snapshots: int = Field(..., title="Snapshots")
    revisions: int = Field(..., title="Revisions")
    items: int = Field(..., title="Items")
    checkpoints: int = Field(..., title="Checkpoints")
    thread_states: int = Field(..., title="Thread States")


class LinkedTrace(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    session_id: str = Field(..., title="Session Id")
    trace_ids: list[str] = Field(..., title="Trace Ids")
    snapshots_created: int = Field(..., title="Snapshots Created")


class LiveEvent(BaseModel):
    """
    A pushed event of the live feed (``snapshot.created``, ``session.updated``...); a
    reader takes a frame without ``id``, ``session_id`` or ``data`` too.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    id: str | None = Field(None, title="Id")
    type: str = Field(..., title="Type")
    session_id: str | None = Field(None, title="Session Id")
    data: dict[str, Any] = Field({}, title="Data")


class MessageRecord(BaseModel):
    """
    A row of ``GET /v1/messages``: a stored message and where it was first seen.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    id: str = Field(..., title="Id")
    session_id: str = Field(..., title="Session Id")
    created_at: AwareDatetime = Field(..., title="Created At")
    token_count: int | None = Field(None, title="Token Count")


class MessageRecordPage(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    data: list[MessageRecord] = Field(..., title="Data")
    next_cursor: str | None = Field(None, title="Next Cursor")
    """
    null on the last page
    """


class MessagesDiff(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    common_prefix: int = Field(..., title="Common Prefix")
    """
    How many leading messages are equal.
    """
    added: list[dict[str, Any]] = Field(..., title="Added")
    """
    Messages of `to` after the common prefix.
    """
    removed: list[dict[str, Any]] = Field(..., title="Removed")
    """
    Messages of `from` after the prefix.
    """


class PendingWrite(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    task_id: str = Field(..., title="Task Id")
    idx: int = Field(..., title="Idx")
    channel: str = Field(..., title="Channel")
    value: Any = Field(..., title="Value")
    task_path: str = Field(..., title="Task Path")


class Removed(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    removed: int = Field(..., title="Removed")


class Revision(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    seq: int = Field(..., title="Seq")
    token_total: int = Field(..., title="Token Total")
    model: str | None = Field(None, title="Model")
    created_at: AwareDatetime = Field(..., title="Created At")


class RevisionList(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    data: list[Revision] = Field(..., title="Data")


class SessionStats(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    last_activity_at: AwareDatetime = Field(..., title="Last Activity At")
    total_messages: int = Field(..., title="Total Messages")
    total_tool_calls: int = Field(..., title="Total Tool Calls")
    total_snapshots: int = Field(..., title="Total Snapshots")
    total_tokens: int = Field(..., title="Total Tokens")
    usage: dict[str, Any] = Field(..., title="Usage")
    """
    The session's LLM calls: tokens, calls, cost_usd.
    """
    context_tokens: int = Field(..., title="Context Tokens")
    llm_calls: int = Field(..., title="Llm Calls")
    tool_calls_by_status: dict[str, int] = Field(..., title="Tool Calls By Status")
    activity: Activity


class Snippet(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    text: str = Field(..., title="Text")
    role: str | None = Field(None, title="Role")
    position: int = Field(..., title="Position")
    source: Literal["label", "message", "tool_call", "reasoning", "file", "log_event"] | str = (
        Field(..., title="Source")
    )


class ThreadState(BaseModel):
    """
    A thread's saved state.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    thread_id: str = Field(..., title="Thread Id")
    user_data: str = Field(..., title="User Data")
    version: int = Field(..., title="Version")
    updated_at: AwareDatetime = Field(..., title="Updated At")


class ToolCallRecord(BaseModel):
    """
    A row of ``GET /v1/tool-calls``: a tool call, once, in its latest state (pending until
    its output is seen), and when it was first seen.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    session_id: str = Field(..., title="Session Id")
    is_error: bool = Field(..., title="Is Error")
    created_at: AwareDatetime = Field(..., title="Created At")


class ToolCallRecordPage(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    data: list[ToolCallRecord] = Field(..., title="Data")
    next_cursor: str | None = Field(None, title="Next Cursor")
    """
    null on the last page
    """


class ToolCallsDiff(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    added: list[dict[str, Any]] = Field(..., title="Added")
    removed: list[dict[str, Any]] = Field(..., title="Removed")


class Usage(BaseModel):
    """
    What one captured LLM call used and cost. Tokens are the provider's own counts;
    ``cost_usd`` is priced from the price table (``kontex/data/prices.json``); unknown when the
    model is not in it.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    input_tokens: int = Field(0, title="Input Tokens")
    output_tokens: int = Field(0, title="Output Tokens")
    cache_read_tokens: int | None = Field(None, title="Cache Read Tokens")
    cache_write_tokens: int | None = Field(None, title="Cache Write Tokens")
    latency_ms: float | None = Field(None, title="Latency Ms")
    cost_usd: float | None = Field(None, title="Cost Usd")


class ArchivedSession(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    id: str = Field(..., title="Id")
    name: str = Field(..., title="Name")
    description: str | None = Field(None, title="Description")
    metadata: dict[str, Any] | None = Field(None, title="Metadata")
    status: Literal["active", "paused", "completed"] | str = Field("active", title="SessionStatus")
    created_at: AwareDatetime = Field(..., title="Created At")
    updated_at: AwareDatetime = Field(..., title="Updated At")


class ArchivedSnapshot(BaseModel):
    """
    The sealed row as first written (its revisions apart): ``usage`` is what the row counts
    in the session's stats (its columns; null when the snapshot is not one LLM call).
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    id: str = Field(..., title="Id")
    task_id: str = Field(..., title="Task Id")
    label: str = Field(..., title="Label")
    source: Literal["api", "openllmetry", "proxy", "mcp", "rollback"] | str = Field(
        ..., title="SnapshotSource"
    )
    model: str | None = Field(None, title="Model")
    token_total: int = Field(..., title="Token Total")
    parent_snapshot_id: str | None = Field(None, title="Parent Snapshot Id")
    rollback_of: str | None = Field(None, title="Rollback Of")
    forked_from: str | None = Field(None, title="Forked From")
    bundle_hash: str = Field(..., title="Bundle Hash")
    """
    sha256, hex
    """
    stored_bytes: int = Field(0, title="Stored Bytes")
    captured_at: AwareDatetime = Field(..., title="Captured At")
    created_at: AwareDatetime = Field(..., title="Created At")
    usage: Usage | None = None
    manifest: str = Field(..., title="Manifest")
    """
    base64 bytes
    """
    revisions: list[ArchivedRevision] | None = Field(None, title="Revisions")


class ArchivedTask(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    id: str = Field(..., title="Id")
    parent_task_id: str | None = Field(None, title="Parent Task Id")
    name: str = Field(..., title="Name")
    status: Literal["pending", "active", "completed", "failed"] | str = Field(
        "pending", title="TaskStatus"
    )
    created_at: AwareDatetime = Field(..., title="Created At")
    updated_at: AwareDatetime = Field(..., title="Updated At")


class Bundle(BaseModel):
    """
    A snapshot's content, with the ids of its snapshot.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    messages: list[dict[str, Any]] = Field(..., title="Messages")
    tool_calls: list[dict[str, Any]] = Field(..., title="Tool Calls")
    files: list[dict[str, Any]] = Field(..., title="Files")
    reasoning: str | None = Field(None, title="Reasoning")
    log_events: list[dict[str, Any]] = Field(..., title="Log Events")
    model: str | None = Field(None, title="Model")
    token_total: int | None = Field(None, title="Token Total")
    """
    Computed from the content when not given.
    """
    source: Literal["api", "openllmetry", "proxy", "mcp", "rollback"] | str = Field(
        "api", title="SnapshotSource"
    )
    captured_at: AwareDatetime | None = Field(None, title="Captured At")
    usage: Usage | None = None
    snapshot_id: str = Field(..., title="Snapshot Id")
    session_id: str = Field(..., title="Session Id")
    task_id: str = Field(..., title="Task Id")


class CheckpointOut(BaseModel):
    """
    A checkpoint with its state (the bundle of its snapshot) and pending writes.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    thread_id: str = Field(..., title="Thread Id")
    namespace: str = Field(..., title="Namespace")
    checkpoint_id: str = Field(..., title="Checkpoint Id")
    parent_id: str | None = Field(None, title="Parent Id")
    metadata: dict[str, Any] = Field(..., title="Metadata")
    created_at: AwareDatetime = Field(..., title="Created At")
    session_id: str = Field(..., title="Session Id")
    snapshot_id: str = Field(..., title="Snapshot Id")
    bundle: Bundle
    writes: list[PendingWrite] = Field(..., title="Writes")
    message_refs: list[int] | None = Field(None, title="Message Refs")
    """
    shared_messages: indexes of the page's `messages` (bundle: none).
    """


class CheckpointPage(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    data: list[CheckpointOut] = Field(..., title="Data")
    next_cursor: str | None = Field(None, title="Next Cursor")
    messages: list[dict[str, Any]] | None = Field(None, title="Messages")
    """
    shared_messages: each distinct message of the page, once.
    """


class Diff(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    from_: str = Field(..., alias="from", title="From")
    to: str = Field(..., title="To")
    messages: MessagesDiff
    tool_calls: ToolCallsDiff
    files: FilesDiff
    token_delta: int = Field(..., title="Token Delta")


class SearchHit(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    snapshot_id: str = Field(..., title="Snapshot Id")
    session_id: str = Field(..., title="Session Id")
    task_id: str = Field(..., title="Task Id")
    label: str = Field(..., title="Label")
    score: float = Field(..., title="Score")
    created_at: AwareDatetime = Field(..., title="Created At")
    snippet: Snippet


class SearchResults(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    results: list[SearchHit] = Field(..., title="Results")


class Session(BaseModel):
    """
    A session.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    id: str = Field(..., title="Id")
    name: str = Field(..., title="Name")
    description: str | None = Field(None, title="Description")
    metadata: dict[str, Any] = Field(..., title="Metadata")
    status: Literal["active", "paused", "completed"] | str = Field("active", title="SessionStatus")
    created_at: AwareDatetime = Field(..., title="Created At")
    updated_at: AwareDatetime = Field(..., title="Updated At")


class SessionArchive(BaseModel):
    """
    One session, exactly as stored (docs/export-format.md, version 2).
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    format: Literal["kontex-session"] = Field("kontex-session", title="Format")
    version: Literal[2] = Field(2, title="Version")
    session: ArchivedSession
    tasks: list[ArchivedTask] = Field(..., title="Tasks")
    """
    Parents before children.
    """
    snapshots: list[ArchivedSnapshot] = Field(..., title="Snapshots")
    """
    Oldest first.
    """
    items: list[ArchivedItem] | None = Field(None, title="Items")
    chunks: list[ArchivedChunk] | None = Field(None, title="Chunks")
    bodies: list[ArchivedBody] | None = Field(None, title="Bodies")
    checkpoint_namespaces: list[ArchivedNamespace] | None = Field(
        None, title="Checkpoint Namespaces"
    )
    checkpoints: list[ArchivedCheckpoint] | None = Field(None, title="Checkpoints")
    checkpoint_writes: list[ArchivedWrite] | None = Field(None, title="Checkpoint Writes")
    thread_states: list[ArchivedThreadState] | None = Field(None, title="Thread States")
    traces: list[ArchivedTrace] | None = Field(None, title="Traces")
    aliases: list[str] | None = Field(None, title="Aliases")
    """
    Other names spans know the session by.
    """


class SessionPage(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    data: list[Session] = Field(..., title="Data")
    next_cursor: str | None = Field(None, title="Next Cursor")
    """
    null on the last page
    """


class Snapshot(BaseModel):
    """
    A snapshot's metadata (its content is its bundle).
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    id: str = Field(..., title="Id")
    session_id: str = Field(..., title="Session Id")
    task_id: str = Field(..., title="Task Id")
    label: str = Field(..., title="Label")
    source: Literal["api", "openllmetry", "proxy", "mcp", "rollback"] | str = Field(
        ..., title="SnapshotSource"
    )
    model: str | None = Field(None, title="Model")
    token_total: int = Field(0, title="Token Total")
    parent_snapshot_id: str | None = Field(None, title="Parent Snapshot Id")
    rollback_of: str | None = Field(None, title="Rollback Of")
    forked_from: str | None = Field(None, title="Forked From")
    stored_bytes: int = Field(0, title="Stored Bytes")
    """
    Bytes of content this snapshot stored first.
    """
    captured_at: AwareDatetime = Field(..., title="Captured At")
    created_at: AwareDatetime = Field(..., title="Created At")
    enriched: bool = Field(False, title="Enriched")
    enriched_at: AwareDatetime | None = Field(None, title="Enriched At")
    usage: Usage | None = None
    """
    The captured LLM call's usage, latency and cost, if any.
    """


class SnapshotPage(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    data: list[Snapshot] = Field(..., title="Data")
    next_cursor: str | None = Field(None, title="Next Cursor")
    """
    null on the last page
    """


class SnapshotWithBundle(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    id: str = Field(..., title="Id")
    session_id: str = Field(..., title="Session Id")
    task_id: str = Field(..., title="Task Id")
    label: str = Field(..., title="Label")
    source: Literal["api", "openllmetry", "proxy", "mcp", "rollback"] | str = Field(
        ..., title="SnapshotSource"
    )
    model: str | None = Field(None, title="Model")
    token_total: int = Field(0, title="Token Total")
    parent_snapshot_id: str | None = Field(None, title="Parent Snapshot Id")
    rollback_of: str | None = Field(None, title="Rollback Of")
    forked_from: str | None = Field(None, title="Forked From")
    stored_bytes: int = Field(0, title="Stored Bytes")
    """
    Bytes of content this snapshot stored first.
    """
    captured_at: AwareDatetime = Field(..., title="Captured At")
    created_at: AwareDatetime = Field(..., title="Created At")
    enriched: bool = Field(False, title="Enriched")
    enriched_at: AwareDatetime | None = Field(None, title="Enriched At")
    usage: Usage | None = None
    """
    The captured LLM call's usage, latency and cost, if any.
    """
    bundle: Bundle


class Task(BaseModel):
    """
    A task of a session.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    id: str = Field(..., title="Id")
    session_id: str = Field(..., title="Session Id")
    parent_task_id: str | None = Field(None, title="Parent Task Id")
    name: str = Field(..., title="Name")
    status: Literal["pending", "active", "completed", "failed"] | str = Field(
        "pending", title="TaskStatus"
    )
    created_at: AwareDatetime = Field(..., title="Created At")
    updated_at: AwareDatetime = Field(..., title="Updated At")


class TaskNode(BaseModel):
    """
    A task in the session's tree, with its children.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    id: str = Field(..., title="Id")
    session_id: str = Field(..., title="Session Id")
    parent_task_id: str | None = Field(None, title="Parent Task Id")
    name: str = Field(..., title="Name")
    status: Literal["pending", "active", "completed", "failed"] | str = Field(
        "pending", title="TaskStatus"
    )
    created_at: AwareDatetime = Field(..., title="Created At")
    updated_at: AwareDatetime = Field(..., title="Updated At")
    children: list[TaskNode] = Field(..., title="Children")


class TaskTree(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    data: list[TaskNode] = Field(..., title="Data")


class TimelineEntry(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    id: str = Field(..., title="Id")
    session_id: str = Field(..., title="Session Id")
    task_id: str = Field(..., title="Task Id")
    label: str = Field(..., title="Label")
    source: Literal["api", "openllmetry", "proxy", "mcp", "rollback"] | str = Field(
        ..., title="SnapshotSource"
    )
    model: str | None = Field(None, title="Model")
    token_total: int = Field(0, title="Token Total")
    parent_snapshot_id: str | None = Field(None, title="Parent Snapshot Id")
    rollback_of: str | None = Field(None, title="Rollback Of")
    forked_from: str | None = Field(None, title="Forked From")
    stored_bytes: int = Field(0, title="Stored Bytes")
    """
    Bytes of content this snapshot stored first.
    """
    captured_at: AwareDatetime = Field(..., title="Captured At")
    created_at: AwareDatetime = Field(..., title="Created At")
    enriched: bool = Field(False, title="Enriched")
    enriched_at: AwareDatetime | None = Field(None, title="Enriched At")
    usage: Usage | None = None
    """
    The captured LLM call's usage, latency and cost, if any.
    """
    task_name: str | None = Field(None, title="Task Name")
    token_delta: int = Field(..., title="Token Delta")
    """
    Against its parent; a task's first: its whole total.
    """
    context_window: int | None = Field(None, title="Context Window")
    """
    The context window of the snapshot's model in tokens (the price table's), when known.
    """


class Fork(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    task: Task
    """
    The new branch task.
    """
    snapshot: Snapshot
    """
    Its first snapshot, with the source's content.
    """


class Timeline(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
    )
    data: list[TimelineEntry] = Field(..., title="Data")


TaskNode.model_rebuild()
