"""A page of results and the query of a session listing, which of the functions' first requests
only the REST function's (``GET /v1/sessions``) makes. ``kontex.ports`` gives them too (loading
this module on first use, PEP 562), so ``from kontex.ports import Page`` works as before; kept
apart because every frozen dataclass created at import is paid by every cold start
(docs/benchmarks.md, "Cold start, ninth round")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kontex.domain.models import SessionStatus


@dataclass(frozen=True)
class SessionListing:
    """One page of an account's sessions: at most ``limit``, after the cursor ``after``
    ``(created_at, id)``, of one status or all, oldest or newest first."""

    limit: int
    after: tuple[str, str] | None = None
    status: SessionStatus | None = None
    newest_first: bool = False


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None
