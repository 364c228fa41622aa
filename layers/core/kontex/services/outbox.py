"""The outbox: events written with the changes they announce, published after the commit.

A use case announces its events in its unit of work (``uow.announce``): each event's row is
written in the change's own transaction, and when the unit commits the store hands the events
to ``Publisher`` (``services/publisher.py``, bound by ``Deps``), which sends each through
``deps.events`` and removes the rows of those that went out. An event whose publishing fails
stays, and ``sweep`` (a timer
thread in `kontex dev`, a scheduled function on AWS) publishes it later. Nothing announced is
lost for good; an event may go out twice, so consumers are idempotent by event id.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from kontex import ports
from kontex.ids import new_id
from kontex.services.deps import Deps
from kontex.services.publisher import Publisher

if TYPE_CHECKING:
    from kontex.ports import Event

SWEEP_AFTER_SECONDS = 5


def event(
    type_: str, account_id: str, session_id: str, data: dict[str, Any], at: datetime
) -> Event:
    # (kontex.port_transport loads with the first event: a read does not make one)
    try:  # encoded once, for its outbox row and its message (ports.event_message)
        text: str | None = json.dumps(data, separators=(",", ":"))
    except (TypeError, ValueError):  # not JSON as it is: each encodes it its own way
        text = None
    return ports.Event(new_id("evt"), type_, account_id, session_id, data, at, text)


def sweep(deps: Deps, older_than_seconds: float = SWEEP_AFTER_SECONDS, limit: int = 500) -> int:
    """Publish events still unpublished after ``older_than_seconds``; returns how many."""
    before = deps.clock() - timedelta(seconds=older_than_seconds)
    with deps.store.unit(write=False) as uow:
        waiting = uow.outbox.unpublished(before, limit)
    return Publisher(deps.store, deps.events)(waiting)
