"""KontexSession under a real OpenAI Agents SDK agent (a scripted model, no network): several
turns with a tool call, a restart, the protocol's pop and clear."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.items import ModelResponse
from agents.memory import Session
from agents.models.interface import Model
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
