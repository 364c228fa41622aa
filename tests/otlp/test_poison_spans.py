"""One bad span among ten: the nine are stored, the bad one is refused in ``partial_success``
(ingest validates what the worker could not store), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.trace import Tracer

from tests.otlp import spans as fixtures
from tests.otlp.test_ingest_and_worker import (  # noqa: F401  (kontex is a fixture)
    all_snapshots,
    deliver,
    kontex,
    post,
)


def llm_span(tracer: Tracer, i: int, name: str = "openai.completion", **extra: Any) -> None:
    attributes = {
        "llm.request.type": "completion",
        "llm.request.model": "text-davinci-003",
        "llm.prompts.0.role": "user",
        "llm.prompts.0.content": f"call {i}",
        "llm.completions.0.role": "assistant",
        "llm.completions.0.content": "ok",
        "session.id": "poison",
        **extra,
    }
    span = tracer.start_span(name, attributes=attributes)
    span.end()


def ten(bad: Callable[[Tracer], None]) -> Callable[[Tracer], None]:
    def build(tracer: Tracer) -> None:
        for i in range(9):
            llm_span(tracer, i)
        bad(tracer)

    return build


def end_of_time(tracer: Tracer) -> None:
    span = tracer.start_span("openai.completion", attributes={"llm.request.type": "completion"})
    span.end(end_time=2**64 - 1)  # a legal fixed64, beyond BIGINT


def nul_in_name(tracer: Tracer) -> None:
    llm_span(tracer, 9, name="open\x00ai")


def nul_in_attribute(tracer: Tracer) -> None:
    llm_span(tracer, 9, **{"llm.prompts.0.content": "a\x00b"})


def protobuf(build: Callable[[Tracer], None]) -> bytes:
    return fixtures.protobuf(fixtures.record(build))


def with_short_span_id() -> bytes:
    request = ExportTraceServiceRequest()
    request.ParseFromString(protobuf(ten(lambda t: llm_span(t, 9))))
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[9].span_id = spans[9].span_id[:7]
    return request.SerializeToString()


CASES = {
    "end_time_2^64-1": lambda: protobuf(ten(end_of_time)),
    "nul_in_name": lambda: protobuf(ten(nul_in_name)),
    "nul_in_attribute": lambda: protobuf(ten(nul_in_attribute)),
    "span_id_of_7_bytes": with_short_span_id,
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_bad_span_among_ten_protobuf(kontex: Any, case: str) -> None:  # noqa: F811
    status, _, raw = post(kontex, CASES[case](), {"content-type": "application/x-protobuf"})
    assert status == 200
    response = ExportTraceServiceResponse.FromString(raw)
    assert response.partial_success.rejected_spans == 1
    assert "refused" in response.partial_success.error_message
    assert deliver(kontex) == [{"batchItemFailures": []}]
    assert len(all_snapshots(kontex)) == 9


def json_span(i: int, **overrides: Any) -> dict[str, Any]:
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": f"{i + 1:016x}",
        "name": "openai.completion",
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001000000000",
        "attributes": [
            {"key": "llm.request.type", "value": {"stringValue": "completion"}},
            {"key": "llm.prompts.0.role", "value": {"stringValue": "user"}},
            {"key": "llm.prompts.0.content", "value": {"stringValue": f"call {i}"}},
            {"key": "llm.completions.0.role", "value": {"stringValue": "assistant"}},
            {"key": "llm.completions.0.content", "value": {"stringValue": "ok"}},
            {"key": "session.id", "value": {"stringValue": "poison-json"}},
        ],
    }
    return {**span, **overrides}


JSON_CASES = {
    "end_time_2^64-1": {"endTimeUnixNano": str(2**64 - 1)},
    "start_time_negative": {"startTimeUnixNano": "-1"},
    "nul_in_name": {"name": "a\u0000b"},
    "nul_in_attribute_key": {"attributes": [{"key": "k\u0000", "value": {"intValue": 1}}]},
    "int_beyond_64_bits": {"attributes": [{"key": "n", "value": {"intValue": str(2**70)}}]},
    "trace_id_of_15_bytes": {"traceId": "ab" * 15},
    "span_is_a_list": None,
    "attributes_not_a_list": {"attributes": {"key": "x"}},
    "deeply_nested_value": {
        "attributes": [
            {"key": "deep", "value": json.loads('{"arrayValue":{"values":[' * 40 + "]}}" * 40)}
        ]
    },
}


@pytest.mark.parametrize("case", list(JSON_CASES))
def test_one_bad_span_among_ten_json(kontex: Any, case: str) -> None:  # noqa: F811
    bad = JSON_CASES[case]
    spans = [json_span(i) for i in range(9)] + [[] if bad is None else json_span(9, **bad)]
    body = {"resourceSpans": [{"scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}
    status, _, raw = post(kontex, json.dumps(body).encode(), {"content-type": "application/json"})
    assert status == 200, raw
    answer = json.loads(raw)["partialSuccess"]
    assert answer["rejectedSpans"] == "1" and answer["errorMessage"]
    assert deliver(kontex) == [{"batchItemFailures": []}]
    assert len(all_snapshots(kontex)) == 9


def test_non_finite_doubles_are_kept_as_strings(kontex: Any) -> None:  # noqa: F811
    spans = [
        json_span(
            0,
            attributes=[
                *json_span(0)["attributes"],
                *[
                    {"key": f"d{i}", "value": {"doubleValue": v}}
                    for i, v in enumerate(["NaN", "Infinity"])
                ],
            ],
        )
    ]
    body = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
    status, _, raw = post(kontex, json.dumps(body).encode(), {"content-type": "application/json"})
    assert status == 200 and raw == b"{}"
    assert deliver(kontex) == [{"batchItemFailures": []}]
    assert len(all_snapshots(kontex)) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"resourceSpans": {"not": "a list"}},
        {"resourceSpans": ["not an object"]},
        {"resourceSpans": [{"resource": []}]},
        {"resourceSpans": [{"resource": {"attributes": "nope"}}]},
        {"resourceSpans": [{"scopeSpans": [{"scope": "nope"}]}]},
        {"resourceSpans": [{"scopeSpans": [{"scope": {"name": 7}}]}]},
        {"resourceSpans": [{"scopeSpans": "nope"}]},
        [],
    ],
)
def test_wrong_resource_and_scope_shapes_are_400(kontex: Any, body: Any) -> None:  # noqa: F811
    status, _, raw = post(kontex, json.dumps(body).encode(), {"content-type": "application/json"})
    assert status == 400
    assert json.loads(raw)["error"] == "validation_error"


def test_json_nested_too_deep_is_400(kontex: Any) -> None:  # noqa: F811
    body = b'{"resourceSpans":' + b"[" * 5000 + b"]" * 5000 + b"}"
    status, _, raw = post(kontex, body, {"content-type": "application/json"})
    assert status == 400 and json.loads(raw)["error"] == "validation_error"


@pytest.mark.parametrize(
    "attribute", ["gen_ai.prompt.1.content", "llm.prompts.0.content", "gen_ai.input.messages"]
)
def test_a_deeply_nested_json_text_is_kept_as_text_and_takes_no_neighbour_down(
    kontex: Any,  # noqa: F811
    attribute: str,
) -> None:
    # A JSON-looking text 10,000 levels deep: the mapping parsed it and died of a
    # RecursionError, and the whole acknowledged request was dead-lettered (9 good spans lost)
    deep = "[" * 10000 + "]" * 10000
    status, _, raw = post(
        kontex,
        protobuf(ten(lambda t: llm_span(t, 9, **{attribute: deep}))),
        {"content-type": "application/x-protobuf"},
    )
    assert status == 200
    assert ExportTraceServiceResponse.FromString(raw).partial_success.rejected_spans == 0
    assert deliver(kontex) == [{"batchItemFailures": []}]
    assert len(all_snapshots(kontex)) == 10


def test_a_batch_with_duplicates_and_a_poison_span_writes_each_span_once(
    kontex: Any,  # noqa: F811
) -> None:
    """Issue 23, span worker in bulk: one queue batch holding the same request twice (an
    exporter's retry) and a request with a poison span among nine good ones, sealed in one unit
    of work: every good span becomes one snapshot, none twice, and the batch fails nothing."""
    good = protobuf(ten(lambda t: llm_span(t, 9)))
    poisoned = protobuf(ten(lambda t: llm_span(t, 9, **{"llm.prompts.0.content": "[" * 10000})))
    for body in (good, good, poisoned):
        status, _, raw = post(kontex, body, {"content-type": "application/x-protobuf"})
        assert status == 200
        assert ExportTraceServiceResponse.FromString(raw).partial_success.rejected_spans == 0
    assert len(kontex.queue.sent) == 3  # one queue batch of three records
    assert deliver(kontex, times=2) == [{"batchItemFailures": []}] * 2  # and redelivered
    snaps = all_snapshots(kontex)
    assert len(snaps) == 20  # ten spans of the request sent twice, ten of the poisoned one
    assert len({s.id for s in snaps}) == 20
