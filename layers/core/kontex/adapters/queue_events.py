"""The ``Events`` port on a queue: each event is one message on the snapshot-events queue."""

from __future__ import annotations

import json
import logging
from typing import Any

from kontex.ports import Queue

EVENTS_QUEUE = "events"
log = logging.getLogger("kontex.events")


class QueueEvents:
    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def publish(self, type: str, account_id: str, session_id: str, data: dict[str, Any]) -> None:
        """Announce a change that is already stored; a queue failure is logged, not raised,
        so the write that caused it still answers as done."""
        body = json.dumps(
            {"type": type, "account_id": account_id, "session_id": session_id, "data": data},
            default=str,
        )
        try:
            self.queue.send(EVENTS_QUEUE, [body])
        except Exception:
            log.exception("could not publish %s for session %s", type, session_id)
