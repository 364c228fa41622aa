"""Every route, through the real handler, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.api.conftest import Client, conversation


def make_session(c: Client, name: str = "run") -> dict[str, Any]:
    reply = c.post("/v1/sessions", {"name": name, "description": "d", "metadata": {"team": "x"}})
    assert reply.status == 201, reply.body
    return reply.body


def make_task(c: Client, session_id: str, name: str = "work", parent: str | None = None) -> dict:
    body: dict[str, Any] = {"name": name}
    if parent:
        body["parent_task_id"] = parent
    reply = c.post(f"/v1/sessions/{session_id}/tasks", body)
    assert reply.status == 201, reply.body
    return reply.body


def make_snapshot(c: Client, task_id: str, label: str, turns: int, **bundle: Any) -> dict:
    reply = c.post(
        f"/v1/tasks/{task_id}/snapshots",
        {"label": label, "bundle": {"messages": conversation(turns), **bundle}},
    )
    assert reply.status == 201, reply.body
    return reply.body


def test_health_and_openapi_need_no_key(anonymous: Client) -> None:
    health = anonymous.get("/health")
    assert health.status == 200 and health.body["status"] == "ok"
    spec = anonymous.get("/v1/openapi.json")
    assert spec.status == 200 and spec.body["openapi"].startswith("3.")
    assert "/v1/sessions/{session_id}/diff" in spec.body["paths"]
    assert "CreateSnapshot" in spec.body["components"]["schemas"]
    docs = anonymous.get("/v1/docs")
    assert docs.status == 200 and "swagger" in str(docs.body).lower()


def test_auth_headers(alice: Client, anonymous: Client) -> None:
    assert anonymous.get("/v1/sessions").status == 401
    assert anonymous.get("/v1/sessions").body["error"] == "unauthorized"
    via_header = Client(None).get("/v1/sessions", headers={"x-kontex-api-key": alice.key})
    assert via_header.status == 200
    assert Client("kontex_nope").get("/v1/sessions").status == 401
    # 401 comes before any body validation
    assert anonymous.call("POST", "/v1/sessions", raw=b"{not json").status == 401


def test_keys_routes(alice: Client) -> None:
    made = alice.post("/v1/keys", {"label": "ci"})
    assert made.status == 201
    assert set(made.body) == {"id", "key", "label", "created_at"}
    listed = alice.get("/v1/keys").body["data"]
    assert {k["label"] for k in listed} == {"alice", "ci"}
    assert all("key" not in k and "key_hash" not in k for k in listed)
    second = Client(made.body["key"])
    assert second.get("/v1/sessions").status == 200
    assert alice.delete(f"/v1/keys/{made.body['id']}").status == 204
    assert second.get("/v1/sessions").status == 401  # revoked at once
    assert alice.delete(f"/v1/keys/{made.body['id']}").status == 404
    assert alice.post("/v1/keys", {"label": ""}).status == 400


def test_session_routes(alice: Client) -> None:
    s = make_session(alice)
    assert s["status"] == "active" and s["metadata"] == {"team": "x"}
    assert "account_id" not in s
    assert alice.get(f"/v1/sessions/{s['id']}").body == s
    patched = alice.patch(f"/v1/sessions/{s['id']}", {"status": "paused", "name": "renamed"})
    assert patched.status == 200 and patched.body["status"] == "paused"
    assert alice.get("/v1/sessions?status=paused").body["data"][0]["id"] == s["id"]
    assert alice.get("/v1/sessions?status=active").body["data"] == []
    ended = alice.patch(f"/v1/sessions/{s['id']}", {"status": "completed"})
    assert ended.status == 200 and ended.body["status"] == "completed"
    assert alice.get(f"/v1/sessions/{s['id']}").status == 200
    for bad in ({"name": ""}, {"name": "x" * 201}, {}, {"name": 5}, {"name": "a", "extra": 1}):
        reply = alice.post("/v1/sessions", bad)
        assert reply.status == 400 and reply.body["error"] == "validation_error", bad
    assert alice.patch(f"/v1/sessions/{s['id']}", {"status": "done"}).status == 400
    assert alice.get("/v1/sessions?limit=0").status == 400
    assert alice.get("/v1/sessions?limit=101").status == 400
    assert alice.get("/v1/sessions?cursor=garbage").status == 400


def test_session_pagination_is_stable(alice: Client) -> None:
    made = [make_session(alice, f"s{i}")["id"] for i in range(7)]
    seen, cursor = [], None
    while True:
        path = "/v1/sessions?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = alice.get(path).body
        seen += [s["id"] for s in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == made[::-1]  # newest first, the documented default


def test_malformed_and_unsupported_bodies(alice: Client) -> None:
    bad_json = alice.call("POST", "/v1/sessions", raw=b'{"name": ')
    assert bad_json.status == 400 and bad_json.body["error"] == "validation_error"
    form = alice.call(
        "POST",
        "/v1/sessions",
        raw=b"name=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status == 415 and form.body["error"] == "unsupported_media_type"
    assert alice.get("/v1/sessions").body["data"] == []  # nothing half-written
    missing = alice.get("/v1/no-such-thing")
    assert missing.status == 404 and missing.body["error"] == "not_found"


def test_link_trace(alice: Client) -> None:
    s = make_session(alice)
    other = make_session(alice, "other")
    trace = "4BF92F3577B34DA6A3CE929D0E0E4736"
    reply = alice.post(f"/v1/sessions/{s['id']}/link-trace", {"trace_id": trace})
    assert reply.status == 200 and reply.body["trace_ids"] == [trace.lower()]
    again = alice.post(f"/v1/sessions/{s['id']}/link-trace", {"trace_id": "a" * 32})
    assert again.body["trace_ids"] == [trace.lower(), "a" * 32]
    clash = alice.post(f"/v1/sessions/{other['id']}/link-trace", {"trace_id": trace})
    assert clash.status == 409 and clash.body["error"] == "conflict"
    assert alice.post(f"/v1/sessions/{s['id']}/link-trace", {"trace_id": "xyz"}).status == 400


def test_task_routes(alice: Client) -> None:
    s = make_session(alice)
    root = make_task(alice, s["id"], "root")
    child = make_task(alice, s["id"], "child", parent=root["id"])
    assert root["status"] == "pending"
    tree = alice.get(f"/v1/sessions/{s['id']}/tasks").body["data"]
    assert tree[0]["id"] == root["id"] and tree[0]["children"][0]["id"] == child["id"]
    assert alice.get(f"/v1/tasks/{child['id']}").body["parent_task_id"] == root["id"]
    assert alice.patch(f"/v1/tasks/{child['id']}", {"status": "active"}).body["status"] == "active"
    assert alice.patch(f"/v1/tasks/{child['id']}", {"status": "nope"}).status == 400
    other = make_session(alice, "other")
    wrong_parent = alice.post(
        f"/v1/sessions/{other['id']}/tasks", {"name": "x", "parent_task_id": root["id"]}
    )
    assert wrong_parent.status == 404  # no such task in that session


def test_snapshot_routes(alice: Client) -> None:
    s = make_session(alice)
    t = make_task(alice, s["id"])
    first = make_snapshot(
        alice,
        t["id"],
        "one",
        1,
        model="claude-x",
        files=[{"path": "a.py", "content": "x = 1\n"}],
        reasoning="why",
    )
    second = make_snapshot(alice, t["id"], "two", 3)
    assert first["source"] == "api" and first["token_total"] > 0
    assert second["parent_snapshot_id"] == first["id"]
    assert not {"account_id", "bundle_hash"} & set(first)

    full = alice.get(f"/v1/snapshots/{first['id']}").body
    assert full["id"] == first["id"] and full["bundle"]["messages"] == conversation(1)
    bundle = alice.get(f"/v1/snapshots/{first['id']}/bundle").body
    assert set(bundle) == {
        "snapshot_id",
        "session_id",
        "task_id",
        "captured_at",
        "model",
        "token_total",
        "source",
        "usage",
        "messages",
        "tool_calls",
        "files",
        "reasoning",
        "log_events",
    }
    assert bundle["usage"] is None  # an API snapshot records no LLM call
    assert bundle["files"][0]["content_hash"] and bundle["reasoning"] == "why"
    listed = alice.get(f"/v1/sessions/{s['id']}/snapshots?limit=1").body
    assert [x["id"] for x in listed["data"]] == [first["id"]] and listed["next_cursor"]

    rolled = alice.post(f"/v1/snapshots/{first['id']}/rollback")
    assert rolled.status == 201
    assert rolled.body["rollback_of"] == first["id"]
    assert rolled.body["parent_snapshot_id"] == second["id"]
    assert rolled.body["label"] == "Rollback to: one" and rolled.body["source"] == "rollback"

    enriched = alice.post(
        f"/v1/snapshots/{second['id']}/enrich", {"log_events": [{"message": "done"}]}
    )
    assert enriched.status == 200 and enriched.body["enriched"] is True
    assert alice.get(f"/v1/snapshots/{second['id']}/revisions").body["data"][1]["seq"] == 1
    original = alice.get(f"/v1/snapshots/{second['id']}/bundle?revision=0").body
    assert original["log_events"] == []

    bad = alice.post(
        f"/v1/tasks/{t['id']}/snapshots",
        {"label": "x", "bundle": {"messages": [{"role": "robot", "content": "?"}]}},
    )
    assert bad.status == 400
    no_bundle = alice.post(f"/v1/tasks/{t['id']}/snapshots", {"label": "x"})
    assert no_bundle.status == 400
    assert len(alice.get(f"/v1/sessions/{s['id']}/snapshots").body["data"]) == 3


def test_fork_makes_a_branch(alice: Client, bob: Client) -> None:
    s = make_session(alice)
    t = make_task(alice, s["id"])
    first = make_snapshot(alice, t["id"], "one", 1)
    make_snapshot(alice, t["id"], "two", 2)

    forked = alice.post(f"/v1/snapshots/{first['id']}/fork", {"name": "plan b"})
    assert forked.status == 201
    task, snap = forked.body["task"], forked.body["snapshot"]
    assert task["parent_task_id"] == t["id"] and task["name"] == "plan b"
    assert snap["forked_from"] == first["id"] and snap["task_id"] == task["id"]
    assert snap["parent_snapshot_id"] is None
    same = alice.get(f"/v1/snapshots/{snap['id']}/bundle").body["messages"]
    assert same == alice.get(f"/v1/snapshots/{first['id']}/bundle").body["messages"]

    bare = alice.post(f"/v1/snapshots/{first['id']}/fork")  # no body: a default name
    assert bare.status == 201 and bare.body["task"]["name"].startswith("fork of")
    other = make_session(alice)
    moved = alice.post(f"/v1/snapshots/{first['id']}/fork", {"session_id": other["id"]})
    assert moved.status == 201 and moved.body["task"]["session_id"] == other["id"]

    assert bob.post(f"/v1/snapshots/{first['id']}/fork").status == 404
    theirs = make_session(bob)
    assert (
        alice.post(f"/v1/snapshots/{first['id']}/fork", {"session_id": theirs["id"]}).status == 404
    )
    assert alice.post(f"/v1/snapshots/{first['id']}/fork", {"name": ""}).status == 400


def test_enrich_window_expired(alice: Client, clock: Any) -> None:
    t = make_task(alice, make_session(alice)["id"])
    snap = make_snapshot(alice, t["id"], "x", 1)
    clock.advance(61)
    late = alice.post(f"/v1/snapshots/{snap['id']}/enrich", {"reasoning": "late"})
    assert late.status == 409 and late.body["error"] == "enrich_window_expired"


def test_views(alice: Client) -> None:
    s = make_session(alice)
    root = make_task(alice, s["id"], "root")
    child = make_task(alice, s["id"], "child", parent=root["id"])
    a = make_snapshot(
        alice,
        root["id"],
        "a",
        1,
        tool_calls=[{"id": "tu_0", "tool": "grep"}, {"id": "x1", "tool": "ls"}],
        files=[
            {"path": "keep", "content": "k"},
            {"path": "edit", "content": "1"},
            {"path": "drop", "content": "d"},
        ],
    )
    b = make_snapshot(
        alice,
        root["id"],
        "b",
        2,
        tool_calls=[
            {"id": "tu_0", "tool": "grep"},
            {"id": "y1", "tool": "ls"},
            {"id": "tu_1", "tool": "grep", "status": "error"},
        ],
        files=[
            {"path": "keep", "content": "k"},
            {"path": "edit", "content": "2"},
            {"path": "new", "content": "n"},
        ],
    )
    make_snapshot(alice, child["id"], "c", 1)

    diff = alice.get(f"/v1/sessions/{s['id']}/diff?from={a['id']}&to={b['id']}").body
    assert diff["messages"]["common_prefix"] == 4
    assert len(diff["messages"]["added"]) == 3 and diff["messages"]["removed"] == []
    assert [c["id"] for c in diff["tool_calls"]["added"]] == ["tu_1"]  # x1 -> y1 pair by tool
    assert diff["tool_calls"]["removed"] == []
    assert diff["files"] == {"added": ["new"], "removed": ["drop"], "modified": ["edit"]}
    assert diff["token_delta"] == b["token_total"] - a["token_total"]
    assert alice.get(f"/v1/sessions/{s['id']}/diff?from={a['id']}").status == 400

    timeline = alice.get(f"/v1/sessions/{s['id']}/snapshots/timeline").body["data"]
    assert [e["label"] for e in timeline] == ["a", "b", "c"]
    assert [e["task_name"] for e in timeline] == ["root", "root", "child"]
    assert timeline[1]["token_delta"] == b["token_total"] - a["token_total"]
    assert timeline[0]["token_delta"] == a["token_total"]

    graph = alice.get(f"/v1/sessions/{s['id']}/graph").body
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes[root["id"]]["data"] == {
        "label": "root",
        "status": "pending",
        "token_total": b["token_total"],
        "snapshot_count": 2,
    }
    assert nodes[child["id"]]["position"]["x"] > nodes[root["id"]]["position"]["x"]
    assert graph["edges"] == [
        {"id": f"{root['id']}->{child['id']}", "source": root["id"], "target": child["id"]}
    ]

    stats = alice.get(f"/v1/sessions/{s['id']}/stats").body
    assert stats["total_snapshots"] == 3
    assert stats["total_messages"] == 7  # system + 2 turns x 3, each stored once
    assert stats["tool_calls_by_status"] == {"success": 3, "error": 1, "pending": 0}
    assert stats["total_tool_calls"] == 4
    # last activity: the newest snapshot (made after the session's last change), as written
    assert stats["last_activity_at"] == max(x["created_at"] for x in timeline)

    usage = alice.get("/v1/usage").body
    assert usage["total_sessions"] == 1 and usage["active_sessions"] == 1
    assert usage["total_snapshots"] == 3 == usage["snapshots_this_month"]
    assert usage["total_tokens_stored"] == sum(x["token_total"] for x in timeline)
    assert usage["stored_bytes"] > 0


def test_message_and_tool_call_queries(alice: Client) -> None:
    s = make_session(alice)
    t = make_task(alice, s["id"])
    make_snapshot(alice, t["id"], "a", 1, tool_calls=[{"id": "tu_0", "tool": "grep"}])
    make_snapshot(
        alice,
        t["id"],
        "b",
        2,
        tool_calls=[
            {"id": "tu_0", "tool": "grep"},
            {"id": "tu_1", "tool": "sed", "status": "error"},
        ],
    )
    sid = s["id"]
    everything = alice.get(f"/v1/messages?session_id={sid}&limit=100").body["data"]
    assert len(everything) == 7  # distinct, each once, though two snapshots repeat them
    assert everything[0]["role"] == "system" and everything[0]["content"] == "Be brief."
    users = alice.get(f"/v1/messages?session_id={sid}&role=user").body["data"]
    assert [m["content"] for m in users] == ["question 0", "question 1"]
    uses = alice.get(f"/v1/messages?session_id={sid}&content_type=tool_use").body["data"]
    assert {m["role"] for m in uses} == {"assistant"} and len(uses) == 2
    results = alice.get(f"/v1/messages?session_id={sid}&content_type=tool_result").body["data"]
    assert len(results) == 2
    page = alice.get(f"/v1/messages?session_id={sid}&limit=4").body
    rest = alice.get(f"/v1/messages?session_id={sid}&limit=4&cursor={page['next_cursor']}").body
    assert len(page["data"]) == 4 and len(rest["data"]) == 3 and rest["next_cursor"] is None
    first_at = quote(everything[0]["created_at"])
    later = alice.get(f"/v1/messages?session_id={sid}&created_after={first_at}").body["data"]
    assert len(later) == 3  # only what the second snapshot added
    assert alice.get("/v1/messages?role=robot").status == 400
    assert alice.get("/v1/messages?created_after=yesterday").status == 400

    calls = alice.get(f"/v1/tool-calls?session_id={sid}").body["data"]
    assert [c["id"] for c in calls] == ["tu_0", "tu_1"]
    errors = alice.get(f"/v1/tool-calls?session_id={sid}&is_error=true").body["data"]
    assert [c["tool"] for c in errors] == ["sed"] and errors[0]["is_error"] is True
    assert alice.get("/v1/tool-calls?tool_name=grep").body["data"][0]["id"] == "tu_0"


def test_thread_state_routes(alice: Client) -> None:
    tid = "thrd_" + "a1b2c3" * 5
    assert alice.get(f"/v1/threads/{tid}/state").status == 404
    saved = alice.put(f"/v1/threads/{tid}/state", {"user_data": '{"step": 1}'})
    assert saved.status == 200 and saved.body["version"] == 1
    again = alice.put(f"/v1/threads/{tid}/state", {"user_data": '{"step": 2}'})
    assert again.body["version"] == 2
    got = alice.get(f"/v1/threads/{tid}/state").body
    assert got["user_data"] == '{"step": 2}' and got["thread_id"] == tid and got["updated_at"]
    big = alice.put(f"/v1/threads/{tid}/state", {"user_data": "x" * (1024 * 1024 + 1)})
    assert big.status == 413 and big.body["error"] == "payload_too_large"
    assert alice.get(f"/v1/threads/{tid}/state").body["version"] == 2
    assert alice.put("/v1/threads/bad-id/state", {"user_data": "x"}).status == 400
    assert alice.put(f"/v1/threads/{tid}/state", {"user_data": 5}).status == 400
    assert alice.delete(f"/v1/threads/{tid}/state").status == 204
    assert alice.delete(f"/v1/threads/{tid}/state").status == 404


def test_purge_removes_the_session(alice: Client, container: Any) -> None:
    s = make_session(alice)
    t = make_task(alice, s["id"])
    snap = make_snapshot(alice, t["id"], "x", 2)
    assert alice.delete(f"/v1/sessions/{s['id']}?purge=true").status == 204
    assert alice.get(f"/v1/sessions/{s['id']}").status == 404
    assert alice.get(f"/v1/snapshots/{snap['id']}").status == 404
    assert container.deps.blobs.size_of_prefix("") == 0


@pytest.mark.parametrize("env_limits", [{"KONTEX_RATE_LIMIT_PER_HOUR": "5"}])
def test_request_rate_limit(alice: Client, env_limits: dict[str, str]) -> None:
    for _ in range(5):
        assert alice.get("/v1/sessions").status == 200
    limited = alice.get("/v1/sessions")
    assert limited.status == 429 and limited.body["error"] == "rate_limit_exceeded"
    assert 1 <= int(limited.headers["retry-after"]) <= 3600


@pytest.mark.parametrize("env_limits", [{"KONTEX_SNAPSHOT_WRITES_PER_HOUR": "2"}])
def test_snapshot_write_limit(alice: Client, clock: Any, env_limits: dict[str, str]) -> None:
    t = make_task(alice, make_session(alice)["id"])
    make_snapshot(alice, t["id"], "1", 1)
    make_snapshot(alice, t["id"], "2", 1)
    third = alice.post(
        f"/v1/tasks/{t['id']}/snapshots", {"label": "3", "bundle": {"messages": conversation(1)}}
    )
    assert third.status == 429 and int(third.headers["retry-after"]) >= 1
    assert alice.get(f"/v1/tasks/{t['id']}").status == 200  # reads still work
    clock.advance(3600)
    make_snapshot(alice, t["id"], "4", 1)  # a new window


def test_tampered_content_is_an_integrity_error_in_the_error_shape(
    alice: Client, container: Any
) -> None:
    from tests.services.test_snapshots import raw_sql

    t = make_task(alice, make_session(alice)["id"])
    snap = make_snapshot(alice, t["id"], "one", 2)
    store = container.store
    blob = "BLOB" if store.dialect == "sqlite" else "BYTEA"
    raw_sql(store, f"UPDATE items SET body = CAST('{{}}' AS {blob}) WHERE kind = 'message'")
    for path in (f"/v1/snapshots/{snap['id']}", f"/v1/snapshots/{snap['id']}/bundle"):
        got = alice.get(path)
        assert got.status == 500
        assert got.body["error"] == "integrity_error" and set(got.body) == {
            "error",
            "message",
            "details",
        }
        assert "forged" not in str(got.body) and "{}" not in got.body["message"]
    assert alice.post(f"/v1/snapshots/{snap['id']}/rollback").body["error"] == "integrity_error"


def test_a_bundle_in_the_original_shape_round_trips(alice: Client) -> None:
    # Given a bundle as the original system writes it: camelCase keys, {type, timestamp, data}
    # log events, tool calls without ids
    s = make_session(alice)
    t = make_task(alice, s["id"])
    original = {
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "user", "content": "read the config"},
            {"role": "assistant", "content": "done"},
        ],
        "toolCalls": [
            {
                "tool": "read_file",
                "input": {"path": "app.toml"},
                "output": "port = 8080",
                "status": "success",
                "timestamp": "2025-03-01T10:00:00Z",
            },
            {"tool": "grep", "input": {"q": "port"}, "status": "error"},
        ],
        "files": [{"path": "app.toml", "content": "port = 8080", "tokenCount": 5}],
        "logEvents": [
            {"type": "tool_start", "timestamp": "2025-03-01T10:00:00Z", "data": {"tool": "x"}},
            {"type": "note", "timestamp": "2025-03-01T10:00:01Z", "data": "plain text"},
        ],
        "capturedAt": "2025-03-01T10:00:02Z",
        "tokenTotal": 42,
    }
    # When it is posted unchanged
    made = alice.post(f"/v1/tasks/{t['id']}/snapshots", {"label": "as is", "bundle": original})
    assert made.status == 201, made.body
    again = alice.post(f"/v1/tasks/{t['id']}/snapshots", {"label": "again", "bundle": original})
    # Then it reads back in snake_case, with the same derived tool-call ids each time
    bundle = alice.get(f"/v1/snapshots/{made.body['id']}/bundle").body
    second = alice.get(f"/v1/snapshots/{again.body['id']}/bundle").body
    assert bundle["captured_at"] == "2025-03-01T10:00:02Z" and bundle["token_total"] == 42
    assert [c["tool"] for c in bundle["tool_calls"]] == ["read_file", "grep"]
    ids = [c["id"] for c in bundle["tool_calls"]]
    assert all(i.startswith("call_") for i in ids) and len(set(ids)) == 2
    assert ids == [c["id"] for c in second["tool_calls"]]
    assert bundle["tool_calls"][1]["status"] == "error"
    assert bundle["log_events"] == [
        {
            "type": "tool_start",
            "timestamp": "2025-03-01T10:00:00Z",
            "data": {"tool": "x"},
            "level": "info",
        },
        {
            "type": "note",
            "timestamp": "2025-03-01T10:00:01Z",
            "data": "plain text",
            "level": "info",
        },
    ]
    assert bundle["files"][0]["token_count"] == 5 and bundle["files"][0]["content_hash"]
    assert not [k for k in bundle if k[0].islower() and any(ch.isupper() for ch in k)]
    # a log event with neither message nor type says nothing: a 400
    bad = {**original, "logEvents": [{"timestamp": "2025-03-01T10:00:00Z"}]}
    assert alice.post(f"/v1/tasks/{t['id']}/snapshots", {"label": "x", "bundle": bad}).status == 400


def test_nulls_where_a_value_cannot_be_null_change_nothing(alice: Client) -> None:
    # these were 500s (TypeError on enrich; NOT NULL on PostgreSQL, a raw 409 on SQLite)
    s = make_session(alice)
    alice.patch(f"/v1/sessions/{s['id']}", {"metadata": {"team": "a"}})
    for body in ({"metadata": None}, {"name": None}, {"status": None}):
        patched = alice.patch(f"/v1/sessions/{s['id']}", body)
        assert patched.status == 200, patched.body
        assert (patched.body["metadata"], patched.body["name"]) == ({"team": "a"}, s["name"])
    cleared = alice.patch(f"/v1/sessions/{s['id']}", {"description": None})
    assert cleared.status == 200 and cleared.body["description"] is None
    t = make_task(alice, s["id"])
    assert alice.patch(f"/v1/tasks/{t['id']}", {"name": None}).body["name"] == t["name"]
    snap = make_snapshot(alice, t["id"], "x", 2)
    before = alice.get(f"/v1/snapshots/{snap['id']}/bundle").body
    for field in ("tool_calls", "files", "log_events", "messages"):
        enriched = alice.post(f"/v1/snapshots/{snap['id']}/enrich", {field: None})
        assert enriched.status == 200, enriched.body
    after = alice.get(f"/v1/snapshots/{snap['id']}/bundle").body
    for field in ("messages", "tool_calls", "files", "log_events"):
        assert after[field] == before[field]


def test_a_method_a_route_does_not_take_is_a_405_with_allow(alice: Client) -> None:
    s = make_session(alice)
    for method, path, allow in [
        ("PUT", "/v1/sessions", "GET, POST"),
        ("POST", f"/v1/sessions/{s['id']}", "DELETE, GET, PATCH"),
        ("PATCH", "/v1/checkpoints", "DELETE, GET, POST"),
    ]:
        answer = alice.call(method, path, {} if method != "GET" else None)
        assert answer.status == 405, (method, path, answer.body)
        assert answer.body["error"] == "method_not_allowed"
        assert answer.headers["allow"] == allow
    assert alice.get("/v1/nothing-here").status == 404
