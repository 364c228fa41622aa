"""MCP at ``/mcp`` through the real ``functions/api`` handler: API Gateway events carrying
JSON-RPC, no network (the SDK's app is driven in-process)."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from kontex.mcp import lambda_adapter, tools
from kontex.mcp.lambda_adapter import McpBridge, security_settings
from tests.api.conftest import Client, Reply, conversation

TOOL_NAMES = {
    "kontex_session_start",
    "kontex_session_pause",
    "kontex_task_start",
    "kontex_task_done",
    "kontex_snapshot",
    "kontex_rollback",
    "kontex_get_context",
    "kontex_list_snapshots",
    "kontex_search",
    "kontex_diff",
    "kontex_fork",
    "kontex_restore_messages",
}
MCP_HEADERS = {
    "accept": "application/json, text/event-stream",
    "host": "127.0.0.1:8787",
    "mcp-protocol-version": "2025-06-18",
}


class Mcp:
    """JSON-RPC over ``POST /mcp`` as an MCP client sends it (stateless: no session id)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.ids = 0

    def rpc(self, method: str, params: dict[str, Any] | None = None, **headers: str) -> Reply:
        self.ids += 1
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": self.ids, "method": method}
        if params is not None:
            body["params"] = params
        return self.client.post("/mcp", body, headers={**MCP_HEADERS, **headers})

    def call(self, tool: str, /, **arguments: Any) -> dict[str, Any]:
        reply = self.rpc("tools/call", {"name": tool, "arguments": arguments})
        assert reply.status == 200, reply.body
        assert "result" in reply.body, reply.body
        result: dict[str, Any] = reply.body["result"]
        return result

    def ok(self, tool: str, /, **arguments: Any) -> dict[str, Any]:
        result = self.call(tool, **arguments)
        assert result["isError"] is False, result
        assert result["content"][0]["type"] == "text" and result["content"][0]["text"]
        structured: dict[str, Any] = result["structuredContent"]
        return structured

    def error(self, tool: str, /, **arguments: Any) -> str:
        result = self.call(tool, **arguments)
        assert result["isError"] is True, result
        assert "structuredContent" not in result or result["structuredContent"] is None
        text: str = result["content"][0]["text"]
        return text


@pytest.fixture
def a(alice: Client) -> Mcp:
    return Mcp(alice)


@pytest.fixture
def b(bob: Client) -> Mcp:
    return Mcp(bob)


def _run(m: Mcp) -> tuple[str, str, str]:
    session = m.ok("kontex_session_start", name="refactor auth")
    task = m.ok("kontex_task_start", session_id=session["id"], name="plan")
    snap = m.ok(
        "kontex_snapshot",
        task_id=task["id"],
        label="read the code",
        messages=conversation(1),
        model="claude-sonnet-4-5",
    )
    return session["id"], task["id"], snap["id"]


def test_initialize_answers_the_server_and_its_tool_capability(a: Mcp) -> None:
    reply = a.rpc(
        "initialize",
        {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "handler-test", "version": "1"},
        },
    )
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/json")  # JSON, not SSE
    result = reply.body["result"]
    assert result["serverInfo"]["name"] == "kontex"
    assert "tools" in result["capabilities"]
    assert "snapshot" in result["instructions"]
    assert "mcp-session-id" not in reply.headers  # stateless


def test_tools_list_has_all_twelve_with_input_and_output_schemas(a: Mcp) -> None:
    reply = a.rpc("tools/list")
    assert reply.status == 200
    listed = {t["name"]: t for t in reply.body["result"]["tools"]}
    assert set(listed) == TOOL_NAMES
    for tool in listed.values():
        assert tool["inputSchema"]["type"] == "object"
        assert tool["outputSchema"]["type"] == "object"
        assert len(tool["description"]) > 80  # written for a model: when to call, what it returns
    assert listed["kontex_diff"]["inputSchema"]["required"] == ["from", "to"]
    assert listed["kontex_task_done"]["inputSchema"]["properties"]["status"]["enum"] == [
        "completed",
        "failed",
    ]
    assert listed["kontex_get_context"]["annotations"]["readOnlyHint"] is True


def test_a_run_through_the_tools_is_visible_over_rest(a: Mcp, alice: Client) -> None:
    sid, tid, snap = _run(a)
    got = alice.get(f"/v1/snapshots/{snap}")
    assert got.status == 200
    assert got.body["source"] == "mcp"
    assert got.body["bundle"]["messages"] == conversation(1)

    second = a.ok("kontex_snapshot", task_id=tid, label="answered", messages=conversation(2))
    assert second["parent_snapshot_id"] == snap
    back = a.ok("kontex_rollback", snapshot_id=snap)
    assert back["rolled_back_to"] == snap
    assert back["snapshot"]["rollback_of"] == snap
    assert back["snapshot"]["parent_snapshot_id"] == second["id"]  # a forward snapshot
    assert back["bundle"]["messages"] == conversation(1)
    assert back["snapshot"]["id"] in back["resume"]

    listed = a.ok("kontex_list_snapshots", session_id=sid, limit=2)
    assert [s["id"] for s in listed["snapshots"]] == [snap, second["id"]]
    assert listed["next_cursor"]
    rest = a.ok("kontex_list_snapshots", session_id=sid, cursor=listed["next_cursor"])
    assert [s["id"] for s in rest["snapshots"]] == [back["snapshot"]["id"]]

    diff = a.ok("kontex_diff", **{"from": snap, "to": second["id"]})
    assert diff["from"] == snap and diff["messages"]["common_prefix"] == 4
    assert len(diff["messages"]["added"]) == 3

    fork = a.ok("kontex_fork", snapshot_id=snap, name="try OAuth")
    assert fork["task"]["parent_task_id"] == tid and fork["snapshot"]["forked_from"] == snap
    assert alice.get(f"/v1/tasks/{fork['task']['id']}").body["name"] == "try OAuth"

    done = a.ok("kontex_task_done", task_id=tid, status="failed")
    assert done["status"] == "failed"
    assert alice.get(f"/v1/tasks/{tid}").body["status"] == "failed"
    paused = a.ok("kontex_session_pause", session_id=sid)
    assert paused["status"] == "paused"
    assert alice.get(f"/v1/sessions/{sid}").body["status"] == "paused"


def test_restore_messages_for_both_apis(a: Mcp) -> None:
    _, _, snap = _run(a)
    anthropic = a.ok("kontex_restore_messages", snapshot_id=snap, format="anthropic")
    assert anthropic["system"] == "Be brief."
    assert [m["role"] for m in anthropic["messages"]] == ["user", "assistant", "user"]
    assert anthropic["messages"][2]["content"][0]["tool_use_id"] == "tu_0"
    openai = a.ok("kontex_restore_messages", snapshot_id=snap, format="openai")
    assert openai["system"] is None
    assert [m["role"] for m in openai["messages"]] == ["system", "user", "assistant", "tool"]
    assert openai["messages"][2]["tool_calls"][0]["id"] == "tu_0"


def test_restore_answers_an_open_call_from_the_recorded_tool_calls(a: Mcp) -> None:
    # Given a snapshot whose messages end with a tool call, its result recorded only in
    # the bundle's tool_calls (as agents that log tools apart from the conversation do)
    session = a.ok("kontex_session_start", name="tools")
    task = a.ok("kontex_task_start", session_id=session["id"], name="grep")
    call = {"type": "tool_use", "id": "tu_9", "name": "grep", "input": {"q": "login"}}
    snap = a.ok(
        "kontex_snapshot",
        task_id=task["id"],
        label="called grep",
        messages=[
            {"role": "user", "content": "Where is login?"},
            {"role": "assistant", "content": [call]},
        ],
        tool_calls=[
            {
                "id": "tu_9",
                "tool": "grep",
                "input": {"q": "login"},
                "output": "auth.py:3",
                "status": "success",
            },
        ],
    )
    # When it is restored over MCP, Then the call is answered with what was recorded
    restored = a.ok("kontex_restore_messages", snapshot_id=snap["id"], format="anthropic")
    result = restored["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "tu_9"
    assert "auth.py:3" in json.dumps(result["content"]) and not result.get("is_error")


def test_get_context_returns_the_bundle(a: Mcp) -> None:
    _, _, snap = _run(a)
    got = a.ok("kontex_get_context", snapshot_id=snap)
    assert got["snapshot"]["id"] == snap
    assert got["bundle"]["messages"] == conversation(1)
    assert got["bundle"]["model"] == "claude-sonnet-4-5"
    assert got["bundle"]["source"] == "mcp"


def test_a_foreign_id_reads_exactly_like_a_missing_one(a: Mcp, b: Mcp) -> None:
    sid, tid, snap = _run(a)
    missing_sid, missing_tid, missing_snap = (
        "sess_" + "0" * 26,
        "task_" + "0" * 26,
        "snap_" + "0" * 26,
    )
    cases = [
        ("kontex_session_pause", {"session_id": sid}, sid, missing_sid),
        ("kontex_task_start", {"session_id": sid, "name": "x"}, sid, missing_sid),
        ("kontex_task_done", {"task_id": tid, "status": "completed"}, tid, missing_tid),
        ("kontex_snapshot", {"task_id": tid, "label": "mine"}, tid, missing_tid),
        ("kontex_rollback", {"snapshot_id": snap}, snap, missing_snap),
        ("kontex_get_context", {"snapshot_id": snap}, snap, missing_snap),
        ("kontex_list_snapshots", {"session_id": sid}, sid, missing_sid),
        ("kontex_fork", {"snapshot_id": snap}, snap, missing_snap),
        ("kontex_restore_messages", {"snapshot_id": snap, "format": "openai"}, snap, missing_snap),
        ("kontex_diff", {"from": snap, "to": snap}, snap, missing_snap),
    ]
    for name, arguments, real, missing in cases:
        foreign = b.error(name, **arguments)
        absent = b.error(name, **{k: (missing if v == real else v) for k, v in arguments.items()})
        assert "not_found" in foreign, (name, foreign)
        assert foreign.replace(real, "<id>") == absent.replace(missing, "<id>"), name
    # and nothing of a changed
    assert a.ok("kontex_get_context", snapshot_id=snap)["snapshot"]["id"] == snap
    assert a.ok("kontex_list_snapshots", session_id=sid)["snapshots"][-1]["id"] == snap


def test_bad_arguments_are_tool_errors(a: Mcp) -> None:
    sid, tid, snap = _run(a)
    assert "status" in a.error("kontex_task_done", task_id=tid, status="bogus")
    assert "format" in a.error("kontex_restore_messages", snapshot_id=snap, format="gemini")
    assert "name" in a.error("kontex_session_start", name="")
    assert "session_id" in a.error("kontex_list_snapshots")  # required argument left out
    assert "limit" in a.error("kontex_list_snapshots", session_id=sid, limit=1000)
    assert "cursor is not valid" in a.error("kontex_list_snapshots", session_id=sid, cursor="?")
    assert "role" in a.error(
        "kontex_snapshot", task_id=tid, label="x", messages=[{"role": "robot", "content": "hi"}]
    )
    other = a.ok("kontex_session_start", name="other")
    elsewhere = a.ok("kontex_task_start", session_id=other["id"], name="t")
    theirs = a.ok("kontex_snapshot", task_id=elsewhere["id"], label="x")
    assert "same session" in a.error("kontex_diff", **{"from": snap, "to": theirs["id"]})
    assert "not_found" in a.error(  # a parent is looked up in the session
        "kontex_task_start", session_id=sid, name="child", parent_task_id=elsewhere["id"]
    )
    reply = a.rpc("tools/call", {"name": "kontex_nope", "arguments": {}})
    assert reply.body["result"]["isError"] is True or "error" in reply.body


def test_search_says_unavailable_without_the_search_module(a: Mcp) -> None:
    try:
        import kontex.services.search  # noqa: F401
    except ModuleNotFoundError:
        assert "search is not available" in a.error("kontex_search", query="login bug")
    else:
        assert "results" in a.ok("kontex_search", query="login bug")


def test_no_key_or_a_bad_key_is_401_in_the_error_shape(anonymous: Client) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for client, reason in ((anonymous, "missing_key"), (Client("kontex_not-a-key"), "unknown_key")):
        reply = client.post("/mcp", body, headers=MCP_HEADERS)
        assert reply.status == 401
        assert set(reply.body) == {"error", "message", "details"}
        assert reply.body["error"] == "unauthorized"
        assert reply.body["details"] == {"reason": reason}


def test_the_x_kontex_api_key_header_works_too(alice: Client) -> None:
    header = Client(None)
    reply = header.post(
        "/mcp",
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={**MCP_HEADERS, "x-kontex-api-key": str(alice.key)},
    )
    assert reply.status == 200 and len(reply.body["result"]["tools"]) == 12


def test_a_host_not_allowed_is_421(a: Mcp) -> None:
    assert a.rpc("tools/list", host="attacker.example").status == 421
    assert a.rpc("tools/list", host="localhost:9999").status == 200


def test_allowed_hosts_setting() -> None:
    api = security_settings("abc.execute-api.eu-west-1.amazonaws.com")
    assert api.enable_dns_rebinding_protection
    assert api.allowed_hosts == ["abc.execute-api.eu-west-1.amazonaws.com"]
    assert "https://abc.execute-api.eu-west-1.amazonaws.com" in api.allowed_origins
    assert security_settings(None).allowed_hosts == ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    assert not security_settings("*").enable_dns_rebinding_protection


def test_an_api_gateway_host_is_served_when_allowed(alice: Client, container: Any) -> None:
    from kontex.services import keys

    key = keys.authenticate(container.deps, alice.key)
    bridge = McpBridge(tools.build_server(), "abc.execute-api.eu-west-1.amazonaws.com")
    event = {
        "version": "2.0",
        "rawPath": "/mcp",
        "rawQueryString": "",
        "headers": {
            **MCP_HEADERS,
            "host": "abc.execute-api.eu-west-1.amazonaws.com",
            "content-type": "application/json",
            "x-forwarded-proto": "https",
        },
        "requestContext": {"http": {"method": "POST", "path": "/mcp", "sourceIp": "1.2.3.4"}},
        "body": json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}),
        "isBase64Encoded": False,
    }
    answer = bridge.handle(event, key)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["id"] == 7
    refused = bridge.handle({**event, "headers": {**event["headers"], "host": "127.0.0.1:1"}}, key)
    assert refused["statusCode"] == 421


def test_get_and_delete_are_405_in_stateless_mode(alice: Client) -> None:
    for method in ("GET", "DELETE"):
        reply = alice.call(method, "/mcp", headers=MCP_HEADERS)
        assert reply.status == 405
        assert reply.headers["allow"] == "POST"
        assert reply.body["error"] == "method_not_allowed"


@pytest.mark.parametrize("env_limits", [{"KONTEX_SNAPSHOT_WRITES_PER_HOUR": "2"}])
def test_snapshot_writes_are_limited_as_on_rest(a: Mcp, alice: Client) -> None:
    session = a.ok("kontex_session_start", name="busy")
    task = a.ok("kontex_task_start", session_id=session["id"], name="t")
    first = a.ok("kontex_snapshot", task_id=task["id"], label="1")
    a.ok("kontex_rollback", snapshot_id=first["id"])
    refused = a.error("kontex_fork", snapshot_id=first["id"])
    assert refused.count("rate_limit_exceeded") == 1 and "retry after" in refused
    rest = alice.post(
        f"/v1/tasks/{task['id']}/snapshots", {"label": "3", "bundle": {"messages": []}}
    )
    assert rest.status == 429  # one budget for REST and MCP


@pytest.mark.parametrize("env_limits", [{"KONTEX_RATE_LIMIT_PER_HOUR": "2"}])
def test_requests_are_limited_as_on_rest(a: Mcp) -> None:
    assert a.rpc("tools/list").status == 200
    assert a.rpc("tools/list").status == 200
    refused = a.rpc("tools/list")
    assert refused.status == 429
    assert refused.body["error"] == "rate_limit_exceeded"
    assert int(refused.headers["retry-after"]) > 0


def test_two_concurrent_requests_on_one_process_do_not_mix_accounts(
    a: Mcp, b: Mcp, alice: Client, bob: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given both requests held inside their tools at the same time (a barrier), in one process
    barrier = threading.Barrier(2, timeout=20)
    real_caller = tools.caller

    def meeting() -> Any:
        barrier.wait()
        return real_caller()

    monkeypatch.setattr(tools, "caller", meeting)
    for round_ in range(5):
        # When each starts a session concurrently
        with ThreadPoolExecutor(2) as pool:
            made_a = pool.submit(a.ok, "kontex_session_start", name=f"alice {round_}")
            made_b = pool.submit(b.ok, "kontex_session_start", name=f"bob {round_}")
            sa, sb = made_a.result(timeout=30), made_b.result(timeout=30)
        # Then each session belongs to the account of the key that made it, and only to it
        assert alice.get(f"/v1/sessions/{sa['id']}").body["name"] == f"alice {round_}"
        assert bob.get(f"/v1/sessions/{sb['id']}").body["name"] == f"bob {round_}"
        assert alice.get(f"/v1/sessions/{sb['id']}").status == 404
        assert bob.get(f"/v1/sessions/{sa['id']}").status == 404


def test_one_session_manager_serves_every_request_of_the_process(a: Mcp) -> None:
    a.rpc("tools/list")
    first = lambda_adapter.bridge()
    a.rpc("tools/list")
    assert lambda_adapter.bridge() is first
    assert first._server.session_manager._has_started  # started once, kept warm
