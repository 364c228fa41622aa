"""The in-process queue hands SQS-shaped batches to a real Powertools batch worker; SQS in moto."""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from kontex.adapters.local_queue import LocalQueue
from kontex.adapters.sqs_queue import SqsQueue
from kontex.domain.errors import PayloadTooLarge


class Worker:
    """A worker written the way the real ones are: BatchProcessor, partial failures."""

    def __init__(self) -> None:
        self.stored: dict[str, int] = {}
        self.events: list[dict[str, Any]] = []
        self.processor = BatchProcessor(event_type=EventType.SQS)

    def record_handler(self, record: SQSRecord) -> None:
        body = json.loads(record.body)
        if body.get("poison"):
            raise ValueError("cannot process this one")
        self.stored[body["id"]] = self.stored.get(body["id"], 0) + 1

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        return process_partial_response(event, self.record_handler, self.processor, context)


def test_batches_partial_failures_and_dead_letters() -> None:
    worker = Worker()
    q = LocalQueue(batch_size=10, max_receive_count=3)
    q.register("spans", worker)
    q.start()
    try:
        bodies = [json.dumps({"id": f"m{i}"}) for i in range(25)]
        bodies.insert(5, json.dumps({"poison": True}))
        q.send("spans", bodies)
        assert q.drain(timeout=20)
    finally:
        q.stop()
    assert worker.stored == {f"m{i}": 1 for i in range(25)}  # the rest of the batch succeeded
    assert q.dead_letters["spans"] == [json.dumps({"poison": True})]
    shapes = [record for event in worker.events for record in event["Records"]]
    assert all(
        r["eventSource"] == "aws:sqs" and r["eventSourceARN"].endswith(":spans") for r in shapes
    )
    assert max(len(e["Records"]) for e in worker.events) <= 10
    receives = [
        int(r["attributes"]["ApproximateReceiveCount"]) for r in shapes if "poison" in r["body"]
    ]
    assert receives == [1, 2, 3]


def test_batches_are_handled_concurrently_up_to_the_limit() -> None:
    # Given a queue allowing two batches at once, and a worker that waits for a second one
    both = threading.Barrier(2, timeout=10)
    sizes: list[int] = []

    def worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
        sizes.append(len(event["Records"]))
        both.wait()  # raises BrokenBarrierError unless another batch is in flight
        return {"batchItemFailures": []}

    q = LocalQueue(batch_size=1, concurrency=2)
    q.register("spans", worker)
    q.send("spans", ["a", "b"])
    # When it runs
    q.start()
    try:
        assert q.drain(timeout=20)
    finally:
        q.stop()
    # Then both batches were in the worker at the same time, each handled once
    assert sizes == [1, 1] and not q.dead_letters["spans"]


def test_sending_to_a_queue_without_a_worker_is_an_error() -> None:
    with pytest.raises(LookupError):
        LocalQueue().send("nobody", ["x"])


@pytest.fixture
def aws(mocked_aws: None) -> Any:
    return boto3.client("sqs")


def test_sqs_queue_sends_in_batches(aws: Any) -> None:
    url = aws.create_queue(QueueName="kontex-spans")["QueueUrl"]
    queue = SqsQueue({"spans": url}, client=aws)
    queue.send("spans", [json.dumps({"n": i}) for i in range(23)])
    received: list[int] = []
    for _ in range(10):
        messages = aws.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        received += [json.loads(m["Body"])["n"] for m in messages]
        if len(received) == 23:
            break
    assert sorted(received) == list(range(23))


def test_sqs_queue_refuses_oversized_messages(aws: Any) -> None:
    url = aws.create_queue(QueueName="kontex-spans")["QueueUrl"]
    with pytest.raises(PayloadTooLarge):
        SqsQueue({"spans": url}, client=aws).send("spans", ["x" * (256 * 1024 + 1)])
    assert "Messages" not in aws.receive_message(QueueUrl=url)


def test_snapshot_events_reach_the_events_queue(aws: Any, tmp_path: Any) -> None:
    from kontex.bootstrap import Container
    from kontex.domain.models import ContextBundle
    from kontex.services import keys, sessions, snapshots
    from kontex.settings import Settings

    url = aws.create_queue(QueueName="kontex-events")["QueueUrl"]
    config = Settings.from_env(
        {"KONTEX_EVENTS_QUEUE_URL": url, "KONTEX_API_KEY_SECRET": "s"}, kontex_data_dir=tmp_path
    )
    container = Container(config)
    container.store.migrate()
    deps = container.deps
    key, _ = keys.create_key(deps, "events")
    session = sessions.create_session(deps, key.account_id, "s")
    task = sessions.create_task(deps, key.account_id, session.id, "t")
    snap = snapshots.create_snapshot(
        deps,
        key.account_id,
        task.id,
        "x",
        ContextBundle(messages=[{"role": "user", "content": "hi"}]),
    )
    bodies = [
        json.loads(m["Body"])
        for m in aws.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    ]
    assert bodies[0]["id"].startswith("evt_")  # consumers are idempotent by event id
    assert bodies == [
        {
            "id": bodies[0]["id"],
            "type": "snapshot.created",
            "account_id": key.account_id,
            "session_id": session.id,
            "data": bodies[0]["data"],
        }
    ]
    assert bodies[0]["data"]["id"] == snap.id and "bundle_hash" not in bodies[0]["data"]


def test_a_failed_publish_raises_so_the_outbox_keeps_the_event() -> None:
    """The write is already committed with its outbox row (tests/services/test_outbox.py);
    the adapter must say the event did not go out, so the sweeper sends it later."""
    from kontex.adapters.queue_events import QueueEvents

    class Down:
        def send(self, queue: str, bodies: list[str]) -> None:
            raise ConnectionError("queue down")

    with pytest.raises(ConnectionError):
        QueueEvents(Down()).publish("snapshot.created", "a", "s", {"id": "snap_1"}, "evt_1")
