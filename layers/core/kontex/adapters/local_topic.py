"""The local stand-in for the SNS events topic: each published event becomes one message on the
queue of every consumer (``functions/workers/<consumer>.py``), as SNS fans out to one SQS queue
per consumer with raw message delivery.

The messages of one event are written to the local queue in one transaction, so a consumer
never gets an event another one missed; when ``publish`` raises, the outbox keeps the
event and the sweeper publishes it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kontex.ports import Event, event_message

# Every queue an event goes to, named after its worker file (contracts: feed = the live feed,
# embed = the search embedder). Only those with a worker file get messages.
EVENT_CONSUMERS = ("feed", "embed")


class _Queue(Protocol):
    def send_each(
        self, messages: Sequence[tuple[str, str]], delay_seconds: int = 0, durable: bool = True
    ) -> None: ...


class LocalTopic:
    """The ``Events`` port on the local durable queue."""

    def __init__(self, queue: _Queue, consumers: Sequence[str]) -> None:
        self.queue = queue
        self.consumers = tuple(consumers)

    def publish(self, event: Event) -> None:
        if not self.consumers:
            return
        body = event_message(event)
        # no fsync: an event is no more durable than the change it announces (a NORMAL commit
        # of the store); see kontex.adapters.local_queue
        self.queue.send_each([(consumer, body) for consumer in self.consumers], durable=False)

    def publish_many(self, events: Sequence[Event]) -> list[str]:
        """Every event to every consumer in one commit of the queue file (each event's message
        encoded once, whatever the number of consumers)."""
        if self.consumers and events:
            bodies = [event_message(e) for e in events]
            self.queue.send_each(
                [(c, body) for body in bodies for c in self.consumers], durable=False
            )
        return [e.id for e in events]
