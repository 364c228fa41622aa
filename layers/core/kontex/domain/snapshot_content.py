"""Snapshot content: a snapshot, its ``ContextBundle`` (messages, tool calls, files, log
events, usage) and a thread's saved state, as pydantic models (the rules of the bundle:
``kontex.domain.models``, which gives these names too).

Kept apart from the session, task and key models because creating these classes costs several
milliseconds at import, which the functions whose first request reads no snapshot (the proxy,
a session listing) need not pay (docs/benchmarks.md, "Cold start, fourth round (issue 25)").
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from kontex.domain.models import (
    JsonBool,
    JsonInt,
    JsonIntCheck,
    JsonTime,
    SnapshotSource,
    _Record,
    camel,
    sha256_hex,
)

# -- bundle content -------------------------------------------------------------------------


class _Content(BaseModel):
    """Content written by users: unknown keys are kept, so a bundle reads back exactly."""

    model_config = ConfigDict(defer_build=True, extra="allow")


ContentBlock = dict[str, Any]


class Message(_Content):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[ContentBlock]


class ToolCall(_Content):
    id: str = Field(
        default="", description="Derived from tool, input and timestamp when not given."
    )
    tool: str
    input: Any = None
    output: Any = None
    status: Literal["success", "error", "pending"] = "success"
    timestamp: JsonTime | None = None

    @model_validator(mode="after")
    def _derive_id(self) -> ToolCall:
        if not self.id:
            basis = json.dumps(
                {
                    "tool": self.tool,
                    "input": self.input,
                    "timestamp": self.timestamp.isoformat() if self.timestamp else None,
                },
                sort_keys=True,
                separators=(",", ":"),
                default=str,
            )
            self.id = "call_" + sha256_hex(basis.encode("utf-8"))[:24]
        return self


class ContextFile(_Content):
    model_config = ConfigDict(defer_build=True, extra="allow", populate_by_name=True)

    path: Annotated[str, Field(min_length=1)]
    content: str
    content_hash: str | None = Field(
        default=None,
        validation_alias=camel("content_hash"),
        description="sha256 of content (hex); when given it must match (else a 400).",
    )
    # an INTEGER column (PostgreSQL): at most 2^31-1
    token_count: Annotated[int, Field(ge=0, le=2**31 - 1), JsonIntCheck] | None = Field(
        default=None, validation_alias=camel("token_count")
    )

    @model_validator(mode="after")
    def _hash_matches_content(self) -> ContextFile:
        actual = sha256_hex(self.content.encode("utf-8"))
        if self.content_hash is None:
            self.content_hash = actual
        elif self.content_hash != actual:
            raise ValueError(f"content_hash of {self.path!r} does not match its content")
        return self


class LogEvent(_Content):
    """``{message, level, timestamp, data}`` or the original system's ``{type, timestamp,
    data}``; other keys are kept."""

    model_config = ConfigDict(
        defer_build=True,
        extra="allow",
        json_schema_extra={  # what _says_something checks
            "anyOf": [
                {"required": ["message"], "properties": {"message": {"type": "string"}}},
                {"required": ["type"], "properties": {"type": {"type": "string"}}},
            ]
        },
    )

    type: str | None = None
    message: str | None = None
    level: str = "info"
    timestamp: JsonTime | None = None
    data: Any = None

    @model_validator(mode="after")
    def _says_something(self) -> LogEvent:
        if self.message is None and self.type is None:
            raise ValueError("a log event needs a message or a type")
        return self

    @model_serializer(mode="wrap")
    def _without_absent_kind(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """``type`` and ``message`` appear only when given (stored bytes stay as written)."""
        out: dict[str, Any] = handler(self)
        for name in ("type", "message"):
            if out.get(name) is None:
                out.pop(name, None)
        return out


class Usage(BaseModel):
    """What one captured LLM call used and cost. Tokens are the provider's own counts;
    ``cost_usd`` is priced from the price table (``kontex/data/prices.json``); unknown when the
    model is not in it."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cache_read_tokens: int | None = Field(default=None, ge=0)
    cache_write_tokens: int | None = Field(default=None, ge=0)
    latency_ms: float | None = Field(default=None, ge=0)
    cost_usd: float | None = Field(default=None, ge=0)


class ContextBundle(BaseModel):
    """The payload of a snapshot. ``usage`` is set on the snapshot of one captured LLM call
    (proxy, OTLP): what that call used, counted once however many snapshots follow."""

    model_config = ConfigDict(defer_build=True, extra="forbid", populate_by_name=True)

    messages: list[Message] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list, validation_alias=camel("tool_calls"))
    files: list[ContextFile] = Field(default_factory=list)
    reasoning: str | None = None
    log_events: list[LogEvent] = Field(default_factory=list, validation_alias=camel("log_events"))
    model: str | None = None
    token_total: int | None = Field(
        default=None,
        ge=0,
        description="Computed from the content when not given.",
        validation_alias=camel("token_total"),
    )
    source: SnapshotSource = SnapshotSource.API
    captured_at: datetime | None = Field(default=None, validation_alias=camel("captured_at"))
    usage: Usage | None = None
    # a bundle read from storage: each message's JSON as stored (what its model dumps), so an
    # answer may carry them without dumping and encoding them again
    _message_json: list[bytes] | None = PrivateAttr(default=None)

    @model_serializer(mode="wrap")
    def _usage_when_known(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        if out.get("usage") is None:
            out.pop("usage", None)
        return out


class SnapshotBase(BaseModel):
    """A delta write's base (docs/design.md, "Delta writes"): the snapshot whose content the
    new one starts from. The bundle written with it holds only what is new: its messages,
    tool calls and log events are appended to the base's, its files replace the base's of the
    same path, and its reasoning, model and token total replace the base's when given."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    snapshot_id: str | None = Field(
        default=None,
        description="The base snapshot, of the task's session; null: the task's head at write"
        " time, read under the task's lock (an append that never loses a concurrent one).",
    )
    messages: tuple[JsonInt | None, JsonInt | None] | None = Field(
        default=None,
        description="The slice [start, end) of the base's messages kept, as Python slices them"
        " (negative counts from the end; null: an open end); null: all of them.",
    )
    drop_files: list[str] = Field(
        default_factory=list, description="Paths of the base's files left out."
    )
    if_head: JsonBool = Field(
        default=False,
        description="Refuse the write (409 conflict) unless snapshot_id is still the task's head.",
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
    usage: Usage | None = Field(
        default=None, description="The captured LLM call's usage, latency and cost, if any."
    )


class ThreadState(_Record):
    account_id: str
    thread_id: str
    user_data: str
    version: int
    updated_at: datetime
