"""Kontex client: ``Kontex`` / ``AsyncKontex`` for the REST API and the live feed, restore
helpers (``to_anthropic``, ``to_openai``), and persistence for agent frameworks
(``kontex_client.langgraph.KontexSaver``, ``kontex_client.openai_agents.KontexSession``)."""

from __future__ import annotations

from kontex_client._api_models import (
    AccountUsage,
    ApiKey,
    Bundle,
    CreatedKey,
    Diff,
    Fork,
    Graph,
    LinkedTrace,
    LiveEvent,
    MessageRecord,
    Revision,
    SearchHit,
    SearchResults,
    Session,
    SessionStats,
    Snapshot,
    SnapshotWithBundle,
    Task,
    TaskNode,
    ThreadState,
    TimelineEntry,
    ToolCallRecord,
    Usage,
)
from kontex_client._async_client import AsyncKontex
from kontex_client._errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ConnectionError,
    IntegrityError,
    KontexError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    UnavailableError,
)
from kontex_client._live import AsyncLiveFeed, LiveFeed
from kontex_client._models import Page, SnapshotBase
from kontex_client._sync_client import Kontex
from kontex_client._version import __version__
from kontex_client.restore import to_anthropic, to_openai

__all__ = [
    "SnapshotBase",
    "AccountUsage",
    "ApiKey",
    "AsyncKontex",
    "AsyncLiveFeed",
    "AuthenticationError",
    "BadRequestError",
    "Bundle",
    "ConflictError",
    "ConnectionError",
    "CreatedKey",
    "Diff",
    "Fork",
    "Graph",
    "IntegrityError",
    "Kontex",
    "KontexError",
    "LinkedTrace",
    "LiveEvent",
    "LiveFeed",
    "MessageRecord",
    "NotFoundError",
    "Page",
    "PayloadTooLargeError",
    "RateLimitError",
    "Revision",
    "SearchHit",
    "SearchResults",
    "Session",
    "SessionStats",
    "Snapshot",
    "SnapshotWithBundle",
    "Task",
    "TaskNode",
    "ThreadState",
    "TimelineEntry",
    "ToolCallRecord",
    "UnavailableError",
    "Usage",
    "__version__",
    "to_anthropic",
    "to_openai",
]
