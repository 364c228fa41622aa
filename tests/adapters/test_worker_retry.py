"""Retry by kind of failure (issue 22, defect 5), with the real workers of every queue on
SQLite and PostgreSQL: a database outage longer than the old three receives is ridden out
(processed, nothing dead-lettered), and a record wrong in itself is dead-lettered after one
receive with its reason, locally (the durable local queue) and on AWS (SQS in moto: the worker
sends it to the DLQ itself and backs a transient failure off with ChangeMessageVisibility).

The local queue runs with short delays (1 s, 2 s, ... becomes 10 ms, 20 ms, ... at most 80 ms)
and its default receive budget; an outage of 0.5 s then stands for the minute-long one the
default delays (``QUEUE_RETRY``: about ten minutes) ride out.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from kontex import bootstrap
from kontex.adapters.local_blobs import LocalBlobs
from kontex.adapters.local_queue import LocalQueue, sqs_record
from kontex.adapters.qdrant_index import QdrantIndex
from kontex.adapters.sqs_batch import RetryingBatchProcessor, SqsRedrive
from kontex.domain.errors import (
    Conflict,
    IntegrityError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Transient,
)
from kontex.domain.models import ContextBundle
from kontex.domain.retry import QUEUE_RETRY, Failure, RetryPolicy, permanent
from kontex.functions import worker_paths
from kontex.http.apigw import LocalContext, http_api_event, response_parts
from kontex.local.server import load_handler, load_worker, start_workers
from kontex.services import capture, keys, live, sessions, snapshots
from kontex.settings import Settings
from tests.otlp import spans as fixtures
from tests.services.test_live import FakeConnections

OUTAGE_SECONDS = 0.5


class FakeEmbedder:
    """The embed worker's embedder, without loading a model."""

    name, dimensions, max_chars = "fake", 2, 1000

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [[float(len(t)), 1.0] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return [float(len(text)), 1.0]


class Outage:
    """The store, unavailable for a while from the first time it is used after ``start``: its
    ``unit`` then raises what the database's own adapter raises when the server is unreachable
    (PostgreSQL: ``Transient("the database is unavailable")``; SQLite: ``database is
    locked``)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._seconds = 0.0
        self._until: float | None = None
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def start(self, seconds: float = OUTAGE_SECONDS) -> None:
        with self._lock:
            self._seconds, self._until = seconds, None

    def stop(self) -> None:
        self.start(0)

    def unit(
        self, write: bool = True, durable: bool = True, autocommit: bool = False
    ) -> AbstractContextManager[Any]:
        with self._lock:
            now = time.monotonic()
            if self._until is None and self._seconds > 0:
                self._until = now + self._seconds
            down = self._until is not None and now < self._until
            self.refused += down
        if down:
            raise self.error()
        return self._store.unit(write, durable, autocommit)

    def error(self) -> Exception:
        if self._store.dialect == "postgres":
            import psycopg

            from kontex.adapters.postgres_store import _translate

            return _translate(psycopg.OperationalError("connection refused"))
        from kontex.adapters.sqlite_store import _translate as _translate_sqlite

        return _translate_sqlite(sqlite3.OperationalError("database is locked"))


@pytest.fixture
def kontex(store: Any, tmp_path: Any) -> Iterator[Any]:
    """A container on the store behind ``Outage``, with a local queue of short delays whose
    workers are the real ones (``start_workers`` registers each with its processor)."""
    config = Settings.from_env({"KONTEX_API_KEY_SECRET": "s"}, kontex_data_dir=tmp_path)
    made = bootstrap.Container(
        config,
        store=Outage(store),
        blobs=LocalBlobs(tmp_path / "blobs"),
        connections=FakeConnections(),
    )
    made.queue = LocalQueue(backoff_seconds=0.01, max_backoff_seconds=0.08)
    made.embedder = FakeEmbedder()
    made.index = QdrantIndex("test", FakeEmbedder.dimensions, path=":memory:")  # type: ignore[arg-type]
    made.events = made.local_topic(made.queue)
    bootstrap.configure(made)
    key, made.key = keys.create_key(made.deps, "retry")
    made.account_id = key.account_id
    made.session = sessions.create_session(made.deps, key.account_id, "s")
    try:
        yield made
    finally:
        made.queue.close()
        made.index.close()
        bootstrap.configure(None)


def run_through_an_outage(kontex: Any) -> None:
    """Start the workers while the database is down; the queue must outlive the outage."""
    kontex.store.start()
    start_workers(None, local_queue=kontex.queue)
    assert kontex.queue.drain(timeout=30)
    assert kontex.store.refused > QUEUE_RETRY.max_receives // 4  # far more than three tries


def capture_job(kontex: Any, messages: Any, n: int = 0) -> str:
    return capture.CaptureJob(
        id=f"call_{n}",
        account_id=kontex.account_id,
        session_id=kontex.session.id,
        task_id=None,
        trigger="always",
        n=1,
        request={"model": "claude-sonnet-4-5", "messages": messages},
        reply={"role": "assistant", "content": [{"type": "text", "text": "hi"}]},
    ).to_json()


def session_snapshots(kontex: Any) -> list[Any]:
    return snapshots.list_snapshots(kontex.deps, kontex.account_id, kontex.session.id).items


# --- a transient outage, on every queue: processed, nothing dead-lettered ----------------------


def test_a_capture_outlives_a_database_outage(kontex: Any) -> None:
    kontex.queue.send("capture", [capture_job(kontex, [{"role": "user", "content": "hello"}])])
    run_through_an_outage(kontex)
    assert kontex.queue.dead_letters() == []
    assert [s.source for s in session_snapshots(kontex)] == ["proxy"]


def test_spans_outlive_a_database_outage(kontex: Any) -> None:
    body = fixtures.protobuf(fixtures.record(fixtures.openllmetry_agent))
    headers = [("x-kontex-api-key", kontex.key), ("content-type", "application/x-protobuf")]
    event = http_api_event("POST", "/ingest/v1/traces", headers, body)
    status, _, _ = response_parts(load_handler("ingest")(event, LocalContext("kontex-ingest")))
    assert status == 200 and kontex.queue.pending("spans") == 1
    run_through_an_outage(kontex)
    assert kontex.queue.dead_letters() == []
    found = sessions.list_sessions(kontex.deps, kontex.account_id).items
    checkout = next(s for s in found if s.name == "checkout-bot")
    made = snapshots.list_snapshots(kontex.deps, kontex.account_id, checkout.id).items
    assert [s.label for s in made] == ["anthropic.chat", "tool: get_cart", "anthropic.chat"]


def test_a_live_feed_event_outlives_a_database_outage(kontex: Any) -> None:
    conns = kontex.connections
    live.connect(kontex.deps, "c1")
    live.receive(kontex.deps, conns, "c1", json.dumps({"authorization": kontex.key}))
    subscribe = {"id": "1", "action": "subscribe", "data": {"session_id": kontex.session.id}}
    live.receive(kontex.deps, conns, "c1", json.dumps(subscribe))
    event = {
        "id": "evt_outage",
        "type": "snapshot.created",
        "account_id": kontex.account_id,
        "session_id": kontex.session.id,
        "data": {"snapshot_id": "snap_1"},
    }
    # only the event under test: what the setup published is not what is measured here
    kontex.queue._conn.execute("DELETE FROM messages")
    kontex.queue.send("feed", [json.dumps(event)])
    run_through_an_outage(kontex)
    assert kontex.queue.dead_letters() == []  # issue 22: one sat in the feed's dead letters
    assert [e["id"] for e in conns.events("c1")] == ["evt_outage"]


def test_an_embedding_outlives_a_database_outage(kontex: Any) -> None:
    task = sessions.create_task(kontex.deps, kontex.account_id, kontex.session.id, "t")
    bundle = ContextBundle.model_validate(
        {"messages": [{"role": "user", "content": "MongoError E11000 duplicate key on email"}]}
    )
    snap = snapshots.create_snapshot(kontex.deps, kontex.account_id, task.id, "insert", bundle)
    kontex.queue._conn.execute("DELETE FROM messages")  # the setup's own events
    event = {
        "id": "evt_embed",
        "type": "snapshot.created",
        "account_id": kontex.account_id,
        "session_id": kontex.session.id,
        "data": {"snapshot_id": snap.id},
    }
    kontex.queue.send("embed", [json.dumps(event)])
    run_through_an_outage(kontex)
    assert kontex.queue.dead_letters() == []
    assert kontex.index.count(kontex.account_id) == 2  # the label and the message


# --- a permanent failure: dead-lettered after one receive, with its reason --------------------


def test_a_capture_whose_messages_is_a_string_is_dead_lettered_at_once(kontex: Any) -> None:
    good = capture_job(kontex, [{"role": "user", "content": "hello"}], 1)
    kontex.queue.send("capture", [capture_job(kontex, "hello", 0), good])
    start_workers(None, local_queue=kontex.queue)
    assert kontex.queue.drain(timeout=30)
    [dead] = kontex.queue.dead_letters()
    assert dead.queue == "capture" and json.loads(dead.body)["id"] == "call_0"
    assert dead.receives == 1  # issue 22: three receives before
    assert dead.reason.startswith("ValidationError: 1 validation error for Message")
    assert len(session_snapshots(kontex)) == 1  # its neighbour was written


def test_records_wrong_in_themselves_are_dead_lettered_at_once_on_every_queue(
    kontex: Any,
) -> None:
    kontex.queue._conn.execute("DELETE FROM messages")  # the setup's events
    kontex.queue.send("spans", ['{"account_id": "acct_x", "spans": "nope"}'])
    kontex.queue.send("feed", ["not json"])
    kontex.queue.send("embed", ["not json"])
    start_workers(None, local_queue=kontex.queue)
    assert kontex.queue.drain(timeout=30)
    dead = {d.queue: d for d in kontex.queue.dead_letters()}
    assert set(dead) == {"spans", "feed", "embed"}
    assert all(d.receives == 1 for d in dead.values())
    assert dead["feed"].reason.startswith("JSONDecodeError") or dead["feed"].reason.startswith(
        "ValidationError"
    )


# --- on AWS: the worker sends to its DLQ itself and sets the backoff ------------------------


@pytest.fixture
def sqs(mocked_aws: None) -> Any:
    client = boto3.client("sqs")
    dlq = client.create_queue(QueueName="kontex-captures-dlq")["QueueUrl"]
    queue = client.create_queue(
        QueueName="kontex-captures", Attributes={"VisibilityTimeout": "360"}
    )["QueueUrl"]
    return client, queue, dlq


def received(client: Any, url: str, wait: int = 0) -> list[dict[str, Any]]:
    messages = client.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
        WaitTimeSeconds=wait,
    ).get("Messages", [])
    return list(messages)


def lambda_record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    """An SQS message as the event source mapping hands it to Lambda."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message["Attributes"],
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": "eu-west-1",
    }


def test_on_aws_a_permanent_failure_goes_to_the_dlq_and_a_transient_one_backs_off(
    kontex: Any, sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, queue, dlq = sqs
    arn = client.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    arn = arn["Attributes"]["QueueArn"]
    kontex.redrive = SqsRedrive(dlq, client=client)  # KONTEX_DEAD_LETTER_QUEUE_URL
    good = capture_job(kontex, [{"role": "user", "content": "hello"}], 1)
    client.send_message(QueueUrl=queue, MessageBody=capture_job(kontex, "hello", 0))
    client.send_message(QueueUrl=queue, MessageBody=good)
    messages = received(client, queue)
    assert len(messages) == 2
    bad = next(m for m in messages if json.loads(m["Body"])["id"] == "call_0")
    ok = next(m for m in messages if m is not bad)
    worker = load_worker(worker_paths()["capture"])

    # the bad one is reported processed (SQS deletes it) and is in the DLQ with its reason
    answer = worker.lambda_handler(
        {"Records": [lambda_record(bad, arn)]}, LocalContext("kontex-capture")
    )
    assert answer == {"batchItemFailures": []}
    [dead] = received(client, dlq)
    assert dead["Body"] == bad["Body"]
    reason = dead["MessageAttributes"]["reason"]["StringValue"]
    assert reason.startswith("ValidationError: 1 validation error for Message")
    assert dead["MessageAttributes"]["source_queue"]["StringValue"] == arn
    assert dead["MessageAttributes"]["receives"]["StringValue"] == "1"

    # the good one, with the database down: failed (the whole batch: Powertools raises, the
    # function errs), and back after the first backoff (1 s), not the 360 s visibility timeout
    kontex.store.start(3600)
    with pytest.raises(BatchProcessingError, match="All records failed"):
        worker.lambda_handler({"Records": [lambda_record(ok, arn)]}, LocalContext("kontex-capture"))
    kontex.store.stop()
    assert received(client, dlq) == []
    [again] = received(client, queue, wait=3)
    assert again["MessageId"] == ok["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    answer = worker.lambda_handler(
        {"Records": [lambda_record(again, arn)]}, LocalContext("kontex-capture")
    )
    assert answer == {"batchItemFailures": []}
    assert len(session_snapshots(kontex)) == 1


def test_on_aws_a_record_that_could_not_be_dead_lettered_is_retried() -> None:
    class Unreachable:
        def dead_letter(self, record: Any, failure: Failure) -> None:
            raise ConnectionError("the DLQ is unreachable")

        def back_off(self, record: Any, seconds: float) -> None:
            self.backed_off = seconds

    redrive = Unreachable()
    processor = RetryingBatchProcessor(lambda: redrive)

    def handler(record: Any) -> None:
        if record.body == "bad":
            raise ValueError("wrong in itself")

    from aws_lambda_powertools.utilities.batch import process_partial_response

    bad = sqs_record("capture", "m1", "bad", 1)
    good = sqs_record("capture", "m2", "{}", 1)
    answer = process_partial_response({"Records": [bad, good]}, handler, processor, None)
    # never dropped: it stays on the queue (SQS's redrive policy dead-letters it in the end)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert redrive.backed_off == QUEUE_RETRY.delay(1)


# --- the rule -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        InvalidInput("bad"),
        PayloadTooLarge("big"),
        IntegrityError("altered"),
        json.JSONDecodeError("x", "doc", 0),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"),
        TypeError("unexpected keyword"),
        KeyError("account_id"),
        AttributeError("'str' object has no attribute 'get'"),
        RecursionError("maximum recursion depth exceeded"),
    ],
)
def test_permanent_failures(error: Exception) -> None:
    assert permanent(error)


@pytest.mark.parametrize(
    "error",
    [
        Transient("the database is unavailable"),
        RateLimited("slow down", retry_after=5),
        ConnectionError("refused"),
        TimeoutError("timed out"),
        sqlite3.OperationalError("database is locked"),
        Conflict("lost a race"),
        NotFound("snapshot not found"),
        RuntimeError("anything we cannot tell"),
    ],
)
def test_transient_failures(error: Exception) -> None:
    assert not permanent(error)


def test_a_pydantic_validation_error_is_permanent() -> None:
    with pytest.raises(ValueError) as caught:
        ContextBundle.model_validate({"messages": "hello"})
    assert permanent(caught.value)


def test_the_default_budget_rides_out_a_minute_long_outage() -> None:
    assert [QUEUE_RETRY.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert 9 * 60 <= QUEUE_RETRY.budget() <= 11 * 60  # about ten minutes of retries
    queue = LocalQueue()
    assert queue.retry == QUEUE_RETRY  # the local queue's default is the same rule
    queue.close()
    assert RetryPolicy(3, 0.01, 0.08).budget() == pytest.approx(0.03)
