"""The outbox on both databases: events are written with their change; a transport that fails
after the commit loses nothing, the sweeper publishes what the relay could not."""

from __future__ import annotations

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
    assert events.types() == ["snapshot.created"]
    assert events.published[0][3]["id"] == snap.id and "bundle" not in events.published[0][3]
    assert events.ids[0] and events.ids[0].startswith("evt_")
    # nothing is left for the sweeper
    assert outbox.sweep(deps, older_than_seconds=0) == 0


def test_a_failing_transport_loses_nothing(deps: Deps, events: Any, clock: Any) -> None:
    # Given an event transport that is down when the changes commit
    key, _ = keys.create_key(deps, "outbox")
    s = sessions.create_session(deps, key.account_id, "run")
    t = sessions.create_task(deps, key.account_id, s.id, "work")
    events.failing = True
    snap = snapshots.create_snapshot(deps, key.account_id, t.id, "one", _bundle("hi"))
    snapshots.enrich(deps, key.account_id, snap.id, {"log_events": [{"message": "late"}]})
    snapshots.rollback(deps, key.account_id, snap.id)
    snapshots.fork(deps, key.account_id, snap.id)
    sessions.update_session(deps, key.account_id, s.id, name="renamed")
    sessions.update_task(deps, key.account_id, t.id, status="completed")
    assert events.published == []

    # When it is back, a sweep too early sends nothing; after the delay it sends everything once
    events.failing = False
    assert outbox.sweep(deps) == 0
    clock.advance(outbox.SWEEP_AFTER_SECONDS + 1)
    assert outbox.sweep(deps) == 7
    assert sorted(events.types()) == sorted(
        [
            "snapshot.created",
            "snapshot.enriched",
            "snapshot.created",
            "task.updated",
            "snapshot.created",
            "session.updated",
            "task.updated",
        ]
    )
    assert len(set(events.ids)) == 7 and all(events.ids)
    renamed = [p for p in events.published if p[0] == "session.updated"][0]
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
    assert events.types() == ["snapshot.created"]
    assert outbox.sweep(deps, older_than_seconds=-1) == 0
