"""KontexSession under a real OpenAI Agents SDK agent (a scripted model, no network): several
turns with a tool call, a restart, the protocol's pop and clear."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, function_tool, set_tracing_disabled
from agents.items import ModelResponse
from agents.memory import Session, SessionSettings
from agents.models.interface import Model
from agents.testing import ScriptedModel as SDKScriptedModel
from agents.testing import assistant_message
from agents.usage import Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from kontex_client import Kontex
from kontex_client.openai_agents import KontexSession
from tests.e2e.stack import DevStack

pytestmark = pytest.mark.e2e
set_tracing_disabled(True)  # no trace export (it would need an OpenAI key)


@function_tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"18C and clear in {city}"


class ScriptedModel(Model):
    """Calls ``weather`` when asked about weather, then answers from its result; echoes the
    number of items it was given otherwise (so a test sees the history reach the model)."""

    def __init__(self) -> None:
        self.inputs: list[list[Any]] = []

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kw: Any
    ) -> ModelResponse:
        items = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        self.inputs.append(items)
        last = items[-1]
        if last.get("type") == "function_call_output":
            output = [self._text(f"It is {last['output']}.")]
        elif "weather" in str(last.get("content", "")):
            output = [
                ResponseFunctionToolCall(
                    type="function_call",
                    call_id=f"call_{len(self.inputs)}",
                    name="weather",
                    arguments=json.dumps({"city": "Paris"}),
                    id=f"fc_{len(self.inputs)}",
                    status="completed",
                )
            ]
        else:
            output = [self._text(f"I have seen {len(items)} items.")]
        return ModelResponse(output=output, usage=Usage(), response_id=None)

    def _text(self, text: str) -> ResponseOutputMessage:
        return ResponseOutputMessage(
            type="message",
            id=f"msg_{len(self.inputs)}",
            role="assistant",
            status="completed",
            content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
        )

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError


def agent(model: ScriptedModel) -> Agent[Any]:
    return Agent(name="assistant", instructions="Be brief.", model=model, tools=[weather])


def test_turns_survive_a_restart_in_order(stack: DevStack, key: str) -> None:
    async def first_process() -> list[Any]:
        session = KontexSession("chat-1", base_url=stack.base, api_key=key)
        assert isinstance(session, Session)  # the SDK's runtime-checkable protocol
        model = ScriptedModel()
        one = await Runner.run(agent(model), "what is the weather in Paris?", session=session)
        assert one.final_output == "It is 18C and clear in Paris."
        two = await Runner.run(agent(model), "thanks", session=session)
        assert two.final_output == "I have seen 5 items."  # the whole history reached the model
        return await session.get_items()

    async def second_process() -> tuple[list[Any], str]:
        session = KontexSession("chat-1", base_url=stack.base, api_key=key)
        before = await session.get_items()
        model = ScriptedModel()
        three = await Runner.run(agent(model), "and now?", session=session)
        return before, three.final_output

    items = asyncio.run(first_process())
    kinds = [i.get("type") or i.get("role") for i in items]
    assert kinds == [
        "user",
        "function_call",
        "function_call_output",
        "message",
        "user",
        "message",
    ]
    before, answer = asyncio.run(second_process())
    assert before == items  # exactly as added, in order, after the restart
    assert answer == "I have seen 7 items."

    # Each turn is a snapshot of the Kontex session, readable as messages
    ids = asyncio.run(KontexSession("chat-1", base_url=stack.base, api_key=key).kontex_ids())
    assert ids is not None
    with Kontex(stack.base, key) as client:
        timeline = client.sessions.timeline(ids[0])
        bundle = client.snapshots.bundle(timeline[-1].id)
    assert len(timeline) >= 3
    assert [m["role"] for m in bundle.messages[:3]] == ["user", "assistant", "tool"]
    assert bundle.messages[1]["tool_calls"][0]["function"]["name"] == "weather"
    assert bundle.messages[2]["tool_call_id"] == bundle.messages[1]["tool_calls"][0]["id"]


def test_one_session_object_across_event_loops(stack: DevStack, key: str) -> None:
    # Given one session object, as an app keeps it between requests
    session = KontexSession("chat-loops", base_url=stack.base, api_key=key)

    async def turn(text: str) -> list[Any]:
        await session.add_items([{"role": "user", "content": text}])
        return await session.get_items()

    # When each request runs in its own event loop (asyncio.run closes the loop after it)
    first = asyncio.run(turn("one"))
    second = asyncio.run(turn("two"))

    # Then the second loop works (no "Event loop is closed") and sees the first loop's turn
    assert first == [{"role": "user", "content": "one"}]
    assert second == [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}]

    async def closed() -> list[Any]:
        await session.close()  # this loop's client, made by the session
        return await session.get_items()  # a new one is made on next use

    assert asyncio.run(closed()) == second


def test_pop_clear_and_limit(stack: DevStack, key: str) -> None:
    async def run() -> None:
        session = KontexSession("chat-2", base_url=stack.base, api_key=key)
        assert await session.get_items() == [] and await session.pop_item() is None
        await session.add_items([{"role": "user", "content": "a"}])
        await session.add_items(
            [{"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
        )
        assert await session.get_items(limit=2) == [
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ]
        assert await session.pop_item() == {"role": "user", "content": "c"}
        assert [i["content"] for i in await session.get_items()] == ["a", "b"]
        await session.clear_session()
        assert await session.get_items() == []
        ids = await session.kontex_ids()
        assert ids is not None
        # history is kept: every change was a snapshot
        timeline = await session.client.sessions.timeline(ids[0])
        assert [e.label.split(": ")[1] for e in timeline] == [
            "1 item(s) added",
            "2 item(s) added",
            "last item removed",
            "cleared",
        ]

    asyncio.run(run())


# -- as the SDK tests its own sessions (tests/memory/test_session.py, test_session_limit.py) --


def _run_sync(agent: Agent[Any], text: str, **kwargs: Any) -> Any:
    """``Runner.run_sync`` in a thread with its own event loop, as the SDK's tests run it."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return Runner.run_sync(agent, text, **kwargs)
    finally:
        loop.close()


async def run_agent(method: str, agent: Agent[Any], text: str, **kwargs: Any) -> Any:
    if method == "run":
        return await Runner.run(agent, text, **kwargs)
    if method == "run_sync":
        return await asyncio.to_thread(_run_sync, agent, text, **kwargs)
    result = Runner.run_streamed(agent, text, **kwargs)
    async for _ in result.stream_events():
        pass
    return result


RUNNER_METHODS = ["run", "run_sync", "run_streamed"]


@pytest.mark.parametrize("method", RUNNER_METHODS)
def test_runner_keeps_history(stack: DevStack, key: str, method: str) -> None:
    async def run() -> None:
        session = KontexSession(f"runner-{method}", base_url=stack.base, api_key=key)
        model = SDKScriptedModel()
        bot = Agent(name="test", model=model)
        model.enqueue([assistant_message("San Francisco")])
        one = await run_agent(method, bot, "Where is the Golden Gate Bridge?", session=session)
        assert one.final_output == "San Francisco"
        model.enqueue([assistant_message("California")])
        two = await run_agent(method, bot, "What state is it in?", session=session)
        assert two.final_output == "California"
        last_input = model.calls[-1].input
        assert isinstance(last_input, list)
        assert [i.get("role") for i in last_input] == ["user", "assistant", "user"]
        assert last_input[0]["content"] == "Where is the Golden Gate Bridge?"
        items = await session.get_items()
        assert len(items) == 4 and items[-1]["content"][0]["text"] == "California"
        await session.close()

    asyncio.run(run())


@pytest.mark.parametrize("method", RUNNER_METHODS)
def test_runner_honours_session_settings_limit(stack: DevStack, key: str, method: str) -> None:
    async def run() -> None:
        session = KontexSession(f"limit-{method}", base_url=stack.base, api_key=key)
        model = SDKScriptedModel()
        bot = Agent(name="test", model=model)
        for n in (1, 2, 3):
            model.enqueue([assistant_message(f"Reply {n}")])
            await run_agent(method, bot, f"Message {n}", session=session)
        assert len(await session.get_items()) == 6

        # the run's settings override the session's (none here)
        model.enqueue([assistant_message("Reply 4")])
        settings = RunConfig(session_settings=SessionSettings(limit=2))
        await run_agent(method, bot, "Message 4", session=session, run_config=settings)
        seen = model.calls[-1].input
        assert isinstance(seen, list) and len(seen) == 3
        assert seen[0]["content"] == "Message 3" and seen[2]["content"] == "Message 4"

        # the session's own settings
        limited = KontexSession(
            f"limit-{method}",
            base_url=stack.base,
            api_key=key,
            session_settings=SessionSettings(limit=4),
        )
        model.enqueue([assistant_message("Reply 5")])
        await run_agent(method, bot, "Message 5", session=limited)
        seen = model.calls[-1].input
        assert isinstance(seen, list) and len(seen) == 5
        assert seen[0]["content"] == "Message 3"

    asyncio.run(run())


def test_get_items_limit_explicit_wins(stack: DevStack, key: str) -> None:
    async def run() -> None:
        items = [{"role": "user", "content": str(n)} for n in range(6)]
        plain = KontexSession("limits", base_url=stack.base, api_key=key)
        assert plain.session_settings == SessionSettings()  # as SQLiteSession's default
        await plain.add_items(items)
        session = KontexSession(
            "limits", base_url=stack.base, api_key=key, session_settings=SessionSettings(limit=2)
        )
        assert await session.get_items() == items[-2:]
        assert await session.get_items(limit=3) == items[-3:]  # the argument wins
        assert await session.get_items(limit=100) == items
        assert await session.get_items(limit=0) == []  # as SQLiteSession (SQL LIMIT 0)
        assert await plain.get_items() == items
        assert await plain.get_items(limit=1) == items[-1:]
        # settings given as a dict, as the SDK accepts them
        as_dict = KontexSession(
            "limits", base_url=stack.base, api_key=key, session_settings={"limit": 1}
        )
        assert as_dict.session_settings == SessionSettings(limit=1)
        assert await as_dict.get_items() == items[-1:]
        for each in (plain, session, as_dict):
            await each.close()

    asyncio.run(run())


HOSTILE = [
    "'; DROP TABLE agent_messages; --",
    'Robert"); DELETE FROM snapshots WHERE ("1"="1',
    "nul \x00 inside, and at the end \x00",
    "emoji 🧪🏳️‍🌈👩🏽‍💻 and a lone surrogate-free astral 𝄞",
    "RTL \u202eevil\u202c, zero-width \u200b\u200d, combining e\u0301",
    "control \x01\x1f\x7f tab\t cr\r lf\n backslash \\ slash /",
    '{"role": "system", "content": "not really json"}',
    "%s %d {0} ${x} $(rm -rf /) `id` <script>alert(1)</script>",
    "x" * 300_000,
    "",
    " leading and trailing spaces  ",
]


def test_hostile_strings_round_trip_exactly(stack: DevStack, key: str) -> None:
    items: list[Any] = [{"role": "user", "content": text} for text in HOSTILE]
    items += [
        {"role": "assistant", "content": [{"type": "output_text", "text": HOSTILE[3]}]},
        {"type": "function_call", "call_id": "c'1", "name": "q", "arguments": HOSTILE[0]},
        {"type": "function_call_output", "call_id": "c'1", "output": HOSTILE[2]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "🤔"}]},
        {"role": "user", "content": "keys too", "metadata": {"ключ 🔑": HOSTILE[1]}},
    ]

    async def run() -> list[Any]:
        session = KontexSession("hostile 'id' 🧪\x00", base_url=stack.base, api_key=key)
        for item in items:
            await session.add_items([item])
        assert await session.get_items() == items
        assert await session.pop_item() == items[-1]
        await session.close()
        return await KontexSession(
            "hostile 'id' 🧪\x00", base_url=stack.base, api_key=key
        ).get_items()

    assert asyncio.run(run()) == items[:-1]  # read back by a new object, as by a new process


def _writer_items(writer: int, count: int) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"writer {writer} item {n}"} for n in range(count)]


def _check_interleaving(got: list[Any], writers: int, count: int) -> None:
    """Every writer's items are there once each, in its own order."""
    assert len(got) == writers * count
    for writer in range(writers):
        mine = [i for i in got if i["content"].startswith(f"writer {writer} ")]
        assert mine == _writer_items(writer, count)


def test_many_concurrent_writers_on_one_object(stack: DevStack, key: str) -> None:
    async def run() -> list[Any]:
        session = KontexSession("concurrent-tasks", base_url=stack.base, api_key=key)

        async def writer(n: int) -> None:
            items = _writer_items(n, 6)
            for pair in (items[0:2], items[2:4], items[4:6]):  # as Runner adds a turn
                await session.add_items(pair)
                await session.get_items()

        await asyncio.gather(*(writer(n) for n in range(20)))
        return await session.get_items()

    _check_interleaving(asyncio.run(run()), writers=20, count=6)


def test_two_objects_in_two_threads_on_one_session(stack: DevStack, key: str) -> None:
    # Given two session objects on one new session id, each in a thread with its own loop
    start = threading.Barrier(2)
    ids: list[tuple[str, str] | None] = [None, None]

    def thread(n: int) -> None:
        async def run() -> None:
            session = KontexSession("concurrent-threads", base_url=stack.base, api_key=key)
            start.wait()
            for item in _writer_items(n, 25):
                await session.add_items([item])
            ids[n] = await session.kontex_ids()
            await session.close()

        asyncio.run(run())

    threads = [threading.Thread(target=thread, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Then they made one Kontex session and neither lost nor reordered the other's items
    assert ids[0] is not None and ids[0] == ids[1]
    got = asyncio.run(
        KontexSession("concurrent-threads", base_url=stack.base, api_key=key).get_items()
    )
    _check_interleaving(got, writers=2, count=25)


def test_concurrent_pops_take_each_item_once(stack: DevStack, key: str) -> None:
    async def run() -> None:
        session = KontexSession("concurrent-pops", base_url=stack.base, api_key=key)
        other = KontexSession("concurrent-pops", base_url=stack.base, api_key=key)
        items = _writer_items(0, 12)
        await session.add_items(items)
        popped = await asyncio.gather(
            *(s.pop_item() for s in [session, other] * 7)  # 14 pops of 12 items
        )
        assert sorted(p["content"] for p in popped if p) == sorted(i["content"] for i in items)
        assert popped.count(None) == 2
        assert await session.get_items() == []

    asyncio.run(run())


def test_close_is_synchronous_as_sqlite_sessions(stack: DevStack, key: str) -> None:
    session = KontexSession("closing", base_url=stack.base, api_key=key)
    asyncio.run(session.add_items([{"role": "user", "content": "kept"}]))
    session.close()  # as SQLiteSession.close(): no await outside a loop

    async def inside() -> list[Any]:
        items = await session.get_items()
        await session.close()  # in a loop it can also be awaited: waits for the client
        return items

    assert asyncio.run(inside()) == [{"role": "user", "content": "kept"}]
    assert asyncio.run(session.get_items()) == [{"role": "user", "content": "kept"}]
