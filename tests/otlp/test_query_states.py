"""Queries serve the latest state (issue 22, defect 7), on SQLite and PostgreSQL: a tool call
completed by a later snapshot is listed once, completed."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from kontex.services import snapshots, views
from tests.api.conftest import Client
from tests.otlp import spans as fixtures
from tests.otlp import test_ingest_and_worker as base
from tests.otlp.test_fidelity import PROTO, traceloop_agent
from tests.otlp.test_ingest_and_worker import all_snapshots, deliver, post

kontex = base.kontex  # the fixture: the ingest handler, a recording queue, the span worker


def send(kontex: Any, spans: list[Any]) -> None:
    """One export of ``spans``, delivered to the span worker on its own."""
    kontex.queue.sent.clear()
    assert post(kontex, fixtures.protobuf(spans), PROTO)[0] == 200
    deliver(kontex)


# -- tool calls: one row per call, in its latest state ----------------------------------------


def test_a_call_completed_by_its_tool_span_is_listed_once_completed(kontex: Any) -> None:
    send(kontex, fixtures.record(traceloop_agent))
    snaps = all_snapshots(kontex)
    first = snapshots.get_bundle(kontex.deps, kontex.account_id, snaps[0].id)
    assert [(c.id, c.status) for c in first.tool_calls] == [("toolu_1", "pending")]

    api = Client(kontex.test_key)
    session_id = snaps[0].session_id
    for path in ("/v1/tool-calls", f"/v1/tool-calls?session_id={session_id}"):
        calls = api.get(path).body["data"]
        assert [(c["id"], c["status"], c["output"]) for c in calls] == [
            ("toolu_1", "success", "21C")
        ]
    # a filter sees the latest state only: the call is no longer pending
    latest = api.get("/v1/tool-calls?tool_name=get_weather&is_error=false").body["data"]
    assert [c["status"] for c in latest] == ["success"]
    stats = views.stats(kontex.deps, kontex.account_id, session_id)
    assert stats["total_tool_calls"] == 1 and stats["tool_calls_by_status"]["success"] == 1


def _snapshot(api: Client, task_id: str, label: str, calls: list[dict[str, Any]]) -> Any:
    bundle = {"messages": [], "tool_calls": calls}
    made = api.post(f"/v1/tasks/{task_id}/snapshots", {"label": label, "bundle": bundle})
    assert made.status == 201, made.body
    return made.body


def test_tool_call_pages_are_stable_while_calls_complete(kontex: Any) -> None:
    api = Client(kontex.test_key)
    session = api.post("/v1/sessions", {"name": "paging"}).body
    task = api.post(f"/v1/sessions/{session['id']}/tasks", {"name": "t"}).body
    pending = {"tool": "grep", "status": "pending"}
    _snapshot(api, task["id"], "a", [{"id": "c1", **pending}, {"id": "c2", **pending}])
    base_path = f"/v1/tool-calls?session_id={session['id']}&limit=1"
    page = api.get(base_path).body
    assert [(c["id"], c["status"]) for c in page["data"]] == [("c1", "pending")]
    first_seen = page["data"][0]["created_at"]

    # both complete (c2 with an error) and a third call starts, after the first page was read
    _snapshot(
        api,
        task["id"],
        "b",
        [
            {"id": "c1", "tool": "grep", "output": "x"},
            {"id": "c2", "tool": "grep", "status": "error"},
            {"id": "c3", **pending},
        ],
    )
    seen = [(c["id"], c["status"]) for c in page["data"]]
    while page["next_cursor"]:
        page = api.get(f"{base_path}&cursor={quote(page['next_cursor'])}").body
        seen += [(c["id"], c["status"]) for c in page["data"]]
    assert seen == [("c1", "pending"), ("c2", "error"), ("c3", "pending")]  # each call once

    every = api.get(f"/v1/tool-calls?session_id={session['id']}").body["data"]
    assert [(c["id"], c["status"]) for c in every] == [
        ("c1", "success"),
        ("c2", "error"),
        ("c3", "pending"),
    ]
    assert every[0]["created_at"] == first_seen  # where the call was first seen: it keeps its place
    errors = api.get(f"/v1/tool-calls?session_id={session['id']}&is_error=true").body["data"]
    assert [c["id"] for c in errors] == ["c2"]
    ok = api.get(f"/v1/tool-calls?session_id={session['id']}&is_error=false").body["data"]
    assert [(c["id"], c["status"]) for c in ok] == [("c1", "success"), ("c3", "pending")]
    stats = api.get(f"/v1/sessions/{session['id']}/stats").body
    assert stats["tool_calls_by_status"] == {"success": 1, "error": 1, "pending": 1}
