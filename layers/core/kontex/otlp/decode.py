"""OTLP/HTTP trace requests in, plain span dicts out (protobuf via opentelemetry-proto, or JSON).

A decoded span is JSON-ready: hex ids, integer nanosecond times, attribute values as Python
values (arrays as lists, kvlists as dicts, bytes as base64 text). Spans that cannot be used
(bad ids) are counted as rejected, never silently dropped.
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from kontex.domain.errors import InvalidInput, PayloadTooLarge
from kontex.http.errors import UnsupportedMediaType
from kontex.otlp.span import Span

MAX_BODY_BYTES = 5 * 1024 * 1024  # after decompression
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_STATUS = {0: "unset", 1: "ok", 2: "error"}
_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass
class Decoded:
    spans: list[Span] = field(default_factory=list)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)


def media_type(content_type: str | None) -> str:
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in (PROTOBUF, JSON):
        return kind
    raise UnsupportedMediaType(f"send {PROTOBUF} or {JSON}, not {kind or 'no content type'}")


def inflate(body: bytes, encoding: str | None) -> bytes:
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the request is over {MAX_BODY_BYTES} bytes")
        return body
    if encoding not in ("gzip", "deflate"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding} is not supported (use gzip)")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error as error:
        raise InvalidInput(f"the {encoding} body cannot be decompressed") from error
    if len(out) > MAX_BODY_BYTES or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"the request is over {MAX_BODY_BYTES} bytes decompressed")
    return out


# -- protobuf ----------------------------------------------------------------------------------


def _pb_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_pb_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def _pb_attributes(items: Any) -> dict[str, Any]:
    return {kv.key: _pb_value(kv.value) for kv in items}


def _decode_protobuf(raw: bytes) -> Decoded:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(raw)
    except DecodeError as error:
        raise InvalidInput("the body is not an OTLP ExportTraceServiceRequest") from error
    out = Decoded()
    for resource_spans in request.resource_spans:
        resource = _pb_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                _add(
                    out,
                    {
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex() or None,
                        "name": span.name,
                        "kind": _KINDS.get(span.kind, "unspecified"),
                        "start_time_unix_nano": span.start_time_unix_nano,
                        "end_time_unix_nano": span.end_time_unix_nano,
                        "status": _STATUS.get(span.status.code, "unset"),
                        "status_message": span.status.message or None,
                        "attributes": _pb_attributes(span.attributes),
                        "events": [
                            {
                                "name": e.name,
                                "time_unix_nano": e.time_unix_nano,
                                "attributes": _pb_attributes(e.attributes),
                            }
                            for e in span.events
                        ],
                        "resource": resource,
                        "scope": scope,
                    },
                )
    return out


# -- JSON (OTLP/JSON: lowerCamelCase, hex ids, 64-bit integers as strings or numbers) -----------


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("not an integer")
    return int(value)


def _json_value(value: Any) -> Any:
    if not isinstance(value, dict) or not value:
        return None
    key, inner = next(iter(value.items()))
    if key == "stringValue":
        return str(inner)
    if key == "boolValue":
        return bool(inner)
    if key == "intValue":
        return _int(inner)
    if key == "doubleValue":
        return float(inner)
    if key == "bytesValue":
        return str(inner)  # already base64 in OTLP/JSON
    if key == "arrayValue":
        return [_json_value(v) for v in (inner or {}).get("values", [])]
    if key == "kvlistValue":
        return {kv["key"]: _json_value(kv.get("value")) for kv in (inner or {}).get("values", [])}
    raise ValueError(f"unknown AnyValue kind {key}")


def _json_attributes(items: Any) -> dict[str, Any]:
    return {kv["key"]: _json_value(kv.get("value")) for kv in items or []}


def _hex_id(value: Any, size: int) -> str:
    text = str(value or "").strip().lower()
    if len(text) != size * 2 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"id {value!r} is not {size * 2} hex characters")
    return text


def _optional_hex_id(value: Any, size: int) -> str | None:
    return _hex_id(value, size) if str(value or "").strip() else None


def _status(value: Any) -> str:
    code = (value or {}).get("code", 0)
    if isinstance(code, str):
        code = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}.get(code, 0)
    return _STATUS.get(int(code), "unset")


def _objects(value: Any, what: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidInput(f"{what} must be a list of objects")
    return value


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be an object")
    return value


def _decode_json(raw: bytes) -> Decoded:
    try:
        request = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidInput("the body is not valid JSON") from error
    except RecursionError:
        raise InvalidInput("the body is nested too deeply") from None
    if not isinstance(request, dict):
        raise InvalidInput("the body is not an OTLP/JSON ExportTraceServiceRequest")
    out = Decoded()
    for resource_spans in _objects(request.get("resourceSpans"), "resourceSpans"):
        try:
            resource_object = _object(resource_spans.get("resource"), "resource")
            resource = _storable(_json_attributes(resource_object.get("attributes")))
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
            raise InvalidInput(f"a resource is not valid: {error}") from None
        for scope_spans in _objects(resource_spans.get("scopeSpans"), "scopeSpans"):
            name = _object(scope_spans.get("scope"), "scope").get("name", "")
            if not isinstance(name, str):
                raise InvalidInput("a scope name must be a string")
            for span in scope_spans.get("spans") or []:
                try:
                    _add(out, _json_span(span, resource, name))
                except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
                    out.rejected += 1
                    out.reasons.append(f"a span is not valid: {error}")
    return out


def _json_span(span: Any, resource: dict[str, Any], scope: str) -> Span:
    if not isinstance(span, dict):
        raise TypeError("a span must be an object")
    kind = span.get("kind", 0)
    return {
        "trace_id": _hex_id(span.get("traceId"), 16),
        "span_id": _hex_id(span.get("spanId"), 8),
        "parent_span_id": _optional_hex_id(span.get("parentSpanId"), 8),
        "name": str(span.get("name", "")),
        "kind": _KINDS.get(_int(kind), "unspecified")
        if not isinstance(kind, str)
        else kind.removeprefix("SPAN_KIND_").lower(),
        "start_time_unix_nano": _int(span.get("startTimeUnixNano", 0)),
        "end_time_unix_nano": _int(span.get("endTimeUnixNano", 0)),
        "status": _status(span.get("status")),
        "status_message": (span.get("status") or {}).get("message") or None,
        "attributes": _json_attributes(span.get("attributes")),
        "events": [
            {
                "name": str(e.get("name", "")),
                "time_unix_nano": _int(e.get("timeUnixNano", 0)),
                "attributes": _json_attributes(e.get("attributes")),
            }
            for e in span.get("events") or []
        ],
        "resource": resource,
        "scope": scope,
    }


MAX_NANOS = 2**63 - 1  # BIGINT on PostgreSQL, INTEGER on SQLite: signed 64-bit
_INT64 = (-(2**63), 2**63 - 1)


def _unstorable(value: Any, depth: int = 0) -> str | None:
    """Why a decoded value cannot be stored, or None. Non-finite floats are made strings in
    place by ``_storable`` before this runs."""
    if depth > 32:
        return "attribute values are nested more than 32 levels deep"
    if isinstance(value, str):
        return "a string contains a NUL character" if "\x00" in value else None
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return None
    if isinstance(value, int):
        return None if _INT64[0] <= value <= _INT64[1] else "an integer is beyond 64 bits"
    if isinstance(value, list):
        return next((r for v in value if (r := _unstorable(v, depth + 1))), None)
    if isinstance(value, dict):
        for key, inner in value.items():
            problem = _unstorable(key, depth + 1) or _unstorable(inner, depth + 1)
            if problem:
                return problem
        return None
    return f"unexpected value of type {type(value).__name__}"


def _storable(value: Any) -> Any:
    """NaN and the infinities as the strings OTLP/JSON writes them (JSONB refuses them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    return value


def _problem(span: Span) -> str | None:
    """Why the span worker could not store this span (checked here, so only it is refused)."""
    trace_id, span_id, parent = span["trace_id"], span["span_id"], span["parent_span_id"]
    if not trace_id or set(trace_id) == {"0"} or not span_id or set(span_id) == {"0"}:
        return "an all-zero or empty trace or span id"
    if len(trace_id) != 32:
        return f"trace id {trace_id!r} is not 16 bytes"
    if len(span_id) != 16:
        return f"span id {span_id!r} is not 8 bytes"
    if parent is not None and len(parent) != 16:
        return f"parent span id {parent!r} is not 8 bytes"
    times = [span["start_time_unix_nano"], span["end_time_unix_nano"]]
    times += [e["time_unix_nano"] for e in span["events"]]
    if any(not 0 <= t <= MAX_NANOS for t in times):
        return f"a time is beyond the storable range (0..{MAX_NANOS} ns)"
    problem = _unstorable(span)
    return f"{problem}" if problem else None


def _add(out: Decoded, span: Span) -> None:
    span = _storable(span)
    problem = _problem(span)
    if problem:
        out.rejected += 1
        out.reasons.append(f"span {span['span_id'] or '?'} refused: {problem}")
        return
    out.spans.append(span)


def decode_request(body: bytes, content_type: str | None, encoding: str | None) -> Decoded:
    kind = media_type(content_type)
    raw = inflate(body, encoding)
    return _decode_protobuf(raw) if kind == PROTOBUF else _decode_json(raw)


def encode_response(kind: str, rejected: int, message: str | None) -> bytes:
    """An ExportTraceServiceResponse in the request's content type."""
    if kind == PROTOBUF:
        response = ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = message or ""
        return response.SerializeToString()
    if not rejected:
        return b"{}"
    body = {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message or ""}}
    return json.dumps(body).encode()


# -- logs and metrics (POST /ingest/v1/logs, /ingest/v1/metrics) --------------------------------


@dataclass
class DecodedLogs:
    """Log records as dicts (hex ids, nanosecond time, ``name`` the event name, ``body`` and
    ``attributes`` as Python values); records without a span context are kept too."""

    records: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)


def _event_name(explicit: str, attributes: dict[str, Any]) -> str:
    return str(explicit or attributes.get("event.name") or "")


def _decode_logs_protobuf(raw: bytes) -> DecodedLogs:
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(raw)
    except DecodeError as error:
        raise InvalidInput("the body is not an OTLP ExportLogsServiceRequest") from error
    out = DecodedLogs()
    for resource_logs in request.resource_logs:
        resource = _pb_attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                attributes = _pb_attributes(record.attributes)
                out.records.append(
                    {
                        "trace_id": record.trace_id.hex() or None,
                        "span_id": record.span_id.hex() or None,
                        "time_unix_nano": record.time_unix_nano or record.observed_time_unix_nano,
                        "name": _event_name(record.event_name, attributes),
                        "body": _pb_value(record.body),
                        "attributes": attributes,
                        "resource": resource,
                    }
                )
    return out


def _decode_logs_json(raw: bytes) -> DecodedLogs:
    try:
        request = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidInput("the body is not valid JSON") from error
    if not isinstance(request, dict) or not isinstance(request.get("resourceLogs", []), list):
        raise InvalidInput("the body is not an OTLP/JSON ExportLogsServiceRequest")
    out = DecodedLogs()
    for resource_logs in request.get("resourceLogs", []):
        resource = _json_attributes((resource_logs.get("resource") or {}).get("attributes"))
        for scope_logs in resource_logs.get("scopeLogs", []):
            for record in scope_logs.get("logRecords", []):
                try:
                    attributes = _json_attributes(record.get("attributes"))
                    out.records.append(
                        {
                            "trace_id": _optional_hex_id(record.get("traceId"), 16),
                            "span_id": _optional_hex_id(record.get("spanId"), 8),
                            "time_unix_nano": _int(
                                record.get("timeUnixNano")
                                or record.get("observedTimeUnixNano")
                                or 0
                            ),
                            "name": _event_name(record.get("eventName", ""), attributes),
                            "body": _json_value(record.get("body")),
                            "attributes": attributes,
                            "resource": resource,
                        }
                    )
                except (ValueError, TypeError, KeyError, AttributeError) as error:
                    out.rejected += 1
                    out.reasons.append(str(error))
    return out


def decode_logs_request(body: bytes, content_type: str | None, encoding: str | None) -> DecodedLogs:
    kind = media_type(content_type)
    raw = inflate(body, encoding)
    return _decode_logs_protobuf(raw) if kind == PROTOBUF else _decode_logs_json(raw)


@dataclass
class DecodedMetrics:
    """Data points by metric name (each point: attributes, and sum/count/value as given)."""

    points: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)


def _decode_metrics_protobuf(raw: bytes) -> DecodedMetrics:
    request = ExportMetricsServiceRequest()
    try:
        request.ParseFromString(raw)
    except DecodeError as error:
        raise InvalidInput("the body is not an OTLP ExportMetricsServiceRequest") from error
    out = DecodedMetrics()
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                data = metric.WhichOneof("data")
                points = getattr(metric, data).data_points if data else []
                for point in points:
                    entry: dict[str, Any] = {"attributes": _pb_attributes(point.attributes)}
                    for name in ("sum", "count", "as_int", "as_double"):
                        if hasattr(point, name):
                            entry[name] = getattr(point, name)
                    out.points.setdefault(metric.name, []).append(entry)
    return out


def _decode_metrics_json(raw: bytes) -> DecodedMetrics:
    try:
        request = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidInput("the body is not valid JSON") from error
    if not isinstance(request, dict) or not isinstance(request.get("resourceMetrics", []), list):
        raise InvalidInput("the body is not an OTLP/JSON ExportMetricsServiceRequest")
    out = DecodedMetrics()
    for resource_metrics in request.get("resourceMetrics", []):
        for scope_metrics in resource_metrics.get("scopeMetrics", []):
            for metric in scope_metrics.get("metrics", []):
                for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "summary"):
                    for point in (metric.get(kind) or {}).get("dataPoints", []):
                        try:
                            out.points.setdefault(str(metric.get("name", "")), []).append(
                                {"attributes": _json_attributes(point.get("attributes")), **point}
                            )
                        except (ValueError, TypeError, KeyError, AttributeError) as error:
                            out.rejected += 1
                            out.reasons.append(str(error))
    return out


def decode_metrics_request(
    body: bytes, content_type: str | None, encoding: str | None
) -> DecodedMetrics:
    kind = media_type(content_type)
    raw = inflate(body, encoding)
    return _decode_metrics_protobuf(raw) if kind == PROTOBUF else _decode_metrics_json(raw)


def encode_signal_response(signal: str, kind: str, rejected: int, message: str | None) -> bytes:
    """An Export{Logs,Metrics}ServiceResponse in the request's content type (``signal`` is
    ``logs`` or ``metrics``; traces use ``encode_response``)."""
    field_name = "rejected_log_records" if signal == "logs" else "rejected_data_points"
    if kind == PROTOBUF:
        response = (
            ExportLogsServiceResponse() if signal == "logs" else ExportMetricsServiceResponse()
        )
        if rejected:
            setattr(response.partial_success, field_name, rejected)
            response.partial_success.error_message = message or ""
        return response.SerializeToString()
    if not rejected:
        return b"{}"
    camel = "rejectedLogRecords" if signal == "logs" else "rejectedDataPoints"
    return json.dumps(
        {"partialSuccess": {camel: str(rejected), "errorMessage": message or ""}}
    ).encode()
