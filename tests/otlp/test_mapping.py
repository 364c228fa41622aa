"""Mapper tests: SDK-recorded spans -> protobuf -> decode -> mapping, per attribute generation."""

from __future__ import annotations

from typing import Any

from kontex.otlp import mapping
from kontex.otlp.decode import PROTOBUF, decode_request
from kontex.services.conversation import conversation_tool_calls
from tests.otlp import spans as fixtures


def decoded(build: Any) -> list[dict[str, Any]]:
    body = fixtures.protobuf(fixtures.record(build))
    return sorted(
        decode_request(body, PROTOBUF, None).spans, key=lambda s: s["start_time_unix_nano"]
    )


def test_openllmetry_indexed_attributes() -> None:
    workflow, first, tool, second = decoded(fixtures.openllmetry_agent)
    assert [mapping.kind_of(s) for s in (workflow, first, tool, second)] == [
        "task",
        "llm",
        "tool",
        "llm",
    ]
    assert mapping.session_hint(first) == "checkout-bot"
    assert mapping.task_name(workflow) == "checkout"

    call = mapping.llm_call(first)
    assert [m.role for m in call.messages] == ["system", "user", "assistant"]
    assert call.messages[0].content == "You are a shop assistant."
    assert call.messages[2].content == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_01", "name": "get_cart", "input": {"user": "u1"}},
    ]
    assert call.reasoning == ["I should look the cart up."]
    assert call.model == "claude-sonnet-4-5-20250929"
    assert call.token_total == 150

    later = mapping.llm_call(second)
    assert [m.role for m in later.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert later.messages[-1].content == "You have socks in your cart."
    calls = conversation_tool_calls(later.messages, None)
    assert [(c.id, c.tool, c.input, c.output) for c in calls] == [
        ("toolu_01", "get_cart", {"user": "u1"}, '{"items": ["socks"]}')
    ]

    executed = mapping.tool_execution(tool)
    assert executed.tool == "get_cart" and executed.status == "success"
    assert executed.output == {"items": ["socks"]}
    assert executed.input == {"user": "u1"}  # Traceloop's {"args": [], "kwargs": ...} unwrapped


def test_current_semantic_conventions_parts() -> None:
    agent, chat, tool = decoded(fixtures.semconv_agent)
    assert [mapping.kind_of(s) for s in (agent, chat, tool)] == ["task", "llm", "tool"]
    assert mapping.session_hint(chat) == "conv-42"
    assert mapping.task_name(agent) == "planner"
    call = mapping.llm_call(chat)
    assert [m.role for m in call.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert call.messages[0].content == "Plan trips."
    assert call.messages[2].content == [
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}}
    ]
    assert call.messages[3].content == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "rain"}
    ]
    assert call.messages[4].content == "Rain in Paris: visit the Louvre."
    assert call.reasoning == ["It rains, so suggest museums."]
    assert call.token_total == 59 and call.model == "gpt-5"
    failed = mapping.tool_execution(tool)
    assert (failed.id, failed.tool, failed.status, failed.input) == (
        "call_1",
        "weather",
        "error",
        {"city": "Paris"},
    )


def test_legacy_llm_prompts() -> None:
    (span,) = decoded(fixtures.legacy_call)
    assert mapping.kind_of(span) == "llm"
    call = mapping.llm_call(span)
    assert [(m.role, m.content) for m in call.messages] == [("user", "Say hi"), ("assistant", "hi")]
    assert call.token_total == 4 and call.model == "text-davinci-003"
    assert mapping.session_hint(span) == "legacy-session"


def test_openinference_messages() -> None:
    (span,) = decoded(fixtures.openinference_call)
    assert mapping.kind_of(span) == "llm"
    call = mapping.llm_call(span)
    assert [(m.role, m.content) for m in call.messages] == [
        ("system", "Be terse."),
        ("user", "2+2?"),
        ("assistant", "4"),
    ]
    assert call.token_total == 11 and call.model == "mistral-large"


def test_roles_are_never_relabelled() -> None:
    span = {
        "span_id": "1",
        "name": "x",
        "status": "unset",
        "end_time_unix_nano": 1,
        "attributes": {
            "llm.request.type": "chat",
            "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": "s",
            "gen_ai.prompt.1.role": "tool",
            "gen_ai.prompt.1.content": "r",
            "gen_ai.prompt.1.tool_call_id": "c1",
            "gen_ai.prompt.2.role": "human",
            "gen_ai.prompt.2.content": "h",
        },
    }
    roles = [m.role for m in mapping.llm_call(span).messages]
    assert roles == ["system", "tool", "user"]
    assert mapping.llm_call(span).messages[1].content == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "r"}
    ]
