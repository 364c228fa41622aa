"""What runs after a unit of work commits with announced events (services/outbox.py)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TypeGuard

from kontex.ports import BatchEvents, Event, Events, Store

log = logging.getLogger("kontex.outbox")

_BATCHES: dict[type, bool] = {}  # by the port's class: a Protocol's isinstance is slow


def _batches(events: Events) -> TypeGuard[BatchEvents]:
    """Whether ``events`` is ``BatchEvents`` (once per class: it has the method or not)."""
    kind = type(events)
    known = _BATCHES.get(kind)
    if known is None:
        known = _BATCHES[kind] = isinstance(events, BatchEvents)
    return known


class Publisher:
    """Publishes committed events and removes the rows of those that went out."""

    def __init__(self, store: Store, events: Events) -> None:
        self._store = store
        self._events = events

    def __call__(self, events: Sequence[Event]) -> int:
        sent = self._publish(events)
        if sent:
            try:
                # a delete lost in a crash is an event published again, which consumers expect
                with self._store.unit(durable=False) as uow:
                    uow.outbox.delete(sent)
            except Exception:  # published but still there: the sweeper publishes it again
                log.warning("events published but not removed; they may be published again")
        return len(sent)

    def _publish(self, events: Sequence[Event]) -> list[str]:
        """The ids that went out: all at once where the port can (``BatchEvents``: one
        queue commit, or SNS batches), else one by one."""
        if len(events) > 1 and _batches(self._events):
            try:
                return self._events.publish_many(events)
            except Exception:  # left in the outbox: the sweeper tries again
                log.warning("%d events not published yet; the sweeper will retry", len(events))
                return []
        sent: list[str] = []
        for e in events:
            try:
                self._events.publish(e)
            except Exception:  # left in the outbox: the sweeper tries again
                log.warning("event %s (%s) not published yet; the sweeper will retry", e.id, e.type)
                continue
            sent.append(e.id)
        return sent
