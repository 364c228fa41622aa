"""A proxy call's capture as it travels from the proxy to the capture worker (``CaptureJob``, on
the ``capture`` queue), and the trigger headers that decide whether it becomes a snapshot.

Apart from ``kontex.services.capture`` (which turns a job into a snapshot, with the snapshot
and bundle code behind it) so that the proxy, which only makes and queues jobs, does not load
that code (cold start: docs/benchmarks.md, "Cold start, third round (issue 25)").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kontex.domain.errors import InvalidInput

CAPTURE_QUEUE = "capture"
TRIGGERS = ("every_n_turns", "on_tool_end", "token_threshold", "always")
DEFAULT_N = {"every_n_turns": 5, "token_threshold": 50_000, "on_tool_end": 1, "always": 1}


@dataclass
class CaptureJob:
    id: str
    account_id: str
    session_id: str
    task_id: str | None
    trigger: str
    n: int
    request: dict[str, Any]
    reply: dict[str, Any]
    latency_ms: float | None = None

    def to_json(self) -> str:
        # the fields as they are (``request`` and ``reply`` hold JSON values already): the
        # same text as ``asdict``'s, without its deep copy of both
        return json.dumps(vars(self), separators=(",", ":"))


def parse_trigger(trigger: str | None, n: str | None) -> tuple[str, int]:
    name = (trigger or "always").strip().lower()
    if name not in TRIGGERS:
        raise InvalidInput(f"X-Kontex-Snapshot-Trigger must be one of: {', '.join(TRIGGERS)}")
    if n is None or n == "":
        return name, DEFAULT_N[name]
    try:
        value = int(n)
    except ValueError:
        raise InvalidInput("X-Kontex-Snapshot-N must be a positive integer") from None
    if value < 1:
        raise InvalidInput("X-Kontex-Snapshot-N must be a positive integer")
    return name, value
