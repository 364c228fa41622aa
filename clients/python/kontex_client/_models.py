"""What the API answers, as pydantic models: generated from the server's OpenAPI document
(``_api_models.py``, by ``clients/python/scripts/gen_models.py``), plus here the one generic
envelope. Unknown fields are kept (``extra="allow"``), so a newer server never breaks an older
client; times are aware ``datetime`` objects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list (``SessionPage``, ``SnapshotPage``... of the document, as one generic
    type); ``next_cursor`` is None on the last page."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    data: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True)
class SnapshotBase:
    """Makes ``snapshots.create`` a delta write: the bundle given holds only what is new over
    this base (its messages, tool calls and log events are appended; its files replace the
    base's of the same path). ``snapshot_id`` None: the task's head at write time (an append
    that never loses a concurrent one); ``messages``: the slice ``(start, end)`` of the base's
    messages kept, as Python slices (``(0, -1)`` drops the last), None for all;
    ``drop_files``: paths left out; ``if_head``: refuse (``ConflictError``) unless
    ``snapshot_id`` is still the task's head."""

    snapshot_id: str | None = None
    messages: tuple[int | None, int | None] | None = None
    drop_files: Sequence[str] = ()
    if_head: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "messages": list(self.messages) if self.messages is not None else None,
            "drop_files": list(self.drop_files),
            "if_head": self.if_head,
        }
