"""The session routes' bodies and their task and trace answers (``kontex.api.sessions``).

Apart from ``kontex.api.shapes``, which gives each of them (PEP 562, ``kontex.later``), so that
a session listing (``kontex.api.session_listing``, the REST function's usual first request)
creates only its own answer, ``SessionPage`` (docs/benchmarks.md, "Cold start of the api,
seventh round (issue 25)"). Each builds its validator and serializer on first use
(``defer_build``, from ``shapes._Body`` and ``shapes.Out``).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kontex.api.shapes import Out, _Body, _listing, public
from kontex.domain.models import SessionStatus, Task


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
    trace_id: str = Field(
        min_length=32,
        max_length=32,
        pattern=r"^[0-9a-fA-F]{32}$",
        json_schema_extra={"not": {"pattern": "^0+$"}},  # all zero: no trace (W3C, OTLP)
        description="32 hex characters, not all zero",
    )


class CreateTask(_Body):
    name: str = Field(min_length=1, max_length=200)
    parent_task_id: str | None = None


TaskOut = public(Task, "Task", without={"account_id"}, doc="A task of a session.")


class TaskNode(TaskOut):  # type: ignore[valid-type,misc]
    """A task in the session's tree, with its children."""

    children: list[TaskNode]


class LinkedTrace(Out):
    session_id: str
    trace_ids: list[str]
    snapshots_created: int


TaskTree = _listing(TaskNode, "TaskTree", paged=False)
