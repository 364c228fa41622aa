"""KontexSaver: LangGraph's own conformance suite, and a real ReAct-style graph run on it
(resume after a restart, state history, a fork from an earlier checkpoint), sync and async."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import Capability

from kontex_client import Kontex, NotFoundError
from kontex_client.langgraph import KontexSaver, thread_doc_id
from tests.client.conftest import UNLIMITED, new_account, start_drained
from tests.client.legacy_saver import KontexSaver as LegacySaver
from tests.client.react_agent import ask, build
from tests.e2e.stack import DevStack, create_key, stop_dev

pytestmark = pytest.mark.e2e


class SyncDriven(KontexSaver):
    """The conformance suite calls the async methods: these run the sync ones (in the test's
    thread), so the same suite checks the sync path too."""

    async def aget_tuple(self, config: Any) -> Any:
        return self.get_tuple(config)

    async def alist(self, config: Any, **kwargs: Any) -> Any:
        for item in self.list(config, **kwargs):
            yield item

    async def aput(self, *args: Any) -> Any:
        return self.put(*args)

    async def aput_writes(self, *args: Any, **kwargs: Any) -> None:
        self.put_writes(*args, **kwargs)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)

    async def acopy_thread(self, source: str, target: str) -> None:
        self.copy_thread(source, target)

    async def aprune(self, thread_ids: Any, *, strategy: str = "keep_latest") -> None:
        self.prune(thread_ids, strategy=strategy)

    async def adelete_for_runs(self, run_ids: Any) -> None:
        self.delete_for_runs(run_ids)


@pytest.mark.parametrize("kind", [KontexSaver, SyncDriven], ids=["async", "sync"])
def test_langgraph_conformance_suite(stack: DevStack, key: str, kind: type[KontexSaver]) -> None:
    @checkpointer_test(name=kind.__name__)
    async def saver() -> Any:
        yield kind(base_url=stack.base, api_key=key)

    report = asyncio.run(validate(saver))
    failures = {name: r.failures for name, r in report.results.items() if r.failures}
    assert report.passed_all_base(), failures
    # the whole suite: delete_for_runs, copy_thread and prune too
    assert set(report.results) == {c.value for c in Capability}, report.results.keys()
    assert not failures, failures


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
        latest = client.checkpoints.get("readable")
        assert latest is not None
        session = client.sessions.get(latest.session_id)
        assert session.name == "langgraph readable"
        assert session.metadata == {"langgraph": {"thread_id": "readable"}}
        timeline = client.sessions.timeline(latest.session_id)
        assert len(timeline) == 5 and all(e.label.startswith("checkpoint ") for e in timeline)
        bundle = client.snapshots.bundle(timeline[-1].id)
        # after the first, each checkpoint was a delta write: it stored little
        assert all(e.stored_bytes < timeline[0].stored_bytes + 4000 for e in timeline[1:])
    assert [m["role"] for m in bundle.messages] == ["user", "assistant", "tool", "assistant"]
    assert bundle.messages[0]["content"] == "what is a manifest"
    assert bundle.messages[1]["tool_calls"][0]["function"]["name"] == "lookup"
    assert bundle.messages[2]["tool_call_id"] == bundle.messages[1]["tool_calls"][0]["id"]
    paths = {f["path"] for f in bundle.files}
    assert "langgraph/checkpoint.json" in paths
    assert not any(p == "langgraph/channels/messages" for p in paths)  # mapped, not a file


def test_a_foreign_keys_thread_reads_as_missing(stack: DevStack, key: str) -> None:
    build(KontexSaver(base_url=stack.base, api_key=key)).invoke(ask("mine"), config("owned"))
    stranger = KontexSaver(base_url=stack.base, api_key=new_account(stack))
    assert stranger.get_tuple(config("owned")) is None
    assert list(stranger.list(config("owned"))) == []
    assert list(stranger.list(None)) == []


def test_agents_resume_exactly_after_a_restart_and_old_threads_still_read(
    tmp_path: Path,
) -> None:
    # Given a thread written by today's saver, and one by the saver before the checkpoint API
    running = start_drained(tmp_path / "data", UNLIMITED)
    try:
        key = create_key(running.data_dir, "restart")
        done = build(KontexSaver(base_url=running.base, api_key=key)).invoke(
            ask("before the restart"), config("current")
        )
        legacy = build(LegacySaver(base_url=running.base, api_key=key))
        old = legacy.invoke(ask("written long ago"), config("legacy"))
        old_history = list(legacy.get_state_history(config("legacy")))
        # a pending write left waiting in the old document, as an interrupted step leaves it
        last = old_history[0].config
        legacy.checkpointer.put_writes(last, [("messages", [])], "task-left")
    finally:
        stop_dev(running)

    # When the server restarts (`kontex dev` migrates: the old thread is indexed)
    running = start_drained(tmp_path / "data", UNLIMITED)
    try:
        saver = KontexSaver(base_url=running.base, api_key=key)
        graph = build(saver)
        # Then each goes on exactly where it stopped
        assert graph.get_state(config("current")).values["messages"] == done["messages"]
        more = graph.invoke(ask("after the restart"), config("current"))
        assert more["messages"][:4] == done["messages"] and len(more["messages"]) == 8

        state = graph.get_state(config("legacy"))
        assert state.values["messages"] == old["messages"]
        history = list(graph.get_state_history(config("legacy")))
        assert [h.config for h in history] == [h.config for h in old_history]
        assert [h.metadata for h in history] == [h.metadata for h in old_history]
        pending = saver.get_tuple(last)
        assert pending is not None and ("task-left", "messages", []) in pending.pending_writes
        resumed = graph.invoke(ask("and now"), config("legacy"))
        assert resumed["messages"][:4] == old["messages"] and len(resumed["messages"]) == 8
        # its document is gone: the index holds the thread now
        with Kontex(running.base, key) as client, pytest.raises(NotFoundError):
            client.threads.get(thread_doc_id("legacy"))
    finally:
        stop_dev(running)


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
