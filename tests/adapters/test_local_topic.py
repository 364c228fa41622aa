"""The local events topic: one message per consumer queue in one transaction, from any
process that opens the data dir's queue file, woken at once in the consuming process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kontex.adapters.local_queue import QUEUE_FILE, LocalQueue
from kontex.adapters.local_topic import EVENT_CONSUMERS, LocalTopic
from kontex.bootstrap import Container
from kontex.domain.errors import KontexError
from kontex.ports import Event, event_message
from kontex.services.deps import NullEvents
from kontex.settings import Settings

NOW = datetime(2026, 12, 4, tzinfo=UTC)


def _collector(seen: list[str]) -> Any:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.extend(r["body"] for r in event["Records"])
        return {"batchItemFailures": []}

    return handler


def test_each_consumer_gets_the_event_or_none_does(tmp_path: Path) -> None:
    queue = LocalQueue(tmp_path / QUEUE_FILE)
    queue.register("feed", _collector([]))
    # a consumer without a worker: the whole publish fails, nothing half-sent
    with pytest.raises(LookupError):
        LocalTopic(queue, ["feed", "embed"]).publish(
            Event("evt_1", "snapshot.created", "a", "s", {}, NOW)
        )
    assert queue.pending() == 0
    queue.register("embed", _collector([]))
    LocalTopic(queue, EVENT_CONSUMERS).publish(
        Event("evt_2", "snapshot.created", "acct_1", "sess_1", {"snapshot_id": "snap_1"}, NOW)
    )
    assert queue.pending("feed") == queue.pending("embed") == 1
    rows = queue._conn.execute("SELECT queue, body FROM messages ORDER BY queue").fetchall()
    assert rows[0][1] == rows[1][1]
    assert json.loads(rows[0][1]) == {
        "id": "evt_2",
        "type": "snapshot.created",
        "account_id": "acct_1",
        "session_id": "sess_1",
        "data": {"snapshot_id": "snap_1"},
    }
    queue.close()


def test_a_batch_of_events_is_encoded_once_an_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spans on PostgreSQL, less CPU a span: a span batch's events go to every consumer in one
    commit, each event's message encoded once (it was once per consumer)."""
    from kontex.adapters import local_topic

    encoded: list[str] = []

    def encoding(event: Event) -> str:
        encoded.append(event.id)
        return event_message(event)

    monkeypatch.setattr(local_topic, "event_message", encoding)
    queue = LocalQueue(tmp_path / QUEUE_FILE)
    for consumer in EVENT_CONSUMERS:
        queue.register(consumer, _collector([]))
    events = [Event(f"evt_{i}", "snapshot.created", "a", "s", {"i": i}, NOW) for i in range(3)]
    assert LocalTopic(queue, EVENT_CONSUMERS).publish_many(events) == ["evt_0", "evt_1", "evt_2"]
    assert encoded == ["evt_0", "evt_1", "evt_2"]
    rows = queue._conn.execute("SELECT queue, body FROM messages ORDER BY seq").fetchall()
    assert [(q, json.loads(b)["id"]) for q, b in rows] == [
        (c, e.id) for e in events for c in EVENT_CONSUMERS
    ]
    queue.close()


def test_another_process_wakes_the_consumer_at_once(tmp_path: Path) -> None:
    # Given a consumer that would otherwise look only every 30 s
    path = tmp_path / QUEUE_FILE
    seen: list[str] = []
    arrived = threading.Event()
    consumer = LocalQueue(path, poll_seconds=30)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.extend(r["body"] for r in event["Records"])
        arrived.set()
        return {"batchItemFailures": []}

    consumer.register("feed", handler)
    consumer.start()
    try:
        time.sleep(0.2)  # let its first (empty) look pass: the next is 30 s away
        # When another process publishes into the same file
        code = (
            "import sys; from kontex.adapters.local_queue import LocalQueue;"
            "from kontex.adapters.local_topic import LocalTopic;"
            "from kontex.ports import Event; from datetime import datetime, UTC;"
            "LocalTopic(LocalQueue(sys.argv[1]), ['feed'])"
            ".publish(Event('evt_x', 'task.updated', 'a', 's', {}, datetime.now(UTC)))"
        )
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)
        # Then it is delivered long before the next poll
        assert arrived.wait(10), "not woken: the message waited for the 30 s poll"
        assert json.loads(seen[0])["id"] == "evt_x"
    finally:
        consumer.close()


def test_the_container_publishes_to_the_local_topic_once_kontex_dev_made_it(
    tmp_path: Path,
) -> None:
    config = Settings.from_env({}, kontex_data_dir=tmp_path)
    assert isinstance(Container(config).events, NullEvents)  # no queue file: nobody consumes
    LocalQueue(tmp_path / QUEUE_FILE).close()
    events = Container(config).events
    assert isinstance(events, LocalTopic)
    # the consumers are the queues with a worker file (functions/workers/<name>.py)
    workers = Path(__file__).parents[2] / "functions" / "workers"
    assert list(events.consumers) == [c for c in EVENT_CONSUMERS if (workers / f"{c}.py").exists()]
    assert "feed" in events.consumers
    on_lambda = Settings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "f"}, kontex_data_dir=tmp_path)
    assert isinstance(Container(on_lambda).events, NullEvents)
    # WebSocket connections need an endpoint (AWS) or the local stack's sockets
    with pytest.raises(KontexError, match="KONTEX_WEBSOCKET_ENDPOINT"):
        _ = Container(config).connections


def test_what_ingest_acknowledges_is_fsynced_events_and_receipts_are_not(tmp_path: Path) -> None:
    queue = LocalQueue(tmp_path / QUEUE_FILE)
    queue.register("feed", _collector([]))
    queue.register("spans", _collector([]))
    commits: list[int] = []  # the connection's synchronous setting at each COMMIT
    queue._conn.set_trace_callback(
        lambda sql: (
            commits.append(queue._conn.execute("PRAGMA synchronous").fetchone()[0])
            if sql == "COMMIT"
            else None
        )
    )
    queue.send("spans", ["acknowledged"])  # ingest: durable
    LocalTopic(queue, ["feed"]).publish(Event("evt_1", "t", "a", "s", {}, NOW))
    queue.send("spans", ["again"])
    assert commits == [2, 1, 2]  # FULL, NORMAL, FULL


def test_many_events_go_out_in_one_commit(tmp_path: Path) -> None:
    """Issue 23, events in bulk: a unit's events (a span batch's snapshots) are one commit of
    the queue file for all consumers, where each event used to be one."""
    queue = LocalQueue(tmp_path / QUEUE_FILE)
    queue.register("feed", _collector([]))
    queue.register("embed", _collector([]))
    commits: list[str] = []
    queue._conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    events = [Event(f"evt_{n}", "snapshot.created", "a", "s", {"n": n}, NOW) for n in range(25)]
    sent = LocalTopic(queue, EVENT_CONSUMERS).publish_many(events)
    assert sent == [e.id for e in events]
    assert commits == ["COMMIT"]
    assert queue.pending("feed") == queue.pending("embed") == 25
    bodies = [
        json.loads(r[0])
        for r in queue._conn.execute("SELECT body FROM messages WHERE queue = 'feed' ORDER BY seq")
    ]
    assert [b["data"]["n"] for b in bodies] == list(range(25))  # in order
    queue.close()


def test_the_publisher_hands_a_units_events_over_in_one_call(tmp_path: Path) -> None:
    from kontex.services.publisher import Publisher

    class Counting(LocalTopic):
        calls: list[int] = []

        def publish(self, event: Event) -> None:
            self.calls.append(1)
            super().publish(event)

        def publish_many(self, events: Any) -> list[str]:
            self.calls.append(len(events))
            return super().publish_many(events)

    queue = LocalQueue(tmp_path / QUEUE_FILE)
    queue.register("feed", _collector([]))
    deleted: list[list[str]] = []

    class Outbox:
        def delete(self, ids: list[str]) -> None:
            deleted.append(ids)

    class Unit:
        outbox = Outbox()

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *exc: Any) -> None:
            return None

    class Store:
        def unit(self, durable: bool = True) -> Unit:
            return Unit()

    topic = Counting(queue, ["feed"])
    events = [Event(f"evt_{n}", "snapshot.created", "a", "s", {}, NOW) for n in range(7)]
    assert Publisher(Store(), topic)(events) == 7  # type: ignore[arg-type]
    assert topic.calls == [7] and deleted == [[e.id for e in events]]
    queue.close()
