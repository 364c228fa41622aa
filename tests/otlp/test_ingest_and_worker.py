"""Ingest handler -> queue -> span worker, on SQLite and PostgreSQL; SQS in moto."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from kontex import bootstrap, tokens
from kontex.adapters.local_blobs import LocalBlobs
from kontex.adapters.local_queue import LocalQueue, sqs_record
from kontex.adapters.sql import spans as sql_spans
from kontex.adapters.sqs_queue import SqsQueue
from kontex.functions import worker_paths
from kontex.http.apigw import LocalContext, http_api_event, response_parts
from kontex.local.server import load_handler, load_worker
from kontex.otlp import mapping
from kontex.otlp.span import body as span_body
from kontex.services import bundles, keys, sessions, snapshots, spans
from kontex.settings import Settings
from tests.otlp import spans as fixtures

ingest_handler = load_handler("ingest")


worker = load_worker(worker_paths()["spans"]).lambda_handler


class RecordingQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(
        self, queue: str, bodies: list[str], delay_seconds: int = 0, *, durable: bool = True
    ) -> None:
        self.sent += [(queue, b) for b in bodies]


@pytest.fixture
def kontex(store: Any, tmp_path: Any, clock: Any) -> Iterator[Any]:
    config = Settings.from_env({"KONTEX_API_KEY_SECRET": "s"}, kontex_data_dir=tmp_path)
    made = bootstrap.Container(config, store=store, blobs=LocalBlobs(tmp_path / "blobs"))
    made.deps.clock = clock
    made.queue = RecordingQueue()
    bootstrap.configure(made)
    key, plaintext = keys.create_key(made.deps, "otel")
    made.test_key = plaintext
    made.account_id = key.account_id
    yield made
    bootstrap.configure(None)


def post(kontex: Any, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    sent = {"x-kontex-api-key": kontex.test_key, **headers}
    event = http_api_event("POST", "/ingest/v1/traces", list(sent.items()), body)
    status, reply_headers, raw = response_parts(
        ingest_handler(event, LocalContext(function_name="kontex-ingest"))
    )
    return status, {k.lower(): v for k, v in reply_headers}, raw


def deliver(kontex: Any, times: int = 1) -> list[dict[str, Any]]:
    records = [
        sqs_record("spans", f"m{i}", body, 1) for i, (_, body) in enumerate(kontex.queue.sent)
    ]
    results = [worker({"Records": records}, LocalContext(function_name="w")) for _ in range(times)]
    return results


def all_snapshots(kontex: Any) -> list[Any]:
    out = []
    for s in sessions.list_sessions(kontex.deps, kontex.account_id, limit=100).items:
        out += snapshots.list_snapshots(kontex.deps, kontex.account_id, s.id, limit=100).items
    return out


def test_openllmetry_trace_becomes_snapshots(kontex: Any) -> None:
    body = gzip.compress(fixtures.protobuf(fixtures.record(fixtures.openllmetry_agent)))
    status, headers, raw = post(
        kontex, body, {"content-type": "application/x-protobuf", "content-encoding": "gzip"}
    )
    assert status == 200 and headers["content-type"] == "application/x-protobuf"
    reply = ExportTraceServiceResponse()
    reply.ParseFromString(raw)
    assert reply.partial_success.rejected_spans == 0
    assert len(kontex.queue.sent) == 1  # queued, not processed by ingest
    assert all_snapshots(kontex) == []

    deliver(kontex, times=3)  # every message delivered three times
    found = sessions.list_sessions(kontex.deps, kontex.account_id).items
    assert [s.name for s in found] == ["checkout-bot"]  # made from the association property
    snaps = all_snapshots(kontex)
    assert [s.label for s in snaps] == ["anthropic.chat", "tool: get_cart", "anthropic.chat"]
    assert all(s.source == "openllmetry" for s in snaps)
    assert [s.token_total for s in snaps] == [150, 150, 212]
    tree = sessions.task_tree(kontex.deps, kontex.account_id, found[0].id)
    assert [t["name"] for t in tree] == ["checkout"] and tree[0]["status"] == "completed"
    assert {s.task_id for s in snaps} == {tree[0]["id"]}

    first = snapshots.get_bundle(kontex.deps, kontex.account_id, snaps[0].id)
    assert [m.role for m in first.messages] == ["system", "user", "assistant"]
    assert first.reasoning == "I should look the cart up."
    assert first.model == "claude-sonnet-4-5-20250929"
    assert [(c.id, c.tool, c.output) for c in first.tool_calls] == [("toolu_01", "get_cart", None)]
    after_tool = snapshots.get_bundle(kontex.deps, kontex.account_id, snaps[1].id)
    assert after_tool.tool_calls[0].output == {"items": ["socks"]}
    last = snapshots.get_bundle(kontex.deps, kontex.account_id, snaps[2].id)
    assert last.messages[-1].content == "You have socks in your cart."
    assert last.tool_calls[0].output == '{"items": ["socks"]}'
    assert snaps[2].parent_snapshot_id == snaps[1].id


def test_reexport_creates_nothing_twice(kontex: Any) -> None:
    body = fixtures.protobuf(fixtures.record(fixtures.semconv_agent))
    for _ in range(2):
        assert post(kontex, body, {"content-type": "application/x-protobuf"})[0] == 200
    deliver(kontex, times=3)
    snaps = all_snapshots(kontex)
    assert len(snaps) == 2  # the chat, then the (failed) tool
    bundle = snapshots.get_bundle(kontex.deps, kontex.account_id, snaps[-1].id)
    assert bundle.tool_calls[0].status == "error"
    assert sessions.list_sessions(kontex.deps, kontex.account_id).items[0].name == "conv-42"


def test_spans_wait_for_a_trace_link(kontex: Any) -> None:
    recorded = fixtures.record(lambda t: fixtures.openllmetry_agent(t, session=None))
    post(kontex, fixtures.protobuf(recorded), {"content-type": "application/x-protobuf"})
    deliver(kontex)
    assert all_snapshots(kontex) == []  # kept, pending: nothing to attach them to yet
    session = sessions.create_session(kontex.deps, kontex.account_id, "linked later")
    trace_id = format(recorded[0].context.trace_id, "032x")
    sessions.link_trace(kontex.deps, kontex.account_id, session.id, trace_id)
    from kontex.services import spans

    assert spans.process_trace(kontex.deps, kontex.account_id, trace_id) == 3
    assert [s.session_id for s in all_snapshots(kontex)] == [session.id] * 3


def test_header_session_wins_and_must_be_the_callers(kontex: Any) -> None:
    mine = sessions.create_session(kontex.deps, kontex.account_id, "mine")
    body = fixtures.protobuf(fixtures.record(fixtures.legacy_call))
    status, _, _ = post(
        kontex, body, {"content-type": "application/x-protobuf", "x-kontex-session-id": mine.id}
    )
    assert status == 200
    deliver(kontex)
    (snap,) = all_snapshots(kontex)
    assert snap.session_id == mine.id and snap.token_total == 4
    other, _ = keys.create_key(kontex.deps, "other")
    foreign = sessions.create_session(kontex.deps, other.account_id, "theirs")
    status, _, raw = post(
        kontex, body, {"content-type": "application/x-protobuf", "x-kontex-session-id": foreign.id}
    )
    assert status == 404 and json.loads(raw)["error"] == "not_found"


def test_ingest_answers_errors_in_shape(kontex: Any) -> None:
    proto = {"content-type": "application/x-protobuf"}
    assert post(kontex, b"\x00garbage", proto)[0] == 400
    assert post(kontex, b"{}", {"content-type": "text/plain"})[0] == 415
    big = gzip.compress(b"\x00" * (6 * 1024 * 1024))
    assert post(kontex, big, {**proto, "content-encoding": "gzip"})[0] == 413
    event = http_api_event(
        "POST", "/ingest/v1/traces", [("content-type", "application/json")], b"{}"
    )
    unauth = response_parts(ingest_handler(event, LocalContext(function_name="i")))
    assert unauth[0] == 401 and json.loads(unauth[2])["error"] == "unauthorized"
    ok_json = post(kontex, b'{"resourceSpans": []}', {"content-type": "application/json"})
    assert ok_json[0] == 200 and ok_json[2] == b"{}"
    assert kontex.queue.sent == []


def test_queue_unavailable_is_503_with_retry_after(kontex: Any) -> None:
    from kontex.domain.errors import Transient

    class Down:
        def send(
            self, queue: str, bodies: list[str], delay_seconds: int = 0, *, durable: bool = True
        ) -> None:
            raise Transient("the queue is unavailable")

    kontex.queue = Down()
    body = fixtures.protobuf(fixtures.record(fixtures.legacy_call))
    status, headers, _ = post(kontex, body, {"content-type": "application/x-protobuf"})
    assert status == 503 and headers["retry-after"]


def test_poison_record_fails_alone(kontex: Any) -> None:
    post(
        kontex,
        fixtures.protobuf(fixtures.record(fixtures.legacy_call)),
        {"content-type": "application/x-protobuf"},
    )
    good = sqs_record("spans", "good", kontex.queue.sent[0][1], 1)
    poison = sqs_record("spans", "poison", '{"account_id": "acct_x", "spans": "nope"}', 1)
    result = worker({"Records": [poison, good]}, LocalContext(function_name="w"))
    assert result == {"batchItemFailures": [{"itemIdentifier": "poison"}]}
    assert len(all_snapshots(kontex)) == 1


def test_in_process_queue_redelivery(kontex: Any) -> None:
    local = LocalQueue()
    local.register("spans", worker)
    kontex.queue = local
    local.start()
    try:
        body = fixtures.protobuf(fixtures.record(fixtures.openllmetry_agent))
        for _ in range(3):  # the exporter retried: the same spans three times
            post(kontex, body, {"content-type": "application/x-protobuf"})
        assert local.drain(timeout=30)
    finally:
        local.stop()
    assert len(all_snapshots(kontex)) == 3


def test_worker_in_moto_sqs(kontex: Any, mocked_aws: None) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="kontex-spans")["QueueUrl"]
    kontex.queue = SqsQueue({"spans": url}, client=sqs)
    post(
        kontex,
        fixtures.protobuf(fixtures.record(fixtures.openllmetry_agent)),
        {"content-type": "application/x-protobuf"},
    )
    post(
        kontex,
        fixtures.protobuf(fixtures.record(fixtures.semconv_agent)),
        {"content-type": "application/x-protobuf"},
    )
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])[
        "Messages"
    ]
    assert len(received) == 2
    records = [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:kontex-spans",
            "awsRegion": "eu-west-1",
        }
        for m in received
    ]
    for _ in range(3):  # redelivered three times
        assert worker({"Records": records}, LocalContext(function_name="w")) == {
            "batchItemFailures": []
        }
    assert len(all_snapshots(kontex)) == 5


class Transactions:
    """Counts the store's transactions, and the snapshots sealed."""

    def __init__(self, store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.sealed = 0
        open_tx = store._tx
        seal_all = snapshots.seal_all

        def counted_tx(write: bool = True, durable: bool = True, autocommit: bool = False) -> Any:
            self.count += 1
            return open_tx(write=write, durable=durable, autocommit=autocommit)

        def counted_seal_all(*args: Any, **kwargs: Any) -> Any:
            made = seal_all(*args, **kwargs)
            self.sealed += len(made)
            return made

        monkeypatch.setattr(store, "_tx", counted_tx)
        monkeypatch.setattr(snapshots, "seal_all", counted_seal_all)

    def reset(self) -> None:
        self.count = self.sealed = 0


def agents(session: str, traces: int) -> Any:
    def build(tracer: Any) -> None:
        for _ in range(traces):
            fixtures.openllmetry_agent(tracer, session=session)

    return build


def test_a_batch_takes_a_bounded_number_of_transactions(
    kontex: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 23, span worker in bulk: a queue batch's tasks, snapshots and done marks are one
    unit of work, so its transactions do not grow with its spans or snapshots (each snapshot
    was two before: its rows and event, then the event marked published)."""
    proto = {"content-type": "application/x-protobuf"}
    counted = Transactions(kontex.deps.store, monkeypatch)
    totals = []
    for records, traces in [(1, 1), (8, 5)]:
        # Given a queue batch of `records` ingest requests of `traces` agent traces (4 spans)
        kontex.queue.sent.clear()
        for _ in range(records):
            post(kontex, fixtures.protobuf(fixtures.record(agents(f"s{records}", traces))), proto)
        counted.reset()
        # When the worker handles the batch
        assert deliver(kontex) == [{"batchItemFailures": []}]
        # Then it sealed every snapshot in as many transactions as for one trace
        assert counted.sealed == 3 * records * traces
        totals.append(counted.count)
    # traces with their links (read); names (read); the session with its alias (one unit:
    # services/sessions.py, create_aliased_session), its event marked published; the new spans
    # + tasks + snapshots + done marks; their events marked published
    assert totals[0] == totals[1] == 6
    with kontex.deps.store.unit(write=False) as uow:
        usage = uow.queries.usage(kontex.account_id, kontex.deps.clock())
    assert usage["total_snapshots"] == 3 * (1 + 8 * 5)
    # And a redelivered batch writes nothing: every span is done
    counted.reset()
    deliver(kontex)
    assert counted.sealed == 0 and counted.count == 1  # traces with links: nothing new


def test_tokens_are_counted_and_spans_encoded_before_the_write_transaction(
    kontex: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 23, less CPU a span: the batch's token counting (a fifth of the worker's time)
    and the JSON of its new spans are done before its write unit, which holds SQLite's writer
    lock (every process's) and the task rows, so concurrent consumers wait for the database's
    work only."""
    store = kontex.deps.store
    open_writes: list[bool] = []
    counted_in: list[bool] = []  # per count: was a write unit open?
    unit, count_content, count_text = store.unit, tokens.count_content, tokens.count_text

    @contextmanager
    def watched(write: bool = True, **kwargs: Any) -> Iterator[Any]:
        with unit(write=write, **kwargs) as uow:
            open_writes.append(write)
            try:
                yield uow
            finally:
                open_writes.pop()

    def counting(count: Any) -> Any:
        def counted(content: Any) -> int:
            counted_in.append(any(open_writes))
            return int(count(content))

        return counted

    monkeypatch.setattr(store, "unit", watched)
    monkeypatch.setattr(tokens, "count_content", counting(count_content))
    monkeypatch.setattr(tokens, "count_text", counting(count_text))
    encoded_in: list[bool] = []  # per span body: was a write unit open?

    def encoding(span: Any) -> str:
        encoded_in.append(any(open_writes))
        return span_body(span)

    monkeypatch.setattr(spans, "span_body", encoding)
    monkeypatch.setattr(sql_spans, "span_body", encoding)
    bundles.forget()  # as a new process: nothing counted yet
    # Given a queue batch of agent traces
    body = fixtures.protobuf(fixtures.record(agents("counted", 3)))
    post(kontex, body, {"content-type": "application/x-protobuf"})
    # When the worker handles it
    assert deliver(kontex) == [{"batchItemFailures": []}]
    # Then it counted their messages, and encoded no span inside a write transaction (none
    # at all: their bodies are the message's text, see the test below)
    assert counted_in and not any(counted_in)
    assert not any(encoded_in)
    assert len(all_snapshots(kontex)) == 9


def test_span_bodies_are_stored_as_the_message_gave_them(
    kontex: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spans on PostgreSQL, less CPU a span: the worker stores each new span's JSON text as
    ingest wrote it into the queue message (``otlp.span.read_message``) rather than encoding
    the span again, and reads back what it read from the message."""
    encoded: list[Any] = []

    def encoding(span: Any) -> str:
        encoded.append(span)
        return span_body(span)

    monkeypatch.setattr(spans, "span_body", encoding)
    monkeypatch.setattr(sql_spans, "span_body", encoding)
    # Given a request of agent traces, sent with a session name in the header
    body = fixtures.protobuf(fixtures.record(agents("texts", 2)))
    post(kontex, body, {"content-type": "application/x-protobuf", "x-kontex-session-id": "run-7"})
    [(_, message)] = kontex.queue.sent
    sent = json.loads(message)
    # When the worker handles it
    assert deliver(kontex) == [{"batchItemFailures": []}]
    # Then no span was encoded, and each reads back as the message gave it
    assert encoded == []
    keys = list(dict.fromkeys((kontex.account_id, s["trace_id"]) for s in sent["spans"]))
    with kontex.deps.store.unit(write=False) as uow:
        stored = {s["span_id"]: s for rows in uow.spans.of_traces(keys).values() for s in rows}
    assert len(stored) == len(sent["spans"]) == 8
    for span in sent["spans"]:
        back = stored[span["span_id"]]
        assert isinstance(back.pop("received_at"), float)
        assert back == {
            **span,
            "kind": mapping.kind_of(span),
            "header_session_id": None,
            "header_session_name": "run-7",
            "done": True,
        }


def test_tasks_made_from_spans_are_announced_once(kontex: Any, events: Any) -> None:
    kontex.deps.events = events
    post(
        kontex,
        fixtures.protobuf(fixtures.record(fixtures.openllmetry_agent)),
        {"content-type": "application/x-protobuf"},
    )
    deliver(kontex, times=2)  # a redelivered batch makes nothing and announces nothing
    tasks = [p for p in events.published if p[0] == "task.updated"]
    listed = sessions.list_sessions(kontex.deps, kontex.account_id).items
    with kontex.deps.store.unit(write=False) as uow:
        made = {t.id for s in listed for t in uow.tasks.of_session(kontex.account_id, s.id)}
    assert sorted(p[3]["id"] for p in tasks) == sorted(made) and made
    assert events.types().count("snapshot.created") == 3


def test_a_trace_split_over_records_is_processed_once(kontex: Any) -> None:
    recorded = fixtures.record(fixtures.openllmetry_agent)
    for span in recorded:  # the exporter sent each span in its own request
        post(kontex, fixtures.protobuf([span]), {"content-type": "application/x-protobuf"})
    assert len(kontex.queue.sent) == 4
    deliver(kontex)
    snaps = all_snapshots(kontex)
    assert [s.label for s in snaps] == ["anthropic.chat", "tool: get_cart", "anthropic.chat"]
    assert snaps[2].parent_snapshot_id == snaps[1].id


def test_a_failing_record_fails_alone_after_the_batch_failed(kontex: Any) -> None:
    post(
        kontex,
        fixtures.protobuf(fixtures.record(fixtures.openllmetry_agent)),
        {"content-type": "application/x-protobuf"},
    )
    good = json.loads(kontex.queue.sent[0][1])
    orphan = {**good, "account_id": "acct_nobody"}  # its spans cannot be stored
    records = [
        sqs_record("spans", "good", json.dumps(good), 1),
        sqs_record("spans", "orphan", json.dumps(orphan), 1),
    ]
    result = worker({"Records": records}, LocalContext(function_name="w"))
    assert result == {"batchItemFailures": [{"itemIdentifier": "orphan"}]}
    assert len(all_snapshots(kontex)) == 3


def test_in_process_queue_hands_over_batches(kontex: Any) -> None:
    local = LocalQueue()
    seen: list[int] = []

    def recording(event: dict[str, Any], context: Any) -> Any:
        seen.append(len(event["Records"]))
        return worker(event, context)

    local.register("spans", recording)
    kontex.queue = local
    for session in ("a", "b", "c", "d"):  # queued before the worker runs, as under load
        post(
            kontex,
            fixtures.protobuf(fixtures.record(agents(session, 2))),
            {"content-type": "application/x-protobuf"},
        )
    local.start()
    try:
        assert local.drain(timeout=30)
    finally:
        local.stop()
    assert seen == [4]
    assert len(all_snapshots(kontex)) == 4 * 2 * 3


def test_a_batch_writes_what_span_by_span_delivery_writes(kontex: Any) -> None:
    # Given one agent trace, sent by two accounts: one whole, one a span per request
    recorded = fixtures.record(fixtures.openllmetry_agent)
    proto = {"content-type": "application/x-protobuf"}
    post(kontex, fixtures.protobuf(recorded), proto)
    other, other_key = keys.create_key(kontex.deps, "other")
    mine = kontex.test_key
    kontex.test_key = other_key
    for span in recorded:
        post(kontex, fixtures.protobuf([span]), proto)
    kontex.test_key = mine
    whole, *single = kontex.queue.sent
    # When the first is one batch and the second one batch per span
    deliver_bodies = [[whole[1]]] + [[body] for _, body in single]
    for bodies in deliver_bodies:
        records = [sqs_record("spans", f"m{i}", b, 1) for i, b in enumerate(bodies)]
        assert worker({"Records": records}, LocalContext(function_name="w")) == {
            "batchItemFailures": []
        }
    # Then both wrote the same bundles (the tool snapshot from memory, or read back)
    written = []
    for account_id in (kontex.account_id, other.account_id):
        (session,) = sessions.list_sessions(kontex.deps, account_id).items
        snaps = snapshots.list_snapshots(kontex.deps, account_id, session.id).items
        written.append([(s.label, s.bundle_hash, s.token_total) for s in snaps])
    assert written[0] == written[1] and len(written[0]) == 3


def test_one_session_hint_rule_for_the_header_and_span_attributes(kontex: Any) -> None:
    proto = {"content-type": "application/x-protobuf"}
    # A name in the header is accepted, as the proxy accepts it: found, or made on first use
    body = fixtures.protobuf(fixtures.record(fixtures.legacy_call))
    assert post(kontex, body, {**proto, "x-kontex-session-id": "nightly run"})[0] == 200
    assert post(kontex, body, {**proto, "x-kontex-session-id": "nightly run"})[0] == 200
    deliver(kontex)
    named = [
        s
        for s in sessions.list_sessions(kontex.deps, kontex.account_id, limit=100).items
        if s.name == "nightly run"
    ]
    assert len(named) == 1
    assert {s.session_id for s in all_snapshots(kontex)} == {named[0].id}

    # Another account's session id in a span's attributes is refused, as in the header: the
    # span is rejected (not found), and no session named after the id is made
    other, _ = keys.create_key(kontex.deps, "other")
    foreign = sessions.create_session(kontex.deps, other.account_id, "theirs")
    kontex.queue.sent.clear()

    def hinted(session: str) -> Any:
        def build(tracer: Any) -> None:
            span = tracer.start_span(
                "openai.completion",
                attributes={
                    "llm.request.type": "completion",
                    "llm.prompts.0.role": "user",
                    "llm.prompts.0.content": "hi",
                    "llm.completions.0.role": "assistant",
                    "llm.completions.0.content": "ok",
                    "session.id": session,
                },
            )
            span.end()

        return build

    status, _, raw = post(kontex, fixtures.protobuf(fixtures.record(hinted(foreign.id))), proto)
    assert status == 200
    answer = ExportTraceServiceResponse.FromString(raw).partial_success
    assert answer.rejected_spans == 1 and f"session {foreign.id} not found" in answer.error_message
    deliver(kontex)
    names = {s.name for s in sessions.list_sessions(kontex.deps, kontex.account_id).items}
    assert foreign.id not in names
    # the caller's own id in the attributes is used as it is
    status, _, raw = post(kontex, fixtures.protobuf(fixtures.record(hinted(named[0].id))), proto)
    assert ExportTraceServiceResponse.FromString(raw).partial_success.rejected_spans == 0
    deliver(kontex)
    assert {s.session_id for s in all_snapshots(kontex)} == {named[0].id}


def test_a_span_processed_in_its_batch_is_written_once(
    kontex: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 23: the batch's new spans are stored in the unit that makes their snapshots,
    already done (their rows were written pending, then rewritten done: a span body written
    twice); only a span stored pending by an earlier batch is marked done."""
    from kontex.adapters.sql.spans import SqlSpans

    marked: list[Any] = []
    mark_done = SqlSpans.mark_done

    def recording(self: Any, spans: Any) -> None:
        marked.extend(spans)
        mark_done(self, spans)

    monkeypatch.setattr(SqlSpans, "mark_done", recording)
    post(kontex, fixtures.protobuf(fixtures.record(agents("once", 2))), PROTOBUF)
    assert deliver(kontex) == [{"batchItemFailures": []}]
    assert len(all_snapshots(kontex)) == 6
    assert marked == []  # every span went in done
    with kontex.deps.store.unit(write=False) as uow:
        stored = [s for rows in uow.spans.of_traces(traces(kontex)).values() for s in rows]
    assert len(stored) == 8 and all(s["done"] for s in stored)


PROTOBUF = {"content-type": "application/x-protobuf"}


def traces(kontex: Any) -> list[tuple[str, str]]:
    sent = [json.loads(body) for _, body in kontex.queue.sent]
    return list(dict.fromkeys((m["account_id"], s["trace_id"]) for m in sent for s in m["spans"]))


def test_spans_of_a_batch_that_fails_are_kept_pending(
    kontex: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a batch whose snapshots cannot be sealed (the database refuses, say)
    post(kontex, fixtures.protobuf(fixtures.record(agents("kept", 1))), PROTOBUF)
    seal_all = snapshots.seal_all

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database refused")

    monkeypatch.setattr(snapshots, "seal_all", failing)
    # When the worker handles it, the batch and its one record fail (Powertools raises when
    # every record failed)
    with pytest.raises(BatchProcessingError):
        deliver(kontex)
    # Then its spans are stored, pending, none lost
    with kontex.deps.store.unit(write=False) as uow:
        stored = [s for rows in uow.spans.of_traces(traces(kontex)).values() for s in rows]
    assert len(stored) == 4 and not any(s["done"] for s in stored)
    assert all_snapshots(kontex) == []
    # and once the database takes writes again, the redelivery makes their snapshots
    monkeypatch.setattr(snapshots, "seal_all", seal_all)
    assert deliver(kontex) == [{"batchItemFailures": []}]
    assert len(all_snapshots(kontex)) == 3
