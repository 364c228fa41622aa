"""A snapshot's messages made valid for the Anthropic Messages and OpenAI Chat Completions APIs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kontex.domain.models import Message
from kontex.services.restore import NO_RESULT, restore, to_anthropic, to_openai


def use(call_id: str, name: str = "grep", **input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": input}


def result(call_id: str, content: Any = "ok", **extra: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": call_id, "content": content, **extra}


def anthropic_valid(messages: list[dict[str, Any]]) -> None:
    """The Messages API's rules: roles user/assistant alternate, and every tool_use is answered
    by a tool_result at the start of the next (user) message, which answers nothing else."""
    roles = [m["role"] for m in messages]
    assert set(roles) <= {"user", "assistant"}
    assert all(x != y for x, y in zip(roles, roles[1:], strict=False)), roles
    for i, message in enumerate(messages):
        blocks = message["content"] if isinstance(message["content"], list) else []
        uses = [b["id"] for b in blocks if b.get("type") == "tool_use"]
        if message["role"] == "assistant" and uses:
            following = messages[i + 1]["content"]
            answered = [b["tool_use_id"] for b in following if b.get("type") == "tool_result"]
            assert sorted(answered) == sorted(uses)
            firsts = [b.get("type") for b in following][: len(uses)]
            assert firsts == ["tool_result"] * len(uses)  # results come first
        if message["role"] == "user":
            previous = messages[i - 1]["content"] if i else []
            asked = {b["id"] for b in previous if isinstance(b, dict) and b["type"] == "tool_use"}
            for block in blocks:
                if block.get("type") == "tool_result":
                    assert block["tool_use_id"] in asked


def openai_valid(messages: list[dict[str, Any]]) -> None:
    """Chat Completions' rules: each assistant tool call is answered by a `tool` message among
    those right after it, and a `tool` message answers a call of that assistant message."""
    for i, message in enumerate(messages):
        assert message["role"] in ("system", "user", "assistant", "tool")
        if message["role"] == "assistant" and message.get("tool_calls"):
            for call in message["tool_calls"]:
                assert call["type"] == "function"
                json.loads(call["function"]["arguments"])
            wanted = {c["id"] for c in message["tool_calls"]}
            j = i + 1
            while j < len(messages) and messages[j]["role"] == "tool":
                wanted.discard(messages[j]["tool_call_id"])
                j += 1
            assert not wanted, wanted
        if message["role"] == "tool":
            k = i - 1
            while messages[k]["role"] == "tool":
                k -= 1
            calls = {c["id"] for c in messages[k].get("tool_calls") or []}
            assert message["tool_call_id"] in calls
            assert isinstance(message["content"], str)


AGENT_RUN: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Find login."},
    {
        "role": "assistant",
        "content": [{"type": "text", "text": "Searching."}, use("t1", q="login"), use("t2")],
    },
    {"role": "tool", "content": [result("t1", "auth.py:3")]},
    {"role": "tool", "content": [result("t2", [{"type": "text", "text": "none"}])]},
    {"role": "assistant", "content": "In auth.py."},
    {"role": "user", "content": "Thanks"},
]


def test_anthropic_separates_the_system_and_pairs_tool_results() -> None:
    out = to_anthropic(AGENT_RUN)
    assert out.system == "You are terse."
    anthropic_valid(out.messages)
    assert out.messages[0] == {"role": "user", "content": "Find login."}
    assert out.messages[2]["role"] == "user"  # the two tool messages, merged into one user turn
    assert [b["tool_use_id"] for b in out.messages[2]["content"]] == ["t1", "t2"]
    assert out.repairs == []


def test_openai_has_tool_calls_and_tool_messages() -> None:
    out = to_openai(AGENT_RUN)
    assert out.system is None
    openai_valid(out.messages)
    assert out.messages[0] == {"role": "system", "content": "You are terse."}
    assistant = out.messages[2]
    assert assistant["content"] == "Searching."
    assert assistant["tool_calls"][0] == {
        "id": "t1",
        "type": "function",
        "function": {"name": "grep", "arguments": '{"q": "login"}'},
    }
    assert out.messages[3] == {"role": "tool", "tool_call_id": "t1", "content": "auth.py:3"}
    assert out.messages[4] == {"role": "tool", "tool_call_id": "t2", "content": "none"}
    assert out.messages[5] == {"role": "assistant", "content": "In auth.py."}
    assert out.repairs == []


def test_a_call_without_result_gets_an_error_result_in_both() -> None:
    run = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [use("t1")]},  # snapshot taken before the result
    ]
    anthropic = to_anthropic(run)
    anthropic_valid(anthropic.messages)
    assert anthropic.messages[-1]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": NO_RESULT, "is_error": True}
    ]
    assert len(anthropic.repairs) == 1 and "t1" in anthropic.repairs[0]
    openai = to_openai(run)
    openai_valid(openai.messages)
    assert openai.messages[-1] == {"role": "tool", "tool_call_id": "t1", "content": NO_RESULT}


def test_an_unanswered_call_in_the_middle_is_answered_before_the_next_turn() -> None:
    run = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [use("t1"), use("t2")]},
        {"role": "user", "content": [result("t2"), {"type": "text", "text": "and?"}]},
        {"role": "assistant", "content": "done"},
    ]
    out = to_anthropic(run)
    anthropic_valid(out.messages)
    assert [b.get("tool_use_id") for b in out.messages[2]["content"]] == ["t1", "t2", None]
    openai_valid(to_openai(run).messages)


def test_an_orphan_result_becomes_text() -> None:
    run = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "tool", "content": [result("ghost", "boo")]},
    ]
    out = to_anthropic(run)
    anthropic_valid(out.messages)
    assert out.messages[-1] == {"role": "user", "content": "[tool result ghost] boo"}
    assert "ghost" in out.repairs[0]
    openai = to_openai(run)
    openai_valid(openai.messages)
    assert openai.messages[-1] == {"role": "user", "content": "[tool result ghost] boo"}


def test_openai_shaped_messages_convert_to_anthropic_blocks() -> None:
    run = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
    ]
    out = to_anthropic(run)
    anthropic_valid(out.messages)
    assert out.messages[1]["content"] == [use("call_1", "weather", city="Oslo")]
    assert out.messages[2]["content"] == [result("call_1", "rain")]
    back = to_openai(run)
    openai_valid(back.messages)
    assert back.messages[1]["tool_calls"][0]["function"]["arguments"] == '{"city": "Oslo"}'


def test_images_and_thinking() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA"}}
    run = [
        {"role": "user", "content": [{"type": "text", "text": "what is it?"}, image]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm"},  # no signature: the API refuses it
                {"type": "thinking", "thinking": "ok", "signature": "sig"},
                {"type": "text", "text": "a dot"},
            ],
        },
    ]
    out = to_anthropic(run)
    assert out.messages[0]["content"][1] == image
    assert [b["type"] for b in out.messages[1]["content"]] == ["thinking", "text"]
    assert out.repairs == ["a thinking block without a signature was dropped"]
    openai = to_openai(run)
    assert openai.messages[0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AA"},
    }
    assert openai.messages[1] == {"role": "assistant", "content": "a dot"}


def test_a_system_message_between_call_and_result_moves_after_the_result() -> None:
    run = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [use("t1")]},
        {"role": "system", "content": "Remember: be careful."},
        {"role": "tool", "content": [result("t1")]},
    ]
    out = to_openai(run)
    openai_valid(out.messages)
    assert [m["role"] for m in out.messages] == ["user", "assistant", "tool", "system"]
    assert to_anthropic(run).system == "Remember: be careful."


def test_restore_takes_domain_messages_and_refuses_other_formats() -> None:
    messages = [Message.model_validate(m) for m in AGENT_RUN]
    assert restore(messages, "anthropic").messages == to_anthropic(AGENT_RUN).messages
    with pytest.raises(ValueError):
        restore(messages, "gemini")  # type: ignore[arg-type]


def test_an_unanswered_call_is_answered_from_the_bundles_recorded_tool_calls() -> None:
    run = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [use("t1"), use("t2"), use("t3")]},
    ]
    recorded = [
        {"id": "t1", "tool": "grep", "output": {"hits": 2}, "status": "success"},
        {"id": "t2", "tool": "grep", "output": "boom", "status": "error"},
        {"id": "t3", "tool": "grep", "status": "pending"},  # no result yet: an error result
    ]
    out = restore(run, "anthropic", tool_calls=recorded)
    anthropic_valid(out.messages)
    assert out.messages[-1]["content"] == [
        result("t1", '{"hits": 2}'),
        result("t2", "boom", is_error=True),
        result("t3", NO_RESULT, is_error=True),
    ]
    assert len(out.repairs) == 3
    openai = restore(run, "openai", tool_calls=recorded)
    openai_valid(openai.messages)
    assert [m["content"] for m in openai.messages[-3:]] == ['{"hits": 2}', "boom", NO_RESULT]
