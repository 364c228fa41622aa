"""The durable local queue hands SQS-shaped batches to a real Powertools batch worker, survives
the process, backs off, dead-letters with a reason and replays; SQS in moto."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from kontex.adapters.local_queue import LocalQueue, batch_failure_reasons, sqs_record
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
        if body.get("poison"):  # wrong in itself: a permanent failure
            raise ValueError("cannot process this one")
        if body.get("down"):  # a dependency down for good: a transient failure every time
            raise ConnectionError("the database is unreachable")
        self.stored[body["id"]] = self.stored.get(body["id"], 0) + 1

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        return process_partial_response(event, self.record_handler, self.processor, context)


def test_batches_partial_failures_and_dead_letters() -> None:
    worker = Worker()
    q = LocalQueue(batch_size=10, max_receive_count=3, backoff_seconds=0.01)
    q.register("spans", worker, batch_failure_reasons(worker.processor))
    q.start()
    try:
        bodies = [json.dumps({"id": f"m{i}"}) for i in range(25)]
        bodies.insert(5, json.dumps({"poison": True}))
        bodies.insert(15, json.dumps({"down": True}))
        q.send("spans", bodies)
        assert q.drain(timeout=20)
    finally:
        q.stop()
    assert worker.stored == {f"m{i}": 1 for i in range(25)}  # the rest of the batch succeeded
    poison, down = q.dead_letters("spans")
    # the permanent failure after its first receive, the transient one after max_receive_count
    assert poison.body == json.dumps({"poison": True}) and poison.receives == 1
    assert poison.reason == "ValueError: cannot process this one"
    assert down.body == json.dumps({"down": True}) and down.receives == 3
    assert down.reason == "ConnectionError: the database is unreachable"
    shapes = [record for event in worker.events for record in event["Records"]]
    assert all(
        r["eventSource"] == "aws:sqs" and r["eventSourceARN"].endswith(":spans") for r in shapes
    )
    assert max(len(e["Records"]) for e in worker.events) <= 10
    assert max(len(e["Records"]) for e in worker.events) > 1  # batches, not single records
    receives = {
        key: [int(r["attributes"]["ApproximateReceiveCount"]) for r in shapes if key in r["body"]]
        for key in ("poison", "down")
    }
    assert receives == {"poison": [1], "down": [1, 2, 3]}


def test_retries_back_off() -> None:
    seen: list[float] = []

    def failing(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(time.monotonic())
        raise RuntimeError("database down")

    q = LocalQueue(max_receive_count=3, backoff_seconds=0.2)
    q.register("spans", failing)
    q.start()
    try:
        q.send("spans", ["x"])
        assert q.drain(timeout=10)
    finally:
        q.stop()
    assert len(seen) == 3
    assert seen[1] - seen[0] >= 0.2 and seen[2] - seen[1] >= 0.4  # 0.2 s, then 0.4 s
    assert q.dead_letters()[0].reason == "RuntimeError: database down"


def test_sent_messages_survive_the_process_and_resume_at_start(tmp_path: Path) -> None:
    path = tmp_path / "data" / "queue.db"
    first = LocalQueue(path)
    first.register("spans", Worker())
    first.send("spans", [json.dumps({"id": f"m{i}"}) for i in range(12)])
    # a batch taken by a worker that then died with the process: never acknowledged
    assert len(first._claim("spans")) == 10
    first._conn.close()  # no stop, no acknowledgement: as after kill -9

    worker = Worker()
    second = LocalQueue(path)
    second.register("spans", worker)
    second.start()
    try:
        assert second.drain(timeout=10)
    finally:
        second.close()
    assert worker.stored == {f"m{i}": 1 for i in range(12)}
    receives = {
        json.loads(r["body"])["id"]: r["attributes"]["ApproximateReceiveCount"]
        for e in worker.events
        for r in e["Records"]
    }
    assert receives["m0"] == "2" and receives["m11"] == "1"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def _wal_growth(path: Path, action: Any) -> int:
    """Bytes ``action`` adds to the queue file's write-ahead log (emptied first)."""
    wal = path.with_name(path.name + "-wal")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = wal.stat().st_size if wal.exists() else 0
    action()
    return (wal.stat().st_size if wal.exists() else 0) - before


def test_a_claim_does_not_write_the_message_bodies_again(tmp_path: Path) -> None:
    """Spans on PostgreSQL, less CPU a span: claiming a batch counts the receive and sets its
    times in place; the bodies (a span message is up to a few hundred KB) are not written
    again. The first receive's time is kept across receives."""
    path = tmp_path / "queue.db"
    queue = LocalQueue(path, visibility_timeout=0.0)
    queue.register("spans", Worker())
    body = json.dumps({"id": "big", "pad": "x" * 400_000})
    queue.send("spans", [body] * 3)
    claimed: list[Any] = []
    grew = _wal_growth(path, lambda: claimed.extend(queue._claim("spans")))
    assert len(claimed) == 3 and [m.receives for m in claimed] == [1, 1, 1]
    assert grew < 100_000  # a few pages, not the 1.2 MB of bodies
    first = claimed[0].first_received_at
    assert first <= time.time()
    time.sleep(0.01)
    [again, *_] = queue._claim("spans")  # visible again at once (no visibility timeout)
    assert again.receives == 2 and again.first_received_at == first
    record = sqs_record("spans", again.message_id, again.body, 2, again.sent_at, first)
    assert record["attributes"]["ApproximateFirstReceiveTimestamp"] == str(int(first * 1000))
    queue.close()


def test_a_delivered_batch_is_removed_without_writing_its_bodies_again(tmp_path: Path) -> None:
    """Spans on PostgreSQL, less CPU a span: removing delivered messages frees their pages
    rather than overwriting every page of their bodies with zeros first (SQLite's
    SECURE_DELETE builds)."""
    path = tmp_path / "queue.db"
    worker = Worker()
    queue = LocalQueue(path)
    queue.register("spans", worker)
    queue.send("spans", [json.dumps({"id": f"m{i}", "pad": "x" * 400_000}) for i in range(3)])
    batch = queue._claim("spans")
    grew = _wal_growth(path, lambda: queue.deliver("spans", batch))
    assert worker.stored == {"m0": 1, "m1": 1, "m2": 1} and queue.pending() == 0
    assert grew < 100_000  # a few pages, not the 1.2 MB of bodies
    queue.close()


KILLED_AFTER_SEND = """
import os, signal, sys
from kontex.adapters.local_queue import LocalQueue
queue = LocalQueue(sys.argv[1])
queue.send("capture", ["kept"], durable=False)
os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint: the process is gone
"""


def test_a_send_without_fsync_survives_a_killed_process(tmp_path: Path) -> None:
    """The proxy's captures are sent with ``durable=False``: committed to the WAL without an
    fsync (``synchronous=NORMAL``), so a process killed right after the send loses nothing."""
    path = tmp_path / "queue.db"
    queue = LocalQueue(path)
    commits: list[int] = []  # the connection's synchronous setting at each COMMIT
    queue._conn.set_trace_callback(
        lambda sql: (
            commits.append(queue._conn.execute("PRAGMA synchronous").fetchone()[0])
            if sql == "COMMIT"
            else None
        )
    )
    queue.send("capture", ["a"], durable=False)
    queue.send("spans", ["b"])
    assert commits == [1, 2]  # NORMAL (no fsync), then FULL
    queue.close()

    child = subprocess.run([sys.executable, "-c", KILLED_AFTER_SEND, str(path)], check=False)
    assert child.returncode == -signal.SIGKILL
    after = LocalQueue(path)
    try:
        bodies = [r[0] for r in after._conn.execute("SELECT body FROM messages ORDER BY seq")]
        assert bodies == ["a", "b", "kept"]
    finally:
        after.close()


def test_the_wake_address_is_worked_out_once_per_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each send pokes the consumer's process; the address (a hash of the file's resolved
    path) is worked out once per queue, not on every send."""
    from kontex.adapters import local_queue

    worked_out: list[str] = []
    real = local_queue.wake_address

    def counted(path: Path, queue: str) -> str | None:
        worked_out.append(queue)
        return real(path, queue)

    monkeypatch.setattr(local_queue, "wake_address", counted)
    queue = LocalQueue(tmp_path / "queue.db")
    try:
        for n in range(5):
            queue.send("capture", [f"c{n}"])
            queue.send("spans", [f"s{n}"])
    finally:
        queue.close()
    assert sorted(worked_out) == ["capture", "spans"]


def test_dead_letters_replay(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    worker = Worker()
    q = LocalQueue(path, max_receive_count=1)
    q.register("spans", worker, batch_failure_reasons(worker.processor))
    q.start()
    try:
        q.send("spans", [json.dumps({"poison": True, "id": "p"}), json.dumps({"id": "ok"})])
        assert q.drain(timeout=10)
        [dead] = q.dead_letters()
        assert worker.stored == {"ok": 1}
        worker.record_handler = lambda record: worker.stored.update(p=1)  # type: ignore[method-assign]
        assert q.replay([dead.id]) == [dead.id]
        assert q.drain(timeout=10)
        assert q.dead_letters() == []
    finally:
        q.close()
    assert worker.stored == {"ok": 1, "p": 1}


def test_dead_letters_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kontex.cli import main

    worker = Worker()
    q = LocalQueue(tmp_path / "queue.db", max_receive_count=1)
    q.register("spans", worker, batch_failure_reasons(worker.processor))
    q.start()
    q.send("spans", [json.dumps({"poison": True}), json.dumps({"poison": True, "n": 2})])
    assert q.drain(timeout=10)
    q.close()

    assert main(["dead-letters", "list", "--json", "--data-dir", str(tmp_path)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [d["reason"] for d in listed] == ["ValueError: cannot process this one"] * 2
    assert {d["queue"] for d in listed} == {"spans"} and all(d["receives"] == 1 for d in listed)
    assert main(["dead-letters", "list", "--data-dir", str(tmp_path)]) == 0
    assert "cannot process this one" in capsys.readouterr().out

    assert main(["dead-letters", "replay", "--data-dir", str(tmp_path)]) == 2
    assert main(["dead-letters", "replay", "nope", "--data-dir", str(tmp_path)]) == 2
    capsys.readouterr()
    first = listed[0]["id"]
    assert main(["dead-letters", "replay", first, "--json", "--data-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) == {"replayed": [first]}
    assert main(["dead-letters", "replay", "--all", "--data-dir", str(tmp_path)]) == 0
    assert "Replayed 1 message(s)" in capsys.readouterr().out

    again = LocalQueue(tmp_path / "queue.db")
    assert again.dead_letters() == [] and again.pending("spans") == 2
    again.close()


def test_sending_to_a_queue_without_a_worker_is_an_error() -> None:
    q = LocalQueue()
    q.register("spans", Worker())
    with pytest.raises(LookupError):
        q.send("nobody", ["x"])


def test_two_processes_consume_their_own_queues_of_one_file(tmp_path: Path) -> None:
    """`kontex dev`: the pipeline process consumes spans, the search process embed (local/),
    the API's processes only send. Each start resumes only its own queues' messages, and a send
    from a third party wakes the consumer of each queue it sends to (its poll here is a minute
    long: the message arrives by the poke, not by the poll)."""
    path = tmp_path / "queue.db"
    server, search = Worker(), Worker()
    main = LocalQueue(path, poll_seconds=60)
    main.register("spans", server)
    main.expect("embed")
    main.send("embed", [json.dumps({"id": "e0"})])  # no worker here, and no error
    main.start()
    try:
        assert main.drain(timeout=0.2) is False  # not its queue: left for the other process
        taken = main._claim("embed")  # as if the search process held it, in flight
        assert [m.message_id for m in taken]
        other = LocalQueue(path, poll_seconds=60)
        other.register("embed", search)
        other.expect("spans")
        other.start()  # resumes the embed queue's message; a spans message in flight would stay
        try:
            assert other.drain(timeout=20)
            sender = LocalQueue(path)  # an API process: no workers
            sender.send_each(
                [("spans", json.dumps({"id": "s1"})), ("embed", json.dumps({"id": "e1"}))]
            )
            assert other.drain(timeout=20)  # each consumer woken by its own poke
            sender.close()
        finally:
            other.close()
    finally:
        main.close()
    assert server.stored == {"s1": 1}
    assert search.stored == {"e0": 1, "e1": 1}


def test_a_start_leaves_other_queues_in_flight_messages_alone(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    first = LocalQueue(path)
    first.register("spans", Worker())
    first.expect("embed")
    first.send_each([("spans", json.dumps({"id": "s"})), ("embed", json.dumps({"id": "e"}))])
    assert len(first._claim("spans")) == 1  # in flight in the server's worker
    second = LocalQueue(path)
    second.register("embed", Worker())
    second.start()
    try:
        deadline = time.monotonic() + 20
        while second.pending("embed") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert second.pending("embed") == 0
        # the span the server holds is not handed out again by the search process's start
        assert first._claim("spans") == []
    finally:
        second.close()
        first.close()


def test_a_second_consumer_of_a_queue_starts_without_resuming_it(tmp_path: Path) -> None:
    """`kontex dev`'s span queue has several consumers (local/pipeline_process.py): the server
    resumes it once, before any of them claims, and each starts with ``resume=False``, so a
    batch one of them holds is not handed out again by another's start."""
    path = tmp_path / "queue.db"
    server = LocalQueue(path)  # sends, and resumes what an earlier run left
    server.expect("spans")
    server.send("spans", [json.dumps({"id": "left"})])
    early = LocalQueue(path)
    early.register("spans", Worker())
    assert len(early._claim("spans")) == 1  # left in flight by an earlier run's consumer
    assert server.resume({"spans"}) == 1  # visible again at once
    first, second = Worker(), Worker()
    one, two = LocalQueue(path), LocalQueue(path)
    one.register("spans", first)
    two.register("spans", second)
    try:
        assert len(one._claim("spans")) == 1  # in flight in the first consumer
        two.start(resume=False)
        server.send("spans", [json.dumps({"id": "new"})])
        deadline = time.monotonic() + 20
        while not second.stored and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # time for a wrong second delivery of "left"
        assert second.stored == {"new": 1}  # not the batch the first one holds
        assert server.pending("spans") == 1
        two.stop()
        two.start()  # a start that resumes (the default) hands it out again: why not here
        deadline = time.monotonic() + 20
        while "left" not in second.stored and time.monotonic() < deadline:
            time.sleep(0.02)
        assert second.stored == {"new": 1, "left": 1}
    finally:
        for queue in (two, one, early, server):
            queue.close()


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


def test_snapshot_events_reach_each_consumer_queue_through_the_topic(
    aws: Any, tmp_path: Any
) -> None:
    from kontex.bootstrap import Container
    from kontex.domain.models import ContextBundle
    from kontex.services import keys, sessions, snapshots
    from kontex.settings import Settings

    url = aws.create_queue(QueueName="kontex-feed")["QueueUrl"]
    queue_arn = aws.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="kontex-events")["TopicArn"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    config = Settings.from_env(
        {"KONTEX_EVENTS_TOPIC_ARN": topic, "KONTEX_API_KEY_SECRET": "s"}, kontex_data_dir=tmp_path
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
    received = [
        json.loads(m["Body"])
        for m in aws.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    ]
    assert [b["type"] for b in received] == ["session.updated", "task.updated", "snapshot.created"]
    bodies = received[2:]
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


def test_a_delayed_message_waits_until_it_is_due() -> None:
    seen: list[float] = []

    def worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(time.monotonic())
        return {"batchItemFailures": []}

    q = LocalQueue()
    q.register("spans", worker)
    q.start()
    try:
        sent = time.monotonic()
        q.send("spans", ["later"], delay_seconds=1)
        assert q.drain(timeout=10)
    finally:
        q.stop()
    assert len(seen) == 1 and seen[0] - sent >= 0.9


def test_a_batch_window_hands_over_full_batches() -> None:
    """Issue 23, captures at proxy speed: messages sent one by one while the worker is idle
    reach it as one full batch, not one batch each (Lambda's batching window)."""
    events: list[list[str]] = []

    def worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
        events.append([r["body"] for r in event["Records"]])
        return {"batchItemFailures": []}

    q = LocalQueue(batch_size=4)
    q.register("capture", worker, batch_window=60)
    q.start()
    try:
        for n in range(4):  # each send wakes the worker; it waits for the batch to fill
            q.send("capture", [f"call {n}"])
            time.sleep(0.1)
        assert q.drain(timeout=20)
    finally:
        q.stop()
    assert events == [["call 0", "call 1", "call 2", "call 3"]]
    assert q.batch_window("capture") == 60 and q.batch_window("spans") == 0


def test_a_batch_window_hands_over_a_partial_batch_once_it_has_waited() -> None:
    events: list[list[str]] = []

    def worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
        events.append([r["body"] for r in event["Records"]])
        return {"batchItemFailures": []}

    q = LocalQueue(batch_size=10)
    q.register("capture", worker, batch_window=0.2)
    q.start()
    try:
        q.send("capture", ["a", "b", "c"])
        assert q.drain(timeout=20)
    finally:
        q.stop()
    assert events == [["a", "b", "c"]]


def test_kontex_dev_gives_the_capture_worker_its_batch_window() -> None:
    from kontex.local.server import start_workers

    q = start_workers(None)
    try:
        assert q.batch_window("capture") == 0.1
        assert q.batch_window("spans") == q.batch_window("embed") == 0
    finally:
        q.stop()
