"""The request bodies and answers of the keys, tasks, snapshots, threads and queries routes, and
the live feed's event: part of ``kontex.api.shapes`` (which gives these names too), kept apart so
that a session listing, the REST function's usual first request, does not create them (cold
start: docs/benchmarks.md, "Cold start, fifth round: as the layers ship (issue 25)")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from kontex.api.shapes import (
    MAX_TOKENS,
    Out,
    SnapshotOut,
    TaskOut,
    _Body,
    _listing,
    public,
)
from kontex.domain.models import (
    ApiKey,
    ContextBundle,
    ContextFile,
    JsonIntCheck,
    JsonTime,
    LogEvent,
    Message,
    SnapshotBase,
    TaskStatus,
    ThreadState,
    ToolCall,
    camel,
)

# -- request bodies -----------------------------------------------------------------------------


class CreateKey(_Body):
    label: str = Field(min_length=1, max_length=200)


class PatchTask(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    status: TaskStatus | None = None


class BundleIn(_Body):
    """A bundle as written; the original system's camelCase keys are accepted too."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model: str | None = None
    messages: list[Message]
    tool_calls: list[ToolCall] = Field(default_factory=list, validation_alias=camel("tool_calls"))
    files: list[ContextFile] = Field(default_factory=list)
    reasoning: str | None = None
    log_events: list[LogEvent] = Field(default_factory=list, validation_alias=camel("log_events"))
    token_total: Annotated[int, Field(ge=0, le=MAX_TOKENS), JsonIntCheck] | None = Field(
        default=None,
        validation_alias=camel("token_total"),
        description="The bundle's tokens, as the caller counts them (at most 10^12: the sums"
        " of a session's and an account's stay within 64 bits).",
    )
    captured_at: JsonTime | None = Field(default=None, validation_alias=camel("captured_at"))


class CreateSnapshot(_Body):
    label: str = Field(min_length=1, max_length=500)
    bundle: BundleIn
    base: SnapshotBase | None = Field(
        default=None,
        description="A delta write: the bundle holds only what is new over this base"
        ' (docs/design.md, "Delta writes").',
    )


class EnrichSnapshot(_Body):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    messages: list[Message] | None = None
    tool_calls: list[ToolCall] | None = Field(default=None, validation_alias=camel("tool_calls"))
    files: list[ContextFile] | None = None
    reasoning: str | None = None
    log_events: list[LogEvent] | None = Field(default=None, validation_alias=camel("log_events"))
    model: str | None = None


class ForkSnapshot(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    session_id: str | None = Field(
        default=None, description="Another session of the account to fork into (default: the same)."
    )


class SaveThreadState(_Body):
    user_data: str


ApiKeyOut = public(ApiKey, "ApiKey", without={"account_id"}, doc="An API key (never the secret).")

ThreadStateOut = public(
    ThreadState, "ThreadState", without={"account_id"}, doc="A thread's saved state."
)


class BundleContent(public(ContextBundle, "_Content", without=set(), doc="")):  # type: ignore[misc]
    """A snapshot's content as captured."""


class CreatedKey(Out):
    """A new key: ``key`` is the secret, shown this once."""

    id: str
    key: str
    label: str
    created_at: datetime


class Bundle(BundleContent):
    """A snapshot's content, with the ids of its snapshot."""

    snapshot_id: str
    session_id: str
    task_id: str


class SnapshotWithBundle(SnapshotOut):  # type: ignore[valid-type,misc]
    bundle: Bundle


class Revision(Out):
    seq: int
    token_total: int
    model: str | None
    created_at: datetime


class Fork(Out):
    task: TaskOut = Field(description="The new branch task.")  # type: ignore[valid-type]
    snapshot: SnapshotOut = Field(  # type: ignore[valid-type]
        description="Its first snapshot, with the source's content."
    )


class AccountUsage(Out):
    usage: dict[str, Any]
    usage_this_month: dict[str, Any]


class MessageRecord(Out):
    """A row of ``GET /v1/messages``: a stored message and where it was first seen."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True, extra="allow")

    id: str
    session_id: str
    created_at: datetime
    token_count: int | None


class ToolCallRecord(Out):
    """A row of ``GET /v1/tool-calls``: a tool call, once, in its latest state (pending until
    its output is seen), and when it was first seen."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True, extra="allow")

    session_id: str
    is_error: bool
    created_at: datetime


class LiveEvent(BaseModel):
    """A pushed event of the live feed (``snapshot.created``, ``session.updated``...); a
    reader takes a frame without ``id``, ``session_id`` or ``data`` too."""

    id: str | None = None
    type: str
    session_id: str | None = None
    data: dict[str, Any] = {}  # a plain default (pydantic copies it), so the schema shows it


MessageRecordPage = _listing(MessageRecord, "MessageRecordPage", paged=True)
ToolCallRecordPage = _listing(ToolCallRecord, "ToolCallRecordPage", paged=True)
ApiKeyList = _listing(ApiKeyOut, "ApiKeyList", paged=False)
RevisionList = _listing(Revision, "RevisionList", paged=False)
