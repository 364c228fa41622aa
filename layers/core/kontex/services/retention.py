"""Retention: purge whole sessions that have been idle since a cutoff.

A session is idle when neither it, nor any of its tasks, snapshots or revisions changed since
the cutoff. Each idle session goes by the same purge as ``DELETE /v1/sessions/{id}?purge=true``
(one transaction for its rows, then its blobs): pruning never removes part of a session.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kontex.domain.errors import Conflict, InvalidInput, NotFound
from kontex.services.deps import Deps
from kontex.services.sessions import purge_session

DEFAULT_LIMIT = 1000  # sessions per run; a later run takes the rest
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h`` or ``90m`` as a positive ``timedelta``."""
    match = _DURATION_RE.match(text or "")
    if match is None:
        raise InvalidInput(f"duration {text!r} is not valid: use a number and d, h or m (30d)")
    amount, unit = int(match.group(1)), match.group(2)
    if amount <= 0:
        raise InvalidInput("the duration must be more than zero")
    try:
        return timedelta(**{_UNITS[unit]: amount})
    except OverflowError:
        raise InvalidInput(f"duration {text!r} is too long") from None


@dataclass(frozen=True)
class PrunedSession:
    account_id: str
    session_id: str
    name: str
    last_activity: datetime
    snapshots: int
    blobs: int | None = None  # blobs deleted with it; None on a dry run


@dataclass
class PruneResult:
    cutoff: datetime
    dry_run: bool
    sessions: list[PrunedSession] = field(default_factory=list)
    # sessions found idle that were not purged: written to (or purged) meanwhile
    skipped: list[str] = field(default_factory=list)
    more: bool = False  # more idle sessions than the limit: run again for the rest

    @property
    def snapshots(self) -> int:
        return sum(s.snapshots for s in self.sessions)

    @property
    def blobs(self) -> int:
        return sum(s.blobs or 0 for s in self.sessions)

    def as_json(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "sessions": [
                {**asdict(s), "last_activity": s.last_activity.isoformat()} for s in self.sessions
            ],
            "removed_sessions": 0 if self.dry_run else len(self.sessions),
            "removed_snapshots": 0 if self.dry_run else self.snapshots,
            "removed_blobs": self.blobs,
            "skipped": self.skipped,
            "more": self.more,
        }


def prune(
    deps: Deps,
    cutoff: datetime,
    account_id: str | None = None,
    dry_run: bool = False,
    limit: int = DEFAULT_LIMIT,
) -> PruneResult:
    """Purge (or, on a dry run, list) up to ``limit`` sessions idle since ``cutoff``."""
    if limit < 1:
        raise InvalidInput("limit must be at least 1")
    if cutoff.tzinfo is None:
        raise InvalidInput("cutoff must carry a time zone")
    with deps.store.unit(write=False) as uow:
        rows = uow.sessions.inactive(cutoff, account_id, limit + 1)
    result = PruneResult(cutoff=cutoff, dry_run=dry_run, more=len(rows) > limit)
    for row in rows[:limit]:
        found = PrunedSession(**row)
        if dry_run:
            result.sessions.append(found)
            continue
        try:
            blobs = purge_session(deps, found.account_id, found.session_id)
        except (Conflict, NotFound):
            # A write that landed after the candidates were read makes the purge's transaction
            # fail whole (the new row still points at the session); a concurrent purge leaves
            # nothing to do. Either way the session is not pruned by this run.
            result.skipped.append(found.session_id)
            continue
        result.sessions.append(
            PrunedSession(**{**asdict(found), "blobs": blobs}),
        )
    return result
