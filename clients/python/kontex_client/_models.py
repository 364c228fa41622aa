"""What the API answers, as pydantic models. They are generated from the server's OpenAPI
document (``_api_models.py``, by ``clients/python/scripts/gen_models.py``); this module adds the
one generic envelope. Unknown fields are kept (``extra="allow"``), so a newer server never
breaks an older client; times are aware ``datetime`` objects."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from kontex_client._api_models import (
    AccountUsage,
    ApiKey,
    Bundle,
    CreatedKey,
    Diff,
    FilesDiff,
    Fork,
    Graph,
    LinkedTrace,
    LiveEvent,
    MessageRecord,
    MessagesDiff,
    Revision,
    SearchHit,
    SearchResults,
    Session,
    SessionStats,
    Snapshot,
    SnapshotWithBundle,
    Snippet,
    Task,
    TaskNode,
    ThreadState,
    TimelineEntry,
    ToolCallRecord,
    ToolCallsDiff,
    Usage,
)

__all__ = [
    "AccountUsage",
    "ApiKey",
    "Bundle",
    "CreatedKey",
    "Diff",
    "FilesDiff",
    "Fork",
    "Graph",
    "LinkedTrace",
    "LiveEvent",
    "MessageRecord",
    "MessagesDiff",
    "Page",
    "Revision",
    "SearchHit",
    "SearchResults",
    "Session",
    "SessionStats",
    "Snapshot",
    "SnapshotWithBundle",
    "Snippet",
    "Task",
    "TaskNode",
    "ThreadState",
    "TimelineEntry",
    "ToolCallRecord",
    "ToolCallsDiff",
    "Usage",
]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list (``SessionPage``, ``SnapshotPage``... of the document, as one generic
    type); ``next_cursor`` is None on the last page."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    data: list[T]
    next_cursor: str | None = None
