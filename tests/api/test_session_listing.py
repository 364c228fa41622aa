"""Sessions as documented (issue 24), on both databases: listed newest first unless
``order=asc``, and a session's ``updated_at`` is its last activity, moving with each snapshot
written to it (its own changes, or its newest snapshot, whichever is later)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.api.conftest import Client


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_sessions_are_listed_newest_first_unless_asked_otherwise(alice: Client, clock: Any) -> None:
    made = []
    for name in ("first", "second", "third"):
        clock.advance(60)
        made.append(alice.post("/v1/sessions", {"name": name}).body["id"])
    listed = alice.get("/v1/sessions").body
    assert [s["id"] for s in listed["data"]] == made[::-1]
    # pages go on in the same order
    one = alice.get("/v1/sessions?limit=1").body
    two = alice.get(f"/v1/sessions?limit=2&cursor={one['next_cursor']}").body
    assert [s["id"] for s in one["data"] + two["data"]] == made[::-1]
    assert two["next_cursor"] is None
    asc = alice.get("/v1/sessions?order=asc").body
    assert [s["id"] for s in asc["data"]] == made
    assert alice.get("/v1/sessions?order=desc").body == listed


def test_updated_at_moves_with_each_snapshot(alice: Client, clock: Any) -> None:
    session = alice.post("/v1/sessions", {"name": "busy"}).body
    created = _at(session["updated_at"])
    task = alice.post(f"/v1/sessions/{session['id']}/tasks", {"name": "plan"}).body
    last = None
    for i in range(10):
        clock.advance(30)
        messages = [{"role": "user", "content": f"turn {i}"}]
        snap = alice.post(
            f"/v1/tasks/{task['id']}/snapshots",
            {"label": f"t{i}", "bundle": {"messages": messages}},
        ).body
        last = snap["created_at"]
        assert alice.get(f"/v1/sessions/{session['id']}").body["updated_at"] == last
    assert last is not None and _at(last) > created
    [listed] = alice.get("/v1/sessions").body["data"]
    assert listed["updated_at"] == last
    stats = alice.get(f"/v1/sessions/{session['id']}/stats").body
    assert _at(stats["last_activity_at"]) == _at(last)  # one notion of last activity
    # a change of the session itself, later than its snapshots, is its last activity then
    clock.advance(30)
    renamed = alice.patch(f"/v1/sessions/{session['id']}", {"name": "renamed"}).body
    assert _at(renamed["updated_at"]) > _at(last)
    assert alice.get(f"/v1/sessions/{session['id']}").body["updated_at"] == renamed["updated_at"]
    # and a session without snapshots keeps its own
    quiet = alice.post("/v1/sessions", {"name": "quiet"}).body
    assert alice.get(f"/v1/sessions/{quiet['id']}").body["updated_at"] == quiet["updated_at"]
