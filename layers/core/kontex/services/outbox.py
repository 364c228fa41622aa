"""The outbox: events written with the changes they announce, published after the commit.

A use case announces its events in its unit of work (``uow.announce``): each event's row is
written in the change's own transaction, and when the unit commits the store hands the events
to ``Publisher`` (bound by ``Deps``), which sends each through ``deps.events`` and removes the
rows of those that went out. An event whose publishing fails stays, and ``sweep`` (a timer
thread in `kontex dev`, a scheduled function on AWS) publishes it later. Nothing announced is
lost for good; an event may go out twice, so consumers are idempotent by event id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from kontex.ids import new_id
from kontex.ports import Event, Events, Store

if TYPE_CHECKING:
    from kontex.services.deps import Deps

log = logging.getLogger("kontex.outbox")
SWEEP_AFTER_SECONDS = 5


def event(
    type_: str, account_id: str, session_id: str, data: dict[str, Any], at: datetime
) -> Event:
    return Event(new_id("evt"), type_, account_id, session_id, data, at)


class Publisher:
    """Publishes committed events and removes the rows of those that went out."""

    def __init__(self, store: Store, events: Events) -> None:
        self._store = store
        self._events = events

    def __call__(self, events: Sequence[Event]) -> int:
        sent: list[str] = []
        for e in events:
            try:
                self._events.publish(e)
            except Exception:  # left in the outbox: the sweeper tries again
                log.warning("event %s (%s) not published yet; the sweeper will retry", e.id, e.type)
                continue
            sent.append(e.id)
        if sent:
            try:
                with self._store.unit() as uow:
                    uow.outbox.delete(sent)
            except Exception:  # published but still there: the sweeper publishes it again
                log.warning("events published but not removed; they may be published again")
        return len(sent)


def sweep(deps: Deps, older_than_seconds: float = SWEEP_AFTER_SECONDS, limit: int = 500) -> int:
    """Publish events still unpublished after ``older_than_seconds``; returns how many."""
    before = deps.clock() - timedelta(seconds=older_than_seconds)
    with deps.store.unit(write=False) as uow:
        waiting = uow.outbox.unpublished(before, limit)
    return Publisher(deps.store, deps.events)(waiting)
