"""What runs after a unit of work commits with announced events (services/outbox.py)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from kontex.ports import Event, Events, Store

log = logging.getLogger("kontex.outbox")


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
                # a delete lost in a crash is an event published again, which consumers expect
                with self._store.unit(durable=False) as uow:
                    uow.outbox.delete(sent)
            except Exception:  # published but still there: the sweeper publishes it again
                log.warning("events published but not removed; they may be published again")
        return len(sent)
