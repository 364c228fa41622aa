"""Request bodies and the public JSON of each resource (snake_case, ISO 8601 UTC)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kontex.domain.models import (
    ApiKey,
    ContextFile,
    LogEvent,
    Message,
    Session,
    SessionStatus,
    Snapshot,
    Task,
    TaskStatus,
    ToolCall,
    camel,
)
from kontex.ports import Page


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateKey(_Body):
    label: str = Field(min_length=1, max_length=200)


class CreateSession(_Body):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    metadata: dict[str, Any] | None = None


class PatchSession(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    metadata: dict[str, Any] | None = None
    status: SessionStatus | None = None


class LinkTrace(_Body):
    trace_id: str = Field(min_length=32, max_length=32, pattern=r"^[0-9a-fA-F]{32}$")


class CreateTask(_Body):
    name: str = Field(min_length=1, max_length=200)
    parent_task_id: str | None = None


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
    token_total: int | None = Field(default=None, ge=0, validation_alias=camel("token_total"))
    captured_at: datetime | None = Field(default=None, validation_alias=camel("captured_at"))


class CreateSnapshot(_Body):
    label: str = Field(min_length=1, max_length=500)
    bundle: BundleIn


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


def key_json(key: ApiKey) -> dict[str, Any]:
    return key.model_dump(mode="json", exclude={"account_id"})


def session_json(session: Session) -> dict[str, Any]:
    return session.model_dump(mode="json", exclude={"account_id"})


def task_json(task: Task) -> dict[str, Any]:
    return task.model_dump(mode="json", exclude={"account_id"})


def snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    return snapshot.model_dump(mode="json", exclude={"account_id", "bundle_hash"})


def page_json(page: Page, shape: Any) -> dict[str, Any]:
    return {"data": [shape(item) for item in page.items], "next_cursor": page.next_cursor}
