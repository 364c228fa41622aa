"""The outbox on both databases: events are written with their change; a transport that fails
after the commit loses nothing, the sweeper publishes what the relay could not."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kontex.domain.errors import Conflict
from kontex.domain.models import ContextBundle
from kontex.services import keys, outbox, sessions, snapshots
from kontex.services.deps import Deps


def _bundle(text: str) -> ContextBundle:
    return ContextBundle.model_validate({"messages": [{"role": "user", "content": text}]})


def test_events_are_published_once_after_the_commit(deps: Deps, events: Any) -> None:
    key, _ = keys.create_key(deps, "outbox")
    s = sessions.create_session(deps, key.account_id, "run")
    t = sessions.create_task(deps, key.account_id, s.id, "work")
    snap = snapshots.create_snapshot(deps, key.account_id, t.id, "one", _bundle("hi"))
    assert events.types() == ["session.updated", "task.updated", "snapshot.created"]
    created = events.published[2][3]
    assert created["id"] == created["snapshot_id"] == snap.id and "bundle" not in created
    assert {"task_id", "label", "token_total", "usage", "created_at"} <= set(created)
    assert events.published[0][3]["name"] == "run" and events.published[1][3]["id"] == t.id
    assert all(i and i.startswith("evt_") for i in events.ids)
    # nothing is left for the sweeper
    assert outbox.sweep(deps, older_than_seconds=0) == 0


def test_a_failing_transport_loses_nothing(deps: Deps, events: Any, clock: Any) -> None:
    # Given an event transport that is down when the changes commit
    key, _ = keys.create_key(deps, "outbox")
    events.failing = True
    s = sessions.create_session(deps, key.account_id, "run")
    t = sessions.create_task(deps, key.account_id, s.id, "work")
    snap = snapshots.create_snapshot(deps, key.account_id, t.id, "one", _bundle("hi"))
    snapshots.enrich(deps, key.account_id, snap.id, {"log_events": [{"message": "late"}]})
    snapshots.rollback(deps, key.account_id, snap.id)
    snapshots.fork(deps, key.account_id, snap.id)
    sessions.update_session(deps, key.account_id, s.id, name="renamed")
    sessions.update_task(deps, key.account_id, t.id, status="completed")
    gone = sessions.create_session(deps, key.account_id, "to purge")
    sessions.purge_session(deps, key.account_id, gone.id)
    assert events.published == []

    # When it is back, a sweep too early sends nothing; after the delay it sends everything once
    events.failing = False
    assert outbox.sweep(deps) == 0
    clock.advance(outbox.SWEEP_AFTER_SECONDS + 1)
    assert outbox.sweep(deps) == 11
    assert sorted(events.types()) == sorted(
        [
            "session.updated",
            "task.updated",
            "session.updated",
            "session.purged",
            "snapshot.created",
            "snapshot.enriched",
            "snapshot.created",
            "task.updated",
            "snapshot.created",
            "session.updated",
            "task.updated",
        ]
    )
    assert len(set(events.ids)) == 11 and all(events.ids)
    purged = [p for p in events.published if p[0] == "session.purged"][0]
    assert purged[2] == gone.id and purged[3] == {"session_id": gone.id}
    renamed = [p for p in events.published if p[3].get("name") == "renamed"][0]
    assert renamed[3]["name"] == "renamed" and renamed[2] == s.id
    assert outbox.sweep(deps) == 0  # marked: never again


def test_events_are_written_in_the_changes_transaction(deps: Deps, events: Any) -> None:
    # A change that fails writes no event: the unit rolls back both
    key, _ = keys.create_key(deps, "outbox")
    s = sessions.create_session(deps, key.account_id, "run")
    t = sessions.create_task(deps, key.account_id, s.id, "work")
    snapshots.create_snapshot(deps, key.account_id, t.id, "one", _bundle("a"), snapshot_id="snap_x")
    with pytest.raises(Conflict):
        snapshots.create_snapshot(
            deps, key.account_id, t.id, "dup", _bundle("b"), snapshot_id="snap_x"
        )
    assert events.types() == ["session.updated", "task.updated", "snapshot.created"]
    assert outbox.sweep(deps, older_than_seconds=-1) == 0


def test_a_failed_publish_still_reaches_the_subscriber_through_the_sweeper(
    deps: Deps, events: Any, clock: Any
) -> None:
    """End to end without sockets: outbox -> local topic -> durable queue -> feed -> socket."""
    from kontex.adapters.local_queue import LocalQueue
    from kontex.adapters.local_topic import LocalTopic
    from kontex.services import live
    from tests.services.test_live import FakeConnections

    # Given a subscriber, and a transport that is down when the snapshot commits
    queue = LocalQueue(None)
    conns = FakeConnections()

    def feed(event: dict[str, Any], context: Any) -> dict[str, Any]:
        for record in event["Records"]:
            live.deliver(deps, conns, record["body"])
        return {"batchItemFailures": []}  # anything else is a failed batch, as on AWS

    queue.register("feed", feed)
    key, plain = keys.create_key(deps, "outbox")
    s = sessions.create_session(deps, key.account_id, "run")
    t = sessions.create_task(deps, key.account_id, s.id, "work")
    live.connect(deps, "c1")
    live.receive(deps, conns, "c1", json.dumps({"authorization": plain}))
    live.receive(
        deps,
        conns,
        "c1",
        json.dumps({"id": "1", "action": "subscribe", "data": {"session_id": s.id}}),
    )
    events.failing = True
    snap = snapshots.create_snapshot(deps, key.account_id, t.id, "one", _bundle("hi"))
    assert conns.events("c1") == []

    # When the transport is back and the sweeper runs, the event arrives, once
    deps.events = LocalTopic(queue, ["feed"])
    clock.advance(outbox.SWEEP_AFTER_SECONDS + 1)
    assert outbox.sweep(deps) >= 1
    queue.start()
    try:
        assert queue.drain(10)
    finally:
        queue.close()
    created = [e for e in conns.events("c1") if e["type"] == "snapshot.created"]
    assert [e["data"]["snapshot_id"] for e in created] == [snap.id]
    assert outbox.sweep(deps, older_than_seconds=-1) == 0


def test_an_events_data_is_encoded_once_for_its_row_and_its_message(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spans on PostgreSQL, less CPU a span: an event's data is encoded when it is made; its
    outbox row and its published message carry that text (the same message as before), not
    two more encodings of it."""
    from types import SimpleNamespace

    from kontex.adapters.sql import outbox as sql_outbox
    from kontex.ports import event_message

    key, _ = keys.create_key(deps, "outbox")
    s = sessions.create_session(deps, key.account_id, "run")
    data = {"snapshot_id": "snap_1", "label": "caf\u00e9 \u2603", "usage": {"cost_usd": 0.5}}
    event = outbox.event("snapshot.created", key.account_id, s.id, data, deps.clock())
    assert event.data_json == json.dumps(data, separators=(",", ":"))
    encoded: list[Any] = []

    def dumps(*args: Any, **kwargs: Any) -> str:
        encoded.append(args)
        return json.dumps(*args, **kwargs)

    monkeypatch.setattr(sql_outbox, "json", SimpleNamespace(dumps=dumps, loads=json.loads))
    with deps.store.unit() as uow:
        uow.outbox.add(event)
    with deps.store.unit(write=False) as uow:
        [stored] = uow.outbox.get([event.id])
    assert encoded == [] and stored.data == data
    expected = {"id": event.id, "type": event.type, "account_id": key.account_id}
    expected |= {"session_id": s.id, "data": data}
    assert event_message(event) == json.dumps(expected, separators=(",", ":"), default=str)
