"""to_anthropic / to_openai: any bundle, either capture shape, gives a request the target API
accepts: every tool call answered right after it, no orphan result, roles alternating."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from kontex_client import Kontex, to_anthropic, to_openai
from kontex_client._restore import NO_RESULT

ANTHROPIC_SHAPE = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "weather in Paris?"},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
        ],
    },
    {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}],
    },
    {"role": "assistant", "content": "18C in Paris."},
]
OPENAI_SHAPE = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "weather in Paris?"},
    {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
    {"role": "assistant", "content": "18C in Paris."},
]


def check_anthropic(system: str | None, messages: list[dict[str, Any]]) -> None:
    """The Messages API's rules: alternating roles starting with user; each tool_use answered
    by a tool_result in the very next message; no tool_result without its tool_use."""
    assert messages[0]["role"] == "user"
    for a, b in zip(messages, messages[1:], strict=False):
        assert a["role"] != b["role"]
    for i, message in enumerate(messages):
        blocks = message["content"] if isinstance(message["content"], list) else []
        uses = [b["id"] for b in blocks if b.get("type") == "tool_use"]
        if uses:
            nxt = messages[i + 1]["content"]
            answered = [b["tool_use_id"] for b in nxt if b.get("type") == "tool_result"]
            assert sorted(answered) == sorted(uses)
        for block in blocks:
            if block.get("type") == "tool_result":
                before = messages[i - 1]["content"]
                assert any(b.get("id") == block["tool_use_id"] for b in before)


def check_openai(messages: list[dict[str, Any]]) -> None:
    for i, message in enumerate(messages):
        calls = [c["id"] for c in message.get("tool_calls") or []]
        if calls:
            following = messages[i + 1 : i + 1 + len(calls)]
            assert [m["role"] for m in following] == ["tool"] * len(calls)
            assert sorted(m["tool_call_id"] for m in following) == sorted(calls)
            for call in message["tool_calls"]:
                json.loads(call["function"]["arguments"])
        if message["role"] == "tool":
            owner = next(m for m in reversed(messages[:i]) if m["role"] != "tool")
            assert message["tool_call_id"] in [c["id"] for c in owner.get("tool_calls") or []]


@pytest.mark.parametrize("shape", [ANTHROPIC_SHAPE, OPENAI_SHAPE])
def test_both_capture_shapes_restore_alike(shape: list[dict[str, Any]]) -> None:
    system, messages = to_anthropic({"messages": shape})
    assert system == "You are terse."
    check_anthropic(system, messages)
    assert messages[1]["content"][1] == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "weather",
        "input": {"city": "Paris"},
    }
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}
    ]
    assert messages[-1] == {"role": "assistant", "content": "18C in Paris."}

    openai = to_openai({"messages": shape})
    check_openai(openai)
    assert openai[0] == {"role": "system", "content": "You are terse."}
    assert openai[2]["tool_calls"][0]["function"]["name"] == "weather"
    assert openai[3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"}


def test_a_window_that_cut_the_call_keeps_its_orphan_result_as_text() -> None:
    bundle = {"messages": ANTHROPIC_SHAPE[3:]}  # starts at the tool_result
    system, messages = to_anthropic(bundle)
    assert system is None
    check_anthropic(system, messages)
    kept = [
        {"role": "user", "content": "[tool result toolu_1] 18C"},
        {"role": "assistant", "content": "18C in Paris."},
    ]
    assert messages == kept
    assert to_openai(bundle) == kept


def test_an_unanswered_call_is_answered_from_the_bundles_tool_calls_or_by_an_error() -> None:
    cut = ANTHROPIC_SHAPE[:3]  # ends with the tool_use
    recorded = [{"id": "toolu_1", "tool": "weather", "output": {"temp": 18}, "status": "error"}]
    _, messages = to_anthropic({"messages": cut, "tool_calls": recorded})
    check_anthropic(None, messages)
    assert messages[-1]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_1",
            "content": '{"temp": 18}',
            "is_error": True,
        }
    ]
    check_openai(to_openai({"messages": cut, "tool_calls": recorded}))
    # a call still pending (or not recorded) has no result: an error result says so
    pending = [{"id": "toolu_1", "tool": "weather", "status": "pending"}]
    no_result = {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True}
    _, messages = to_anthropic({"messages": cut, "tool_calls": pending})
    check_anthropic(None, messages)
    assert messages[-1] == {"role": "user", "content": [{**no_result, "content": NO_RESULT}]}
    openai = to_openai({"messages": cut})
    check_openai(openai)
    assert openai[-1] == {"role": "tool", "tool_call_id": "toolu_1", "content": NO_RESULT}


def test_a_late_result_is_moved_up_and_same_role_turns_merge() -> None:
    shape = [
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        ANTHROPIC_SHAPE[2],
        {"role": "user", "content": "interjection"},
        ANTHROPIC_SHAPE[3],
    ]
    _, messages = to_anthropic({"messages": shape})
    check_anthropic(None, messages)
    assert messages[0]["content"] == [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert messages[2]["content"][0]["type"] == "tool_result"
    check_openai(to_openai({"messages": shape}))


def test_a_proxy_captured_snapshot_resumes_through_the_anthropic_sdk(
    client: Kontex, upstream: Any
) -> None:
    """The bundle of a real snapshot, restored, is accepted by the anthropic SDK's request
    validation and sent (to the fake upstream): the resume path end to end."""
    session = client.sessions.create("resume")
    task = client.tasks.create(session.id, "t")
    snap = client.snapshots.create(task.id, "s", messages=OPENAI_SHAPE)
    system, messages = to_anthropic(client.snapshots.bundle(snap.id))
    sdk = anthropic.Anthropic(api_key="sk-ant-x", base_url=upstream.url, max_retries=0)
    reply = sdk.messages.create(
        model="claude-fake",
        max_tokens=20,
        system=system or "",
        messages=messages,  # type: ignore[arg-type]
    )
    assert reply.type == "message"
    assert upstream.requests[-1][1]["messages"] == messages
