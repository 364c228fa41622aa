"""The ``Events`` port on a queue: each event is one message on the snapshot-events queue."""

from __future__ import annotations

import json
from typing import Any

from kontex.ports import Queue

EVENTS_QUEUE = "events"


class QueueEvents:
    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def publish(
        self,
        type: str,
        account_id: str,
        session_id: str,
        data: dict[str, Any],
        event_id: str | None = None,
    ) -> None:
        """Send an event the outbox holds; a queue failure raises, so the outbox keeps the
        event for the sweeper (the write that caused it has already answered as done)."""
        body = json.dumps(
            {
                "id": event_id,
                "type": type,
                "account_id": account_id,
                "session_id": session_id,
                "data": data,
            },
            default=str,
        )
        self.queue.send(EVENTS_QUEUE, [body])
