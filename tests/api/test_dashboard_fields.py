"""The fields the dashboard's charts read (issue 24), through the real handler, on SQLite and
PostgreSQL: each timeline entry's model context window, and a session's activity per slice
of its life in its stats."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Client


def _session(c: Client, name: str = "charted") -> tuple[str, str]:
    session = c.post("/v1/sessions", {"name": name}).body
    task = c.post(f"/v1/sessions/{session['id']}/tasks", {"name": "work"}).body
    return session["id"], task["id"]


def _snap(c: Client, task_id: str, label: str, model: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {"messages": [{"role": "user", "content": label}]}
    if model is not None:
        bundle["model"] = model
    reply = c.post(f"/v1/tasks/{task_id}/snapshots", {"label": label, "bundle": bundle})
    assert reply.status == 201, reply.body
    return reply.body


def test_timeline_entries_carry_their_models_context_window(alice: Client) -> None:
    sid, task = _session(alice)
    _snap(alice, task, "dated release", "claude-sonnet-4-5-20250929")  # a prefix of the table
    _snap(alice, task, "openai", "gpt-4o")
    _snap(alice, task, "provider-prefixed", "openai/gpt-4.1-mini")
    _snap(alice, task, "unknown model", "my-own-model")
    _snap(alice, task, "no model")
    timeline = alice.get(f"/v1/sessions/{sid}/snapshots/timeline").body["data"]
    assert [(e["label"], e["context_window"]) for e in timeline] == [
        ("dated release", 200_000),
        ("openai", 128_000),
        ("provider-prefixed", 1_047_576),
        ("unknown model", None),
        ("no model", None),
    ]


def test_stats_count_snapshots_per_slice_of_the_sessions_life(alice: Client, clock: Any) -> None:
    sid, task = _session(alice)
    _snap(alice, task, "first")
    clock.advance(10)  # 240 s in 24 slices of 10 s: these two fall in the second slice
    _snap(alice, task, "second")
    _snap(alice, task, "third")
    clock.advance(230)
    _snap(alice, task, "last")
    stats = alice.get(f"/v1/sessions/{sid}/stats").body
    timeline = alice.get(f"/v1/sessions/{sid}/snapshots/timeline").body["data"]
    activity = stats["activity"]
    assert activity["start"] == timeline[0]["created_at"]
    assert activity["end"] == timeline[-1]["created_at"]
    assert activity["snapshots"] == [1, 2] + [0] * 21 + [1]
    assert sum(activity["snapshots"]) == stats["total_snapshots"] == 4


def test_activity_of_a_session_without_snapshots_or_with_one(alice: Client) -> None:
    sid, task = _session(alice)
    empty = alice.get(f"/v1/sessions/{sid}/stats").body["activity"]
    assert empty == {"start": None, "end": None, "snapshots": []}
    made = _snap(alice, task, "only")
    one = alice.get(f"/v1/sessions/{sid}/stats").body["activity"]
    assert one == {"start": made["created_at"], "end": made["created_at"], "snapshots": [1]}
