"""OTLP/HTTP ingest: validate, decode, and queue spans for the span worker. No processing.

Spans are queued in batches of about ``MESSAGE_BUDGET`` bytes; a span larger than that goes
alone, and the queue carries it by reference (``adapters/claim_check``): no span is refused
for its size.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kontex.domain.models import ApiKey
from kontex.otlp import mapping
from kontex.otlp.decode import (
    decode_logs_request,
    decode_metrics_request,
    decode_request,
    media_type,
)
from kontex.otlp.span import SPANS_QUEUE, Span, SpanEvent
from kontex.ports import Queue
from kontex.services import sessions
from kontex.services.deps import Deps

MESSAGE_BUDGET = 240 * 1024  # under SQS's 256 KiB with room for the envelope


@dataclass
class Accepted:
    media_type: str
    accepted: int
    rejected: int
    message: str | None


@dataclass(frozen=True)
class Export:
    """One OTLP export request as it arrived."""

    key: ApiKey
    body: bytes
    content_type: str | None
    content_encoding: str | None
    session_id: str | None = None  # the X-Kontex-Session-Id header


SESSION_ID_PREFIX = "sess_"


def _header(export: Export) -> dict[str, str | None]:
    """The envelope's session hint from ``X-Kontex-Session-Id``: a session id (which must be
    the caller's) or a name (found, or made on first use, as every other hint form)."""
    given = (export.session_id or "").strip()
    if not given:
        return {"session_id": None}
    if given.startswith(SESSION_ID_PREFIX):
        return {"session_id": given}
    return {"session_id": None, "session_name": given[:200]}


def _checked(deps: Deps, export: Export) -> str:
    """The request's media type; a session id it names must be the caller's (404 otherwise,
    the same answer as the proxy's)."""
    header = _header(export).get("session_id")
    if header:
        sessions.get_session(deps, export.key.account_id, header)
    return media_type(export.content_type)


def _foreign_hints(deps: Deps, account_id: str, spans: list[Span]) -> set[str]:
    """Session ids named by spans' attributes that are not the caller's: refused, as the same id
    in the header is (before, they silently made a session named after the id)."""
    hints = (mapping.session_hint(s) for s in spans)
    ids = {h for h in hints if h and h.startswith(SESSION_ID_PREFIX)}
    if not ids:
        return set()
    with deps.store.unit(write=False) as uow:
        found = uow.traces.sessions_named([(account_id, h) for h in sorted(ids)])
    return {h for h in ids if found.get((account_id, h)) != h}


def accept(deps: Deps, queue: Queue, export: Export) -> Accepted:
    kind = _checked(deps, export)
    decoded = decode_request(export.body, export.content_type, export.content_encoding)
    header = _header(export)
    envelope = {"account_id": export.key.account_id, **header}
    if not any(header.values()):  # with a header, the spans' own hints are not read
        foreign = _foreign_hints(deps, export.key.account_id, decoded.spans)
        if foreign:
            kept = [s for s in decoded.spans if mapping.session_hint(s) not in foreign]
            decoded.rejected += len(decoded.spans) - len(kept)
            decoded.reasons += [f"session {h} not found" for h in sorted(foreign)]
            decoded.spans = kept
    overhead = len(json.dumps({**envelope, "spans": []}))
    batches: list[list[str]] = [[]]
    size = overhead
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
    message = "; ".join(dict.fromkeys(decoded.reasons)) if decoded.rejected else None
    return Accepted(kind, len(decoded.spans), decoded.rejected, message)


def _message(envelope: dict[str, Any], spans: list[str]) -> str:
    head = json.dumps(envelope, separators=(",", ":"))[:-1]
    return f'{head},"spans":[{",".join(spans)}]}}'


# -- OTLP logs and metrics ---------------------------------------------------------------------


def accept_logs(deps: Deps, queue: Queue, export: Export) -> Accepted:
    """OTLP logs: the GenAI events (``gen_ai.*.message``, ``gen_ai.choice``...) with a span
    context are queued, per span, as one ``events`` record of that span (the worker joins it to
    its span by trace and span id); other records are acknowledged and ignored."""
    kind = _checked(deps, export)
    decoded = decode_logs_request(export.body, export.content_type, export.content_encoding)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in decoded.records:
        if record["trace_id"] and record["span_id"] and mapping.is_genai_event(record["name"]):
            groups.setdefault((record["trace_id"], record["span_id"]), []).append(record)
    records: list[Span] = []
    for (trace_id, span_id), events in groups.items():
        payload = [
            SpanEvent(
                name=e["name"],
                time_unix_nano=e["time_unix_nano"],
                body=e["body"],
                attributes=e["attributes"],
            )
            for e in events
        ]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
        times = [int(e["time_unix_nano"] or 0) for e in events]
        records.append(
            {
                "trace_id": trace_id,
                "span_id": f"{span_id}-events-{digest}",
                "parent_span_id": span_id,
                "events_of": span_id,
                "name": "gen_ai events",
                "kind": "internal",
                "start_time_unix_nano": min(times),
                "end_time_unix_nano": max(times),
                "status": "unset",
                "status_message": None,
                "attributes": {},
                "events": payload,
                "resource": events[0]["resource"],
                "scope": "",
            }
        )
    envelope = {"account_id": export.key.account_id, **_header(export)}
    rejected, reasons = decoded.rejected, list(decoded.reasons)
    for span in records:
        encoded = json.dumps({**envelope, "spans": [span]}, separators=(",", ":"))
        if len(encoded) > MESSAGE_BUDGET:
            rejected += len(span["events"])
            reasons.append(f"the events of span {span['events_of']} are over the size limit")
            continue
        queue.send(SPANS_QUEUE, [encoded])
    message = "; ".join(dict.fromkeys(reasons)) if rejected else None
    return Accepted(kind, len(decoded.records), rejected, message)


def accept_metrics(deps: Deps, export: Export) -> Accepted:
    """OTLP metrics: validated and acknowledged. Per-call usage and latency come from spans
    (``gen_ai.usage.*`` and the span's duration); the aggregated ``gen_ai.client.*`` metrics
    carry no span to join, so they are not stored."""
    kind = _checked(deps, export)
    decoded = decode_metrics_request(export.body, export.content_type, export.content_encoding)
    points = sum(len(p) for p in decoded.points.values())
    message = "; ".join(dict.fromkeys(decoded.reasons)) if decoded.rejected else None
    return Accepted(kind, points, decoded.rejected, message)
