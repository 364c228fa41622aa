"""What the MCP tools answer: pydantic models, published as each tool's output schema.

They are the REST API's response models (``kontex.api.shapes``, ``services/search.py``), so an
agent and a REST client read one vocabulary (snake_case, ISO 8601 UTC); only the answers that
exist for MCP alone are defined here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from kontex.api.shapes import BundleContent as BundleOut
from kontex.api.shapes import Diff as DiffOut
from kontex.api.shapes import Fork as ForkOut
from kontex.api.shapes import SessionOut, SnapshotOut, TaskOut
from kontex.services.search import SearchResults as SearchOut

__all__ = [
    "BundleOut",
    "ContextOut",
    "DiffOut",
    "ForkOut",
    "RestoredOut",
    "RollbackOut",
    "SearchOut",
    "SessionOut",
    "SnapshotList",
    "SnapshotOut",
    "TaskOut",
]


class ContextOut(BaseModel):
    snapshot: SnapshotOut  # type: ignore[valid-type]
    bundle: BundleOut  # type: ignore[valid-type]


class RollbackOut(BaseModel):
    snapshot: SnapshotOut = Field(  # type: ignore[valid-type]
        description="The new forward snapshot holding the restored state."
    )
    rolled_back_to: str = Field(description="The snapshot whose state was restored.")
    bundle: BundleOut = Field(description="The restored content.")  # type: ignore[valid-type]
    resume: str = Field(description="How to continue the run from here.")


class SnapshotList(BaseModel):
    snapshots: list[SnapshotOut] = Field(description="Oldest first.")  # type: ignore[valid-type]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null on the last page."
    )


class RestoredOut(BaseModel):
    snapshot_id: str
    format: Literal["anthropic", "openai"]
    system: str | None = Field(
        default=None,
        description="Anthropic: the system prompt, passed apart from the messages. OpenAI: null"
        " (system messages stay in `messages`).",
    )
    messages: list[dict[str, Any]] = Field(description="Ready to send as the API's `messages`.")
    repairs: list[str] = Field(
        description="What was changed to make the conversation valid for the API (empty: none)."
    )
