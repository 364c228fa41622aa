"""Values that travel through the system's transports, which a REST read does not use: an event
(written to the outbox, published through ``kontex.ports.Events``) and the proxy's upstream
request and answer (``kontex.ports.Upstream``); a pipeline's lag moved to kontex.port_values
(the proxy makes none: docs/benchmarks.md, "Cold start, ninth round").
``kontex.ports`` gives them too (loading this module on first use, PEP 562), so ``from
kontex.ports import Event`` works as before; kept apart because every frozen dataclass created
at import is paid by every cold start (docs/benchmarks.md, "Cold start of the api, seventh round
(issue 25)")."""

from __future__ import annotations

import collections.abc
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Event:
    """A change announced through the outbox: written with the change, published after it."""

    id: str
    type: str  # snapshot.created | snapshot.enriched | session.updated | task.updated | ...
    account_id: str
    session_id: str
    data: dict[str, Any]
    created_at: datetime
    # ``data`` as compact JSON, when its maker encoded it (``services.outbox.event``, the
    # outbox's read): the outbox row and the published message use this text, not another
    # encoding of ``data``
    data_json: str | None = field(default=None, compare=False, repr=False)


@dataclass
class UpstreamResponse:
    """An upstream answer: its status, its end-to-end headers (names lower-case) and its body
    as it arrives, unchanged (still compressed if the upstream compressed it)."""

    status: int
    headers: dict[str, str]
    chunks: collections.abc.AsyncIterator[bytes]

    @property
    def is_stream(self) -> bool:
        return self.headers.get("content-type", "").startswith("text/event-stream")


@dataclass(frozen=True)
class UpstreamRequest:
    """A request to forward: ``method {base_url}{path}?{query}`` with its headers and body,
    waiting at most ``timeout`` seconds for each part of the answer."""

    base_url: str
    method: str
    path: str
    query: str
    headers: collections.abc.Mapping[str, str]
    body: bytes
    timeout: float

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + self.path + (f"?{self.query}" if self.query else "")
