"""The outbox: events written with the changes they announce, published after the commit.

A use case writes its event rows in its own transaction (``unit.add_event`` or the store's
``event_id=`` arguments), then publishes them (``publish``, or ``relay`` with their ids): each
goes out through ``deps.events`` and its row is removed. An event whose publishing fails stays,
and ``sweep`` (a timer thread in `kontex dev`, a scheduled function on AWS) publishes it later.
Nothing announced is lost for good; an event may go out twice, so consumers are idempotent by
event id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from kontex.ids import new_id
from kontex.ports import Event
from kontex.services.deps import Deps

log = logging.getLogger("kontex.outbox")
SWEEP_AFTER_SECONDS = 5


def event(
    type_: str, account_id: str, session_id: str, data: dict[str, Any], at: datetime
) -> Event:
    return Event(new_id("evt"), type_, account_id, session_id, data, at)


def publish(deps: Deps, events: Sequence[Event]) -> int:
    """Publish events and remove the rows of those that went out; returns how many did."""
    sent: list[str] = []
    for e in events:
        try:
            deps.events.publish(e.type, e.account_id, e.session_id, e.data, event_id=e.id)
        except Exception:  # left in the outbox: the sweeper tries again
            log.warning("event %s (%s) not published yet; the sweeper will retry", e.id, e.type)
            continue
        sent.append(e.id)
    if sent:
        try:
            deps.store.delete_events(sent)
        except Exception:  # published but still there: the sweeper publishes it again (idempotent)
            log.warning("events published but not removed; they may be published again")
    return len(sent)


def relay(deps: Deps, event_ids: Sequence[str]) -> int:
    """Right after a commit: publish the events that transaction wrote."""
    try:
        events = deps.store.get_events(event_ids)
    except Exception:
        log.warning("outbox relay could not read %d events; the sweeper will", len(event_ids))
        return 0
    return publish(deps, events)


def sweep(deps: Deps, older_than_seconds: float = SWEEP_AFTER_SECONDS, limit: int = 500) -> int:
    """Publish events still unpublished after ``older_than_seconds``; returns how many."""
    before = deps.clock() - timedelta(seconds=older_than_seconds)
    return publish(deps, deps.store.unpublished(before, limit))
