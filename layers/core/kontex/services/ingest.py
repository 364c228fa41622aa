"""OTLP/HTTP ingest: validate, decode, and queue spans for the span worker. No processing.

Spans are queued in batches of about ``MESSAGE_BUDGET`` bytes; a span larger than that goes
alone, and the queue carries it by reference (``adapters/claim_check``): no span is refused
for its size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kontex.domain.models import ApiKey
from kontex.otlp.decode import decode_request, media_type
from kontex.ports import Queue
from kontex.services import sessions
from kontex.services.deps import Deps

SPANS_QUEUE = "spans"
MESSAGE_BUDGET = 240 * 1024  # under SQS's 256 KiB with room for the envelope


@dataclass
class Accepted:
    media_type: str
    accepted: int
    rejected: int
    message: str | None


def accept(
    deps: Deps,
    queue: Queue,
    key: ApiKey,
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    session_id: str | None,
) -> Accepted:
    kind = media_type(content_type)
    if session_id:
        sessions.get_session(deps, key.account_id, session_id)  # 404 for a foreign session
    decoded = decode_request(body, content_type, content_encoding)
    envelope = {"account_id": key.account_id, "session_id": session_id or None}
    overhead = len(json.dumps({**envelope, "spans": []}))
    batches: list[list[str]] = [[]]
    size = overhead
    rejected, reasons = decoded.rejected, list(decoded.reasons)
    for span in decoded.spans:
        encoded = json.dumps(span, separators=(",", ":"))
        if batches[-1] and size + len(encoded) + 1 > MESSAGE_BUDGET:
            batches.append([])
            size = overhead
        batches[-1].append(encoded)
        size += len(encoded) + 1
    bodies = [_message(envelope, batch) for batch in batches if batch]
    if bodies:
        queue.send(SPANS_QUEUE, bodies)
    message = "; ".join(dict.fromkeys(reasons)) if rejected else None
    return Accepted(kind, len(decoded.spans) - (rejected - decoded.rejected), rejected, message)


def _message(envelope: dict[str, Any], spans: list[str]) -> str:
    head = json.dumps(envelope, separators=(",", ":"))[:-1]
    return f'{head},"spans":[{",".join(spans)}]}}'
