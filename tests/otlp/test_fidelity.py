"""What today's stacks send (Traceloop/OpenLLMetry beside the anthropic SDK's own spans, GenAI
events as OTLP logs, metrics) becomes faithful snapshots, whatever the arrival order."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.trace import Tracer

from kontex.adapters.local_queue import sqs_record
from kontex.domain.errors import Transient
from kontex.http.apigw import LocalContext, http_api_event, response_parts
from kontex.services import sessions, snapshots, spans, views
from tests.otlp import spans as fixtures
from tests.otlp import test_ingest_and_worker as base
from tests.otlp.test_ingest_and_worker import all_snapshots, deliver, ingest_handler, post

kontex = base.kontex  # the fixture: the ingest handler, a recording queue, the span worker

PROTO = {"content-type": "application/x-protobuf"}
SESSION = {"traceloop.association.properties.session_id": "weather"}


def sdk_usage(tracer: Tracer, input_tokens: int, cache_read: int | None = None) -> None:
    """The anthropic SDK's own span: usage, no content."""
    attributes: dict[str, Any] = {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": 25,
        **SESSION,
    }
    if cache_read is not None:
        attributes["gen_ai.usage.cache_read_input_tokens"] = cache_read
    with tracer.start_as_current_span("anthropic.messages.create", attributes=attributes):
        pass


def chat(tracer: Tracer, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> None:
    """OpenLLMetry's span of the same call (current semantic conventions)."""
    with tracer.start_as_current_span(
        "anthropic.chat",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.input.messages": json.dumps(inputs),
            "gen_ai.output.messages": json.dumps(outputs),
            "gen_ai.usage.input_tokens": 101,
            "gen_ai.usage.output_tokens": 25,
            **SESSION,
        },
    ):
        sdk_usage(tracer, 101, cache_read=7)  # a child here; a sibling in 0.62.4, both work


ASK = {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}
USE = {
    "role": "assistant",
    "parts": [
        {"type": "text", "content": "Let me look."},
        {"type": "tool_call", "id": "toolu_1", "name": "get_weather", "arguments": {"city": "P"}},
    ],
}
RESULT = {
    "role": "user",
    "parts": [{"type": "tool_call_response", "id": "toolu_1", "response": "21C"}],
}
DONE = {"role": "assistant", "parts": [{"type": "text", "content": "It is 21C."}]}


def traceloop_agent(tracer: Tracer) -> None:
    workflow = {"traceloop.span.kind": "workflow", "traceloop.entity.name": "agent", **SESSION}
    with tracer.start_as_current_span("agent.workflow", attributes=workflow):
        task = {"traceloop.span.kind": "task", "traceloop.entity.name": "plan", **SESSION}
        with tracer.start_as_current_span("plan.task", attributes=task):
            chat(tracer, [ASK], [USE])
            with tracer.start_as_current_span(
                "get_weather.tool",
                attributes={
                    "traceloop.span.kind": "tool",
                    "traceloop.entity.name": "get_weather",
                    "traceloop.entity.input": json.dumps({"args": [], "kwargs": {"city": "P"}}),
                    "traceloop.entity.output": json.dumps("21C"),
                    **SESSION,
                },
            ):
                pass
            chat(tracer, [ASK, USE, RESULT], [DONE])


def written(kontex: Any, account_id: str | None = None) -> list[tuple[str, str, str, Any]]:
    account_id = account_id or kontex.account_id
    (session,) = sessions.list_sessions(kontex.deps, account_id).items
    tree = {
        t["id"]: t["name"] for t in _flat(sessions.task_tree(kontex.deps, account_id, session.id))
    }
    snaps = snapshots.list_snapshots(kontex.deps, account_id, session.id).items
    return [(s.label, tree[s.task_id], s.bundle_hash, s.token_total) for s in snaps]


def _flat(tree: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [n for t in tree for n in [t, *_flat(t.get("children", []))]]


def test_sdk_usage_spans_complete_their_call_and_one_tool_call_per_execution(kontex: Any) -> None:
    post(kontex, fixtures.protobuf(fixtures.record(traceloop_agent)), PROTO)
    deliver(kontex)
    snaps = all_snapshots(kontex)
    assert [s.label for s in snaps] == ["anthropic.chat", "tool: get_weather", "anthropic.chat"]
    bundles = [snapshots.get_bundle(kontex.deps, kontex.account_id, s.id) for s in snaps]
    assert all(b.messages for b in bundles)
    first, tool, last = bundles
    assert [(c.id, c.status, c.output) for c in first.tool_calls] == [("toolu_1", "pending", None)]
    for bundle in (tool, last):
        assert [(c.id, c.status) for c in bundle.tool_calls] == [("toolu_1", "success")]
    assert first.usage is not None and last.usage is not None
    assert first.usage.input_tokens == 101 and first.usage.output_tokens == 25
    assert first.usage.cache_read_tokens == 7  # from the SDK's own span
    assert first.usage.latency_ms is not None and first.usage.latency_ms >= 0
    assert tool.usage is None

    stats = views.stats(kontex.deps, kontex.account_id, snaps[0].session_id)
    # each call once: 101 in + 25 out + 7 cache reads
    assert stats["llm_calls"] == 2 and stats["total_tokens"] == 2 * 133
    assert stats["total_tool_calls"] == 1 and stats["tool_calls_by_status"]["success"] == 1


def test_children_before_parents_land_as_with_batching(kontex: Any) -> None:
    from kontex.services import keys

    recorded = fixtures.record(traceloop_agent)  # in end order: children first
    post(kontex, fixtures.protobuf(recorded), PROTO)
    deliver(kontex)
    whole = written(kontex)

    other, other_key = keys.create_key(kontex.deps, "one-by-one")
    kontex.test_key = other_key
    for span in recorded:  # disable_batch=True: one export, and one delivery, per span
        kontex.queue.sent.clear()
        post(kontex, fixtures.protobuf([span]), PROTO)
        deliver(kontex)
    assert written(kontex, other.account_id) == whole
    assert {task for _, task, _, _ in whole} == {"plan"}


def test_a_span_whose_parent_never_comes_waits_a_grace_period(kontex: Any, clock: Any) -> None:
    recorded = [s for s in fixtures.record(traceloop_agent) if s.name != "agent.workflow"]
    post(kontex, fixtures.protobuf(recorded), PROTO)
    waiting: list[tuple[str, str]] = []
    spans.store_batch(kontex.deps, [json.loads(b) for _, b in kontex.queue.sent], waiting)
    assert all_snapshots(kontex) == []  # its ancestor may still come
    trace_id = format(recorded[0].context.trace_id, "032x")
    assert set(waiting) == {(kontex.account_id, trace_id)}
    (retry,) = spans.retry_messages(waiting)  # what the worker queues, delayed
    assert retry == {"account_id": kontex.account_id, "retry_traces": [trace_id]}
    spans.store_batch(kontex.deps, [retry])
    assert all_snapshots(kontex) == []  # too early: still waiting
    clock.advance(kontex.deps.span_grace_seconds + 1)
    assert spans.store_batch(kontex.deps, [retry], waiting := []) == 3 and not waiting
    snaps = all_snapshots(kontex)
    with kontex.deps.store.unit(write=False) as uow:
        tasks = uow.tasks.of_session(kontex.account_id, snaps[0].session_id)
    assert {t.name for t in tasks} == {"plan"}  # its own task span came: it is placed there


def test_the_worker_queues_a_delayed_retry_on_sqs(kontex: Any, mocked_aws: None) -> None:
    import boto3

    from kontex.adapters.sqs_queue import SqsQueue

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="spans")["QueueUrl"]
    kontex.queue = SqsQueue({"spans": url}, client=sqs)
    recorded = [s for s in fixtures.record(traceloop_agent) if s.name != "agent.workflow"]
    post(kontex, fixtures.protobuf(recorded), PROTO)
    (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    record = sqs_record("spans", "m1", message["Body"], 1)
    assert base.worker({"Records": [record]}, LocalContext(function_name="w")) == {
        "batchItemFailures": []
    }
    assert sqs.receive_message(QueueUrl=url).get("Messages") is None  # delayed, not yet due
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"


# -- GenAI events as OTLP logs -------------------------------------------------------------------


def attribute_call(tracer: Tracer) -> None:
    with tracer.start_as_current_span(
        "chat claude",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": "Be brief.",
            "gen_ai.prompt.1.role": "user",
            "gen_ai.prompt.1.content": "Weather in Paris?",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "Let me look.",
            "gen_ai.completion.0.tool_calls.0.id": "toolu_1",
            "gen_ai.completion.0.tool_calls.0.name": "get_weather",
            "gen_ai.completion.0.tool_calls.0.arguments": '{"city": "Paris"}',
            "gen_ai.usage.input_tokens": 30,
            "gen_ai.usage.output_tokens": 9,
            "session.id": "attributes",
        },
    ):
        pass


def events_call() -> tuple[bytes, bytes]:
    """The same call as a content-less span plus GenAI events, recorded by the real logs SDK
    (events emitted inside the span, so they carry its trace and span id)."""
    logs = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    build = events_build(provider.get_logger("opentelemetry.instrumentation.anthropic"))
    spans = fixtures.protobuf(fixtures.record(build))
    provider.force_flush()
    return spans, encode_logs(list(logs.get_finished_logs())).SerializeToString()


def events_build(logger: Any, session: str = "events") -> Any:
    """A tracer callback: a chat span without content, its GenAI events sent to ``logger``."""

    def build(tracer: Tracer) -> None:
        with tracer.start_as_current_span(
            "chat claude",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.usage.input_tokens": 30,
                "gen_ai.usage.output_tokens": 9,
                "session.id": session,
            },
        ):
            for name, body in [
                ("gen_ai.system.message", {"content": "Be brief."}),
                ("gen_ai.user.message", {"content": "Weather in Paris?"}),
                (
                    "gen_ai.choice",
                    {
                        "index": 0,
                        "finish_reason": "tool_calls",
                        "message": {
                            "role": "assistant",
                            "content": "Let me look.",
                            "tool_calls": [
                                {
                                    "id": "toolu_1",
                                    "type": "function",
                                    "function": {
                                        "name": "get_weather",
                                        "arguments": '{"city": "Paris"}',
                                    },
                                }
                            ],
                        },
                    },
                ),
            ]:
                logger.emit(
                    event_name=name, body=body, attributes={"gen_ai.provider.name": "anthropic"}
                )
                assert trace_api.get_current_span().is_recording()

    return build


def post_signal(kontex: Any, signal: str, body: bytes, headers: dict[str, str]) -> Any:
    sent = {"x-kontex-api-key": kontex.test_key, **headers}
    event = http_api_event("POST", f"/ingest/v1/{signal}", list(sent.items()), body)
    status, reply_headers, raw = response_parts(
        ingest_handler(event, LocalContext(function_name="kontex-ingest"))
    )
    return status, {k.lower(): v for k, v in reply_headers}, raw


def test_genai_events_as_logs_give_the_messages_of_the_attribute_form(kontex: Any) -> None:
    post(kontex, fixtures.protobuf(fixtures.record(attribute_call)), PROTO)
    spans, logs = events_call()
    status, headers, raw = post_signal(kontex, "logs", logs, PROTO)  # logs may come first
    assert status == 200 and headers["content-type"] == "application/x-protobuf"
    reply = ExportLogsServiceResponse()
    reply.ParseFromString(raw)
    assert reply.partial_success.rejected_log_records == 0
    post(kontex, spans, PROTO)
    deliver(kontex)
    by_session = {}
    for session in sessions.list_sessions(kontex.deps, kontex.account_id).items:
        (snap,) = snapshots.list_snapshots(kontex.deps, kontex.account_id, session.id).items
        by_session[session.name] = snapshots.get_bundle(kontex.deps, kontex.account_id, snap.id)
    assert by_session["events"].messages == by_session["attributes"].messages
    assert [m.role for m in by_session["events"].messages] == ["system", "user", "assistant"]
    calls = [
        [c.model_dump(exclude={"timestamp"}) for c in by_session[name].tool_calls]
        for name in ("events", "attributes")
    ]
    assert calls[0] == calls[1] and calls[0][0]["status"] == "pending"


@pytest.mark.parametrize("outer", ["span", "events"])
def test_a_span_and_its_events_processed_at_once_by_two_workers_make_the_snapshot(
    kontex: Any, monkeypatch: pytest.MonkeyPatch, outer: str
) -> None:
    """Two span workers (two Lambdas, two `kontex dev` span processes) take the span and its
    events at once: each reads the trace before the other's write is committed, so each finds
    its half alone and stores it pending. The later one to commit reads the trace again and
    makes the snapshot now, not after the grace period's retry (30 s)."""
    spans_body, logs = events_call()
    post(kontex, spans_body, PROTO)
    post_signal(kontex, "logs", logs, PROTO)
    span_message, events_message = (body for _, body in kontex.queue.sent)
    first, second = (
        (span_message, events_message) if outer == "span" else (events_message, span_message)
    )
    process = spans._process
    inside: list[str] = []

    def interleaved(*args: Any, **kwargs: Any) -> int:
        if not inside:  # the outer worker has read the trace: the other one runs in full now
            inside.append(second)
            spans.store_batch(kontex.deps, [spans.read_message(second)], [])
        return process(*args, **kwargs)

    monkeypatch.setattr(spans, "_process", interleaved)
    waiting: list[tuple[str, str]] = []
    spans.store_batch(kontex.deps, [spans.read_message(first)], waiting)
    assert inside == [second]
    (session,) = sessions.list_sessions(kontex.deps, kontex.account_id).items
    (snap,) = snapshots.list_snapshots(kontex.deps, kontex.account_id, session.id).items
    bundle = snapshots.get_bundle(kontex.deps, kontex.account_id, snap.id)
    assert [m.role for m in bundle.messages] == ["system", "user", "assistant"]
    assert waiting == []  # nothing left for the delayed retry


def test_a_failed_second_reading_leaves_the_batch_written_and_its_span_to_the_retry(
    kontex: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The reading again after the commit is a shortcut: when it fails (the database gone for a
    moment), the batch stays written and answered, and its waiting span gets the delayed retry
    it got before."""
    spans_body, _ = events_call()
    post(kontex, spans_body, PROTO)
    (message,) = (body for _, body in kontex.queue.sent)
    process = spans._process
    calls: list[int] = []

    def second_fails(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == 2:
            raise Transient("the database is unavailable")
        return process(*args, **kwargs)

    monkeypatch.setattr(spans, "_process", second_fails)
    waiting: list[tuple[str, str]] = []
    assert spans.store_batch(kontex.deps, [spans.read_message(message)], waiting) == 0
    assert len(calls) == 2 and len(waiting) == 1  # the span waits for its events: retried
    assert "could not read 1 traces again" in caplog.text
    with kontex.deps.store.unit(write=False) as uow:
        (stored,) = uow.spans.of_traces(waiting).values()
    assert [s["done"] for s in stored] == [False]  # stored, pending


def test_logs_and_metrics_answer_as_otlp_requires(kontex: Any) -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("traceloop")
    meter.create_histogram("gen_ai.client.token.usage").record(126, {"gen_ai.token.type": "input"})
    meter.create_counter("llm.anthropic.completion.exceptions").add(1)
    metrics = encode_metrics(reader.get_metrics_data()).SerializeToString()
    status, headers, raw = post_signal(kontex, "metrics", metrics, PROTO)
    assert status == 200 and headers["content-type"] == "application/x-protobuf"
    ExportMetricsServiceResponse().ParseFromString(raw)

    import gzip

    status, headers, raw = post_signal(
        kontex,
        "metrics",
        gzip.compress(b'{"resourceMetrics": []}'),
        {"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert (status, headers["content-type"], raw) == (200, "application/json", b"{}")
    assert post_signal(kontex, "logs", b"{}", {"content-type": "text/plain"})[0] == 415
    assert post_signal(kontex, "logs", b"not json", {"content-type": "application/json"})[0] == 400
    big = gzip.compress(b" " * (6 * 1024 * 1024))
    assert (
        post_signal(
            kontex, "metrics", big, {"content-type": "application/json", "content-encoding": "gzip"}
        )[0]
        == 413
    )
    bad = json.dumps(
        {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "xyz", "spanId": "1"}]}]}]}
    ).encode()
    status, _, raw = post_signal(kontex, "logs", bad, {"content-type": "application/json"})
    assert status == 200 and json.loads(raw)["partialSuccess"]["rejectedLogRecords"] == "1"
    assert post_signal(kontex, "profiles", b"", PROTO)[0] == 404


def otlp_json(request_bytes: bytes) -> bytes:
    """The protobuf logs request as OTLP/JSON (hex ids, as the specification wants)."""
    import base64

    from google.protobuf.json_format import MessageToDict
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    request = ExportLogsServiceRequest()
    request.ParseFromString(request_bytes)
    body = MessageToDict(request)
    for resource in body["resourceLogs"]:
        for scope in resource["scopeLogs"]:
            for record in scope["logRecords"]:
                for key in ("traceId", "spanId"):
                    record[key] = base64.b64decode(record[key]).hex()
    return json.dumps(body).encode()


def test_genai_events_as_json_logs_gzip(kontex: Any) -> None:
    import gzip

    spans_body, logs = events_call()
    status, headers, raw = post_signal(
        kontex,
        "logs",
        gzip.compress(otlp_json(logs)),
        {"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert (status, headers["content-type"], raw) == (200, "application/json", b"{}")
    post(kontex, spans_body, PROTO)
    deliver(kontex)
    (snap,) = all_snapshots(kontex)
    bundle = snapshots.get_bundle(kontex.deps, kontex.account_id, snap.id)
    assert [m.role for m in bundle.messages] == ["system", "user", "assistant"]
    assert bundle.messages[1].content == "Weather in Paris?"
