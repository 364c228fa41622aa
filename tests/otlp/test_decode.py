"""OTLP/HTTP decoding: protobuf and JSON, gzip, every AnyValue kind, bad input."""

from __future__ import annotations

import gzip
import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from kontex.domain.errors import InvalidInput, PayloadTooLarge
from kontex.http.errors import UnsupportedMediaType
from kontex.otlp.decode import JSON, MAX_BODY_BYTES, PROTOBUF, decode_request, encode_response
from tests.otlp import spans as fixtures

TRACE = "5B8EFFF798038103D269B633813FC60C"
SPAN = "EEE19B7EC3C1B174"


def otlp_json(span: dict) -> bytes:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]
                    },
                    "scopeSpans": [{"scope": {"name": "s"}, "spans": [span]}],
                }
            ]
        }
    ).encode()


def test_protobuf_gzip_round_trip() -> None:
    body = fixtures.protobuf(fixtures.record(fixtures.legacy_call))
    plain = decode_request(body, PROTOBUF, None)
    zipped = decode_request(gzip.compress(body), "application/x-protobuf; charset=binary", "gzip")
    assert plain.spans == zipped.spans and len(plain.spans) == 1
    span = plain.spans[0]
    assert len(span["trace_id"]) == 32 and len(span["span_id"]) == 16
    assert span["resource"]["service.name"] == "agent"
    assert span["attributes"]["llm.usage.prompt_tokens"] == 3


def test_json_hex_ids_any_case_and_integers_as_strings_or_numbers() -> None:
    body = otlp_json(
        {
            "traceId": TRACE,
            "spanId": SPAN,
            "parentSpanId": "",
            "name": "chat",
            "kind": 3,
            "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": 1700000000500000000,
            "status": {"code": 2, "message": "boom"},
            "attributes": [
                {"key": "s", "value": {"stringValue": "x"}},
                {"key": "i", "value": {"intValue": "9007199254740993"}},
                {"key": "d", "value": {"doubleValue": 0.5}},
                {"key": "b", "value": {"boolValue": True}},
                {"key": "bytes", "value": {"bytesValue": "aGk="}},
                {
                    "key": "arr",
                    "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": 2}]}},
                },
                {
                    "key": "kv",
                    "value": {
                        "kvlistValue": {
                            "values": [
                                {
                                    "key": "k",
                                    "value": {"arrayValue": {"values": [{"boolValue": False}]}},
                                }
                            ]
                        }
                    },
                },
            ],
        }
    )
    decoded = decode_request(body, JSON, None)
    (span,) = decoded.spans
    assert span["trace_id"] == TRACE.lower() and span["span_id"] == SPAN.lower()
    assert span["parent_span_id"] is None and span["kind"] == "client"
    assert span["start_time_unix_nano"] == 1700000000000000000
    assert span["status"] == "error" and span["status_message"] == "boom"
    assert span["attributes"] == {
        "s": "x",
        "i": 9007199254740993,
        "d": 0.5,
        "b": True,
        "bytes": "aGk=",
        "arr": ["a", 2],
        "kv": {"k": [False]},
    }


def test_bad_spans_are_rejected_not_dropped_silently() -> None:
    good = {
        "traceId": TRACE,
        "spanId": SPAN,
        "name": "ok",
        "startTimeUnixNano": 1,
        "endTimeUnixNano": 2,
    }
    bad_id = {**good, "spanId": "xyz"}
    zero = {**good, "traceId": "0" * 32}
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [good, bad_id, zero]}]}]})
    decoded = decode_request(body.encode(), JSON, None)
    assert len(decoded.spans) == 1 and decoded.rejected == 2 and decoded.reasons


@pytest.mark.parametrize(
    ("body", "kind", "encoding", "error"),
    [
        (b"\x00\x01garbage", PROTOBUF, None, InvalidInput),
        (b"{not json", JSON, None, InvalidInput),
        (b"[]", JSON, None, InvalidInput),
        (b"not gzip", PROTOBUF, "gzip", InvalidInput),
        (b"{}", "text/plain", None, UnsupportedMediaType),
        (b"{}", JSON, "br", UnsupportedMediaType),
        (gzip.compress(b" " * (MAX_BODY_BYTES + 10)), JSON, "gzip", PayloadTooLarge),
        (b" " * (MAX_BODY_BYTES + 1), JSON, None, PayloadTooLarge),
    ],
)
def test_undecodable_bodies(body: bytes, kind: str, encoding: str | None, error: type) -> None:
    with pytest.raises(error):
        decode_request(body, kind, encoding)


def test_responses_in_the_request_content_type() -> None:
    assert encode_response(JSON, 0, None) == b"{}"
    partial = json.loads(encode_response(JSON, 2, "bad ids"))
    assert partial == {"partialSuccess": {"rejectedSpans": "2", "errorMessage": "bad ids"}}
    parsed = ExportTraceServiceResponse()
    parsed.ParseFromString(encode_response(PROTOBUF, 3, "too big"))
    assert parsed.partial_success.rejected_spans == 3
    assert parsed.partial_success.error_message == "too big"
