"""What the API answers, as pydantic models: generated from the server's OpenAPI document
(``_api_models.py``, by ``clients/python/scripts/gen_models.py``), plus here the one generic
envelope. Unknown fields are kept (``extra="allow"``), so a newer server never breaks an older
client; times are aware ``datetime`` objects."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list (``SessionPage``, ``SnapshotPage``... of the document, as one generic
    type); ``next_cursor`` is None on the last page."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    data: list[T]
    next_cursor: str | None = None
