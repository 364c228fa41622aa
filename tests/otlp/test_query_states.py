"""Queries serve the latest state (issue 22, defect 7), on SQLite and PostgreSQL: a tool call
completed by a later snapshot is listed once, completed; usage from an SDK span that arrives
after its call's snapshot was sealed is kept, served and counted."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from opentelemetry.trace import Tracer

from kontex.services import snapshots, views
from tests.api.conftest import Client
from tests.otlp import spans as fixtures
from tests.otlp import test_ingest_and_worker as base
from tests.otlp.test_fidelity import ASK, DONE, PROTO, RESULT, SESSION, USE, traceloop_agent
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


# -- usage that arrives after its call's snapshot ---------------------------------------------


def chat_then_sdk(tracer: Tracer) -> None:
    """OpenLLMetry's span of a call, without usage, and the anthropic SDK's own span of the
    same call (its child) with the usage."""
    workflow = {"traceloop.span.kind": "workflow", "traceloop.entity.name": "agent", **SESSION}
    chat = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.input.messages": json.dumps([ASK, USE, RESULT]),
        "gen_ai.output.messages": json.dumps([DONE]),
        **SESSION,
    }
    sdk = {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 200,
        "gen_ai.usage.cache_read_input_tokens": 50,
        **SESSION,
    }
    with (
        tracer.start_as_current_span("agent.workflow", attributes=workflow),
        tracer.start_as_current_span("anthropic.chat", attributes=chat),
        tracer.start_as_current_span("anthropic.messages.create", attributes=sdk),
    ):
        pass


def test_usage_from_a_late_sdk_span_is_kept_served_and_counted(kontex: Any) -> None:
    from kontex.services import keys

    recorded = fixtures.record(chat_then_sdk)
    sdk = [s for s in recorded if s.name == "anthropic.messages.create"]
    rest = [s for s in recorded if s.name != "anthropic.messages.create"]

    # in time: the whole trace in one export
    send(kontex, recorded)
    (on_time,) = all_snapshots(kontex)
    assert on_time.usage is not None and on_time.usage.input_tokens == 1000
    expected_stats = views.stats(kontex.deps, kontex.account_id, on_time.session_id)
    assert expected_stats["total_tokens"] == 1250 and expected_stats["usage"]["cost_usd"]

    # late: the call's snapshot is sealed before the SDK's span comes
    other, kontex.test_key = keys.create_key(kontex.deps, "late")
    kontex.account_id = other.account_id
    send(kontex, rest)
    (snap,) = all_snapshots(kontex)
    assert snap.usage is None or snap.usage.input_tokens == 0  # not known yet
    send(kontex, sdk)

    api = Client(kontex.test_key)
    served = api.get(f"/v1/snapshots/{snap.id}").body
    assert served["usage"] == on_time.usage.model_dump(mode="json")
    assert served["enriched"] is True  # a new revision: the sealed row is as it was
    bundle = api.get(f"/v1/snapshots/{snap.id}/bundle").body
    assert bundle["usage"] == served["usage"]
    original = api.get(f"/v1/snapshots/{snap.id}/bundle?revision=0").body
    assert bundle["messages"] == original["messages"]  # the same content: only usage is new
    assert api.get(f"/v1/snapshots/{snap.id}").body["token_total"] == snap.token_total

    stats = api.get(f"/v1/sessions/{snap.session_id}/stats").body
    for key in ("total_tokens", "llm_calls", "usage"):
        assert stats[key] == expected_stats[key], key
    account = api.get("/v1/usage").body
    assert account["usage"] == expected_stats["usage"] == account["usage_this_month"]

    send(kontex, sdk)  # the same span again: nothing changes twice
    assert len(api.get(f"/v1/snapshots/{snap.id}/revisions").body["data"]) == 2
    assert api.get(f"/v1/sessions/{snap.session_id}/stats").body["usage"] == stats["usage"]
    # an enrich after it keeps it (served and counted), as a fork restates it without a call
    enriched = api.post(f"/v1/snapshots/{snap.id}/enrich", {"log_events": [{"message": "m"}]})
    assert enriched.status == 200 and enriched.body["usage"] == served["usage"]
    assert api.post(f"/v1/snapshots/{snap.id}/fork").status == 201
    assert api.get(f"/v1/sessions/{snap.session_id}/stats").body["usage"] == stats["usage"]
    assert api.delete(f"/v1/sessions/{snap.session_id}?purge=true").status == 204  # all of it
    assert api.get("/v1/usage").body["usage"]["calls"] == 0
