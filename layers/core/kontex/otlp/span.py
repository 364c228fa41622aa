"""The decoded span, typed: what ``decode`` makes, the span worker stores and reads back.

Spans travel as JSON (queue messages, the ``spans.body`` column), so they stay plain dicts at
run time; these ``TypedDict`` s only let mypy check the field names and types of the code that
walks them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

# The queue of decoded spans: ingest sends each request's batch there, the span worker reads it
# (here, not in ``services.ingest``, so the worker does not load the OTLP decoding with it)
SPANS_QUEUE = "spans"


class SpanEvent(TypedDict):
    """A span event; the GenAI events received as OTLP log records also carry their ``body``."""

    name: str
    time_unix_nano: int
    attributes: dict[str, Any]
    body: NotRequired[Any]


class Span(TypedDict):
    """A decoded span: hex ids, integer nanosecond times, attribute values as Python values.
    ``kind`` is the OTLP span kind (``internal``, ``client``...) as decoded."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    status: str  # unset, ok or error
    status_message: str | None
    attributes: dict[str, Any]
    events: list[SpanEvent]
    resource: dict[str, Any]
    scope: str
    events_of: NotRequired[str]  # the span whose GenAI events (OTLP logs) this record holds


class StoredSpan(Span):
    """A span as the span worker reads it back from the store: ``kind`` is then the span's
    role (``mapping.kind_of``: task, llm, tool, events or other), with the ingest header's
    session (an id, or a name), the time it was received (absent on spans stored before it was
    recorded) and whether it was processed."""

    header_session_id: str | None
    header_session_name: NotRequired[str]  # the header named a session rather than its id
    received_at: NotRequired[float]
    done: bool


def body(span: Mapping[str, Any]) -> str:
    """The text a span is stored as (the ``spans.body`` column, read back with ``json.loads``):
    compact JSON. The span worker encodes a batch's spans before its write transaction."""
    return json.dumps(span, separators=(",", ":"))


def body_of_text(text: str, received_at: float, header_session_name: str | None) -> str:
    """``body`` of a span the queue message gave as JSON text (``read_message``), without
    encoding it again: the text with the time it was received (and the header's session name)
    added. Its ``kind`` and ``header_session_id`` are columns of the row, which the store reads
    back over the body's."""
    extra = f'"received_at":{received_at!r}'
    if header_session_name:
        extra += f',"header_session_name":{json.dumps(header_session_name)}'
    inner = text[1:-1]
    return "{" + inner + ("," if inner.strip() else "") + extra + "}"


_SPANS = ',"spans":['
_DECODER = json.JSONDecoder()


def read_message(text: str) -> dict[str, Any]:
    """A span queue message, as ``json.loads`` reads it; when it is written as ingest writes it
    (compact JSON, the spans last: ``services/ingest._message``), also each span's own JSON
    text, in ``span_texts``, which the worker stores as the span's body rather than encoding
    the span a second time (docs/benchmarks.md, "Spans on PostgreSQL, less CPU a span").
    Any other text is read whole, without ``span_texts``."""
    at = text.find(_SPANS)
    if at < 0 or not text.endswith("]}"):
        return json.loads(text)  # type: ignore[no-any-return]
    spans: list[Any] = []
    texts: list[str] = []
    end = len(text) - 2  # where the closing "]}" starts
    start = at + len(_SPANS)
    try:
        message = json.loads(text[:at] + "}")
        while start < end:
            span, stop = _DECODER.raw_decode(text, start)
            if not isinstance(span, dict) or (stop != end and text[stop] != ","):
                raise ValueError("not a list of spans as ingest writes it")
            spans.append(span)
            texts.append(text[start:stop])
            start = stop + 1
    except ValueError:  # (json.JSONDecodeError is one)
        return json.loads(text)  # type: ignore[no-any-return]
    if not isinstance(message, dict) or "spans" in message or (texts and start != end + 1):
        return json.loads(text)  # type: ignore[no-any-return]
    message["spans"] = spans
    message["span_texts"] = texts
    return message
