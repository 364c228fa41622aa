"""KontexSaver: LangGraph's own conformance suite, and a real ReAct-style graph run on it
(resume after a restart, state history, a fork from an earlier checkpoint), sync and async."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.conformance import checkpointer_test, validate

from kontex_client import Kontex
from kontex_client.langgraph import KontexSaver, thread_doc_id
from tests.client.react_agent import ask, build
from tests.e2e.stack import DevStack

pytestmark = pytest.mark.e2e


def test_langgraph_conformance_suite(stack: DevStack, key: str) -> None:
    @checkpointer_test(name="KontexSaver")
    async def saver() -> Any:
        yield KontexSaver(base_url=stack.base, api_key=key)

    report = asyncio.run(validate(saver))
    failures = {name: r.failures for name, r in report.results.items() if r.failures}
    assert report.passed_all_base(), failures


def config(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def test_a_react_agent_resumes_after_a_restart(stack: DevStack, key: str) -> None:
    # Given an agent that answered one question on a thread
    first = build(KontexSaver(base_url=stack.base, api_key=key))
    done = first.invoke(ask("how do retries work"), config("resume"))
    assert [type(m) for m in done["messages"]] == [HumanMessage, AIMessage, ToolMessage, AIMessage]

    # When a new process (a new saver, a new client, a new graph) picks the thread up
    second = build(KontexSaver(Kontex(stack.base, key)))
    state = second.get_state(config("resume"))
    assert state.values["messages"] == done["messages"]  # read back equal, ids and all
    more = second.invoke(ask("and timeouts?"), config("resume"))

    # Then it goes on from where the first stopped
    assert more["messages"][:4] == done["messages"]
    assert len(more["messages"]) == 8
    assert more["messages"][-1].content.startswith("From the notes: notes on and timeouts?")


def test_state_history_and_a_fork_from_an_earlier_checkpoint(stack: DevStack, key: str) -> None:
    saver = KontexSaver(base_url=stack.base, api_key=key)
    graph = build(saver)
    graph.invoke(ask("first question"), config("travel"))

    history = list(graph.get_state_history(config("travel")))
    steps = [s.metadata["step"] for s in history]
    assert steps == sorted(steps, reverse=True) and steps[-1] == -1 and len(history) == 5
    assert [len(s.values.get("messages", [])) for s in history] == [4, 3, 2, 1, 0]

    # Fork: from the checkpoint where the model had asked for the tool, answer differently
    asked = next(s for s in history if s.next == ("tools",))
    forked = graph.update_state(
        asked.config,
        {"messages": [ToolMessage(content="nothing found", tool_call_id="x", id="tm-fork")]},
        as_node="tools",
    )
    branch = graph.invoke(None, forked)
    assert branch["messages"][-1].content == "From the notes: nothing found"

    # The fork's parent is the earlier checkpoint; the original run is still in the history
    fork_state = graph.get_state(forked)
    assert (
        fork_state.parent_config["configurable"]["checkpoint_id"]
        == (asked.config["configurable"]["checkpoint_id"])
    )
    ids = {
        s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(config("travel"))
    }
    assert {s.config["configurable"]["checkpoint_id"] for s in history} <= ids
    latest = graph.get_state(config("travel"))
    assert latest.values["messages"][-1].content == "From the notes: nothing found"

    # Replaying the original checkpoint gives the original answer again
    replay = graph.invoke(None, history[1].config)
    assert replay["messages"][-1].content.startswith("From the notes: notes on first question")


def test_the_thread_is_a_kontex_session_with_readable_messages(stack: DevStack, key: str) -> None:
    graph = build(KontexSaver(base_url=stack.base, api_key=key))
    graph.invoke(ask("what is a manifest"), config("readable"))
    with Kontex(stack.base, key) as client:
        document = client.threads.get(thread_doc_id("readable")).user_data
        session_id = __import__("json").loads(document)["session_id"]
        session = client.sessions.get(session_id)
        assert session.metadata == {"langgraph": {"thread_id": "readable"}}
        timeline = client.sessions.timeline(session_id)
        assert len(timeline) == 5 and all(e.label.startswith("checkpoint ") for e in timeline)
        bundle = client.snapshots.bundle(timeline[-1].id)
    assert [m["role"] for m in bundle.messages] == ["user", "assistant", "tool", "assistant"]
    assert bundle.messages[0]["content"] == "what is a manifest"
    assert bundle.messages[1]["tool_calls"][0]["function"]["name"] == "lookup"
    assert bundle.messages[2]["tool_call_id"] == bundle.messages[1]["tool_calls"][0]["id"]
    paths = {f["path"] for f in bundle.files}
    assert "langgraph/checkpoint.json" in paths
    assert not any(p == "langgraph/channels/messages" for p in paths)  # mapped, not a file


def test_the_async_api_runs_the_graph(stack: DevStack, key: str) -> None:
    async def run() -> tuple[int, int]:
        graph = build(KontexSaver(base_url=stack.base, api_key=key))
        await graph.ainvoke(ask("async one"), config("async"))
        done = await graph.ainvoke(ask("async two"), config("async"))
        history = [s async for s in graph.aget_state_history(config("async"))]
        return len(done["messages"]), len(history)

    messages, checkpoints = asyncio.run(run())
    assert messages == 8 and checkpoints == 10


def test_delete_thread_removes_the_session(stack: DevStack, key: str) -> None:
    saver = KontexSaver(base_url=stack.base, api_key=key)
    build(saver).invoke(ask("to delete"), config("gone"))
    assert saver.get_tuple(config("gone")) is not None
    saver.delete_thread("gone")
    assert saver.get_tuple(config("gone")) is None
    assert list(saver.list(config("gone"))) == []
