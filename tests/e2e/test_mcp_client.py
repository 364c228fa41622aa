"""The official MCP client (streamable HTTP) against a real `kontex dev`: every tool, its effects
checked over REST."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

from tests.e2e.stack import DevStack, Http, create_key, start_dev, stop_dev

pytestmark = pytest.mark.e2e

TOOLS = {
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


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    data = tmp_path_factory.mktemp("mcp") / "data"
    create_key(data, "bootstrap")  # migrates and makes the secret before the server starts
    running = start_dev(data)
    yield running
    stop_dev(running)


@asynccontextmanager
async def mcp_session(stack: DevStack, headers: dict[str, str]) -> AsyncIterator[ClientSession]:
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(f"{stack.base}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


class Agent:
    """An MCP client session whose tool results are checked for shape."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    async def ok(self, tool: str, /, **arguments: Any) -> dict[str, Any]:
        result = await self.session.call_tool(tool, arguments)
        assert not result.is_error, (tool, result.content)
        assert result.content and result.content[0].type == "text"
        assert result.structured_content is not None
        return result.structured_content

    async def error(self, tool: str, /, **arguments: Any) -> str:
        result = await self.session.call_tool(tool, arguments)
        assert result.is_error, (tool, result.structured_content)
        text: str = result.content[0].text  # type: ignore[union-attr]
        return text


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


MESSAGES = [
    {"role": "system", "content": "You fix bugs."},
    {"role": "user", "content": "Why does login fail?"},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me read auth.py."},
            {"type": "tool_use", "id": "tu_1", "name": "read_file", "input": {"path": "auth.py"}},
        ],
    },
    {
        "role": "tool",
        "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": "def login(): ..."}],
    },
]


def test_every_tool_through_the_official_client(stack: DevStack) -> None:
    key = create_key(stack.data_dir, "agent")
    rest = Http(stack.base, key)

    async def scenario() -> None:
        async with mcp_session(stack, bearer(key)) as session:
            agent = Agent(session)
            # initialize + list: all twelve, each with an input and an output schema
            listed = (await session.list_tools()).tools
            assert {t.name for t in listed} == TOOLS
            for tool in listed:
                assert tool.input_schema["type"] == "object"
                assert tool.output_schema is not None and tool.output_schema["type"] == "object"
                assert tool.description

            session_ = await agent.ok("kontex_session_start", name="fix login", description="e2e")
            sid = session_["id"]
            assert rest("GET", f"/v1/sessions/{sid}")[1]["description"] == "e2e"

            task = await agent.ok("kontex_task_start", session_id=sid, name="investigate")
            tid = task["id"]
            sub = await agent.ok(
                "kontex_task_start", session_id=sid, name="read", parent_task_id=tid
            )
            tree = rest("GET", f"/v1/sessions/{sid}/tasks")[1]["data"]
            assert tree[0]["id"] == tid and tree[0]["children"][0]["id"] == sub["id"]
            assert tree[0]["status"] == "active"

            first = await agent.ok(
                "kontex_snapshot",
                task_id=tid,
                label="read auth.py",
                messages=MESSAGES,
                tool_calls=[{"tool": "read_file", "input": {"path": "auth.py"}, "output": "..."}],
                files=[{"path": "auth.py", "content": "def login(): ..."}],
                reasoning="login() is a stub",
                model="claude-sonnet-4-5",
            )
            status, stored = rest("GET", f"/v1/snapshots/{first['id']}")
            assert status == 200
            assert stored["source"] == "mcp" and stored["label"] == "read auth.py"
            assert stored["bundle"]["messages"] == MESSAGES
            assert stored["bundle"]["files"][0]["path"] == "auth.py"
            assert stored["bundle"]["reasoning"] == "login() is a stub"
            assert stored["bundle"]["tool_calls"][0]["tool"] == "read_file"

            later = await agent.ok(
                "kontex_snapshot",
                task_id=tid,
                label="wrong fix",
                messages=[*MESSAGES, {"role": "assistant", "content": "Delete auth.py."}],
                files=[{"path": "auth.py", "content": ""}],
            )
            context = await agent.ok("kontex_get_context", snapshot_id=first["id"])
            assert context["bundle"]["messages"] == MESSAGES
            assert context["snapshot"]["id"] == first["id"]

            diff = await agent.ok("kontex_diff", **{"from": first["id"], "to": later["id"]})
            assert diff["messages"]["common_prefix"] == 4
            assert diff["files"]["modified"] == ["auth.py"]
            assert (
                diff
                == rest("GET", f"/v1/sessions/{sid}/diff?from={first['id']}&to={later['id']}")[1]
            )

            back = await agent.ok("kontex_rollback", snapshot_id=first["id"])
            forward = back["snapshot"]
            assert forward["rollback_of"] == first["id"]
            assert forward["parent_snapshot_id"] == later["id"]  # a new head, nothing deleted
            assert back["bundle"]["messages"] == MESSAGES
            assert forward["id"] in back["resume"]
            status, head = rest("GET", f"/v1/snapshots/{forward['id']}")
            assert status == 200 and head["source"] == "rollback"
            assert head["bundle"]["messages"] == MESSAGES

            listed_snaps = await agent.ok("kontex_list_snapshots", session_id=sid)
            ids = [s["id"] for s in listed_snaps["snapshots"]]
            assert ids == [first["id"], later["id"], forward["id"]]
            page = rest("GET", f"/v1/sessions/{sid}/snapshots")[1]["data"]
            assert [s["id"] for s in page] == ids

            fork = await agent.ok("kontex_fork", snapshot_id=first["id"], name="try OAuth")
            assert fork["snapshot"]["forked_from"] == first["id"]
            status, branch = rest("GET", f"/v1/tasks/{fork['task']['id']}")
            assert (
                status == 200 and branch["parent_task_id"] == tid and branch["name"] == "try OAuth"
            )

            anthropic = await agent.ok(
                "kontex_restore_messages", snapshot_id=forward["id"], format="anthropic"
            )
            assert anthropic["system"] == "You fix bugs."
            assert [m["role"] for m in anthropic["messages"]] == ["user", "assistant", "user"]
            openai = await agent.ok(
                "kontex_restore_messages", snapshot_id=forward["id"], format="openai"
            )
            assert [m["role"] for m in openai["messages"]] == [
                "system",
                "user",
                "assistant",
                "tool",
            ]

            done = await agent.ok("kontex_task_done", task_id=tid, status="completed")
            assert done["status"] == "completed"
            assert rest("GET", f"/v1/tasks/{tid}")[1]["status"] == "completed"
            paused = await agent.ok("kontex_session_pause", session_id=sid)
            assert paused["status"] == "paused"
            assert rest("GET", f"/v1/sessions/{sid}")[1]["status"] == "paused"

    asyncio.run(scenario())


def test_bad_arguments_and_foreign_ids_are_tool_errors(stack: DevStack) -> None:
    owner = Http(stack.base, create_key(stack.data_dir, "owner"))
    _, session_ = owner("POST", "/v1/sessions", {"name": "private"})
    _, task = owner("POST", f"/v1/sessions/{session_['id']}/tasks", {"name": "t"})
    _, snap = owner(
        "POST", f"/v1/tasks/{task['id']}/snapshots", {"label": "s", "bundle": {"messages": []}}
    )
    stranger = create_key(stack.data_dir, "stranger")

    async def scenario() -> None:
        async with mcp_session(stack, {"X-Kontex-Api-Key": stranger}) as session:
            agent = Agent(session)
            foreign = await agent.error("kontex_get_context", snapshot_id=snap["id"])
            missing = await agent.error("kontex_get_context", snapshot_id="snap_nothing")
            assert foreign.replace(snap["id"], "?") == missing.replace("snap_nothing", "?")
            assert "not_found" in foreign
            assert "not_found" in await agent.error("kontex_rollback", snapshot_id=snap["id"])
            assert "not_found" in await agent.error(
                "kontex_snapshot", task_id=task["id"], label="intrusion"
            )
            assert "not_found" in await agent.error(
                "kontex_list_snapshots", session_id=session_["id"]
            )
            # bad arguments
            assert "status" in await agent.error(
                "kontex_task_done", task_id=task["id"], status="maybe"
            )
            assert "format" in await agent.error(
                "kontex_restore_messages", snapshot_id=snap["id"], format="gemini"
            )
            assert "session_id" in await agent.error("kontex_task_start", name="no session")

    asyncio.run(scenario())
    # nothing of the owner's changed
    status, page = owner("GET", f"/v1/sessions/{session_['id']}/snapshots")
    assert status == 200 and [s["id"] for s in page["data"]] == [snap["id"]]


def test_no_key_is_401(stack: DevStack) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    request = urllib.request.Request(
        f"{stack.base}/mcp",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    assert json.loads(refused.value.read())["error"] == "unauthorized"

    statuses: list[int] = []

    async def scenario() -> None:
        async def seen(response: Any) -> None:
            statuses.append(response.status_code)

        async with create_mcp_http_client() as http:
            http.event_hooks["response"].append(seen)
            async with (
                streamable_http_client(f"{stack.base}/mcp", http_client=http) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()

    with pytest.raises(Exception) as failed:  # the official client gives up at initialize
        asyncio.run(scenario())
    assert "error response" in repr(failed.value)
    assert statuses == [401]


def test_search_through_mcp_matches_rest(stack: DevStack) -> None:
    key = create_key(stack.data_dir, "searcher")
    rest = Http(stack.base, key)
    _, session_ = rest("POST", "/v1/sessions", {"name": "search me"})
    _, task = rest("POST", f"/v1/sessions/{session_['id']}/tasks", {"name": "t"})
    text = "The login bug: the session cookie is set without the Secure flag."
    bundle = {"messages": [{"role": "user", "content": text}]}
    _, snap = rest(
        "POST", f"/v1/tasks/{task['id']}/snapshots", {"label": "cookie", "bundle": bundle}
    )

    async def scenario() -> dict[str, Any]:
        async with mcp_session(stack, bearer(key)) as session:
            agent = Agent(session)
            deadline = time.monotonic() + 60  # embedding is asynchronous (the embed queue)
            while True:
                found = await agent.ok(
                    "kontex_search", query="cookie Secure flag", session_id=session_["id"]
                )
                if any(r["snapshot_id"] == snap["id"] for r in found["results"]):
                    return found
                assert time.monotonic() < deadline, found
                await asyncio.sleep(0.5)

    found = asyncio.run(scenario())
    status, over_rest = rest(
        "GET", f"/v1/search?q=cookie%20Secure%20flag&session_id={session_['id']}"
    )
    assert status == 200
    assert [r["snapshot_id"] for r in found["results"]] == [
        r["snapshot_id"] for r in over_rest["results"]
    ]
