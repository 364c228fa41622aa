"""The request bodies and answers of ``/v1/checkpoints`` (docs/design.md, "Checkpoints"):
part of ``kontex.api.shapes`` (which gives these names too), kept apart so the other routers'
first request does not create them (cold start: docs/benchmarks.md, "Cold start, fourth round
(issue 25)")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from kontex.api.shapes import Bundle, BundleIn, Out, _Body
from kontex.domain.models import JsonBool, JsonIntCheck, Message, SnapshotBase

# -- checkpoints (docs/design.md, "Checkpoints") -------------------------------------------------

ThreadId = Annotated[str, Field(min_length=1, max_length=512)]
Namespace = Annotated[str, Field(max_length=512)]
CheckpointId = Annotated[str, Field(min_length=1, max_length=128)]


class PutCheckpoint(_Body):
    thread_id: ThreadId
    namespace: Namespace = ""
    checkpoint_id: CheckpointId
    parent_id: CheckpointId | None = None
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="What `GET /v1/checkpoints?filter=` matches."
    )
    bundle: BundleIn
    base: SnapshotBase | None = Field(
        default=None, description="A delta write over this base (usually the parent's snapshot)."
    )
    thread_name: str | None = Field(
        default=None, min_length=1, max_length=200, description="The session's name, if new."
    )
    thread_metadata: dict[str, Any] | None = Field(
        default=None, description="The session's metadata, if new."
    )


class WriteIn(_Body):
    task_id: str = Field(min_length=1, max_length=512)
    idx: Annotated[int, Field(ge=-(2**31), le=2**31 - 1), JsonIntCheck]
    channel: str = Field(min_length=1, max_length=512)
    value: Any = Field(description="The client's serialised value (any JSON), kept as it is.")
    task_path: str = Field(default="", max_length=2048)


class PutWrites(_Body):
    thread_id: ThreadId
    namespace: Namespace = ""
    checkpoint_id: CheckpointId
    writes: list[WriteIn] = Field(max_length=10_000)
    replace: JsonBool = Field(
        default=False, description="Replace writes already stored (same task and idx)."
    )
    thread_name: str | None = Field(
        default=None, min_length=1, max_length=200, description="The session's name, if new."
    )
    thread_metadata: dict[str, Any] | None = Field(
        default=None, description="The session's metadata, if new."
    )


class CopyThread(_Body):
    source_thread_id: ThreadId
    target_thread_id: ThreadId
    thread_name: str | None = Field(default=None, min_length=1, max_length=200)
    thread_metadata: dict[str, Any] | None = None


class PruneThreads(_Body):
    thread_ids: list[ThreadId] = Field(max_length=1000)
    strategy: Literal["keep_latest", "delete"] = "keep_latest"


class DeleteRuns(_Body):
    run_ids: list[Annotated[str, Field(min_length=1, max_length=512)]] = Field(max_length=1000)


class CheckpointRef(Out):
    """Where a checkpoint was stored."""

    thread_id: str
    namespace: str
    checkpoint_id: str
    session_id: str
    task_id: str
    snapshot_id: str


class PendingWrite(Out):
    task_id: str
    idx: int
    channel: str
    value: Any
    task_path: str


class CheckpointOut(Out):
    """A checkpoint with its state (the bundle of its snapshot) and pending writes."""

    thread_id: str
    namespace: str
    checkpoint_id: str
    parent_id: str | None
    metadata: dict[str, Any]
    created_at: datetime
    session_id: str
    snapshot_id: str
    bundle: Bundle
    writes: list[PendingWrite]
    message_refs: list[int] | None = Field(
        default=None,
        description="shared_messages: indexes of the page's `messages` (bundle: none).",
    )


class CheckpointPage(Out):
    data: list[CheckpointOut]
    next_cursor: str | None
    messages: list[Message] | None = Field(
        default=None,
        description="shared_messages: each distinct message of the page, once.",
    )


class Removed(Out):
    removed: int


class Copied(Out):
    copied: int
