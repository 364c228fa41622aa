"""Spans made by the real OpenTelemetry SDK, with the attributes each instrumentation emits.

Nothing here is a hand-typed OTLP dictionary: the SDK records the spans, and
``encode_spans`` (the exporter's own encoder) turns them into the protobuf request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode, Tracer


def record(
    build: Callable[[Tracer], None], resource: dict[str, Any] | None = None
) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource or {"service.name": "agent"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    build(provider.get_tracer("tests"))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def protobuf(spans: list[ReadableSpan]) -> bytes:
    return encode_spans(spans).SerializeToString()


# -- OpenLLMetry (traceloop-sdk, Anthropic instrumentation): indexed gen_ai.prompt.* ------------


def openllmetry_agent(tracer: Tracer, session: str | None = "checkout-bot") -> None:
    workflow_attrs = {"traceloop.span.kind": "workflow", "traceloop.entity.name": "checkout"}
    if session:
        workflow_attrs["traceloop.association.properties.session_id"] = session
    with tracer.start_as_current_span("checkout.workflow", attributes=workflow_attrs):
        with tracer.start_as_current_span(
            "anthropic.chat",
            attributes={
                "llm.request.type": "chat",
                "gen_ai.system": "Anthropic",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.response.model": "claude-sonnet-4-5-20250929",
                "gen_ai.prompt.0.role": "system",
                "gen_ai.prompt.0.content": "You are a shop assistant.",
                "gen_ai.prompt.1.role": "user",
                "gen_ai.prompt.1.content": "What is in my cart?",
                "gen_ai.completion.0.role": "thinking",
                "gen_ai.completion.0.content": "I should look the cart up.",
                "gen_ai.completion.1.role": "assistant",
                "gen_ai.completion.1.content": "Let me check.",
                "gen_ai.completion.1.tool_calls.0.id": "toolu_01",
                "gen_ai.completion.1.tool_calls.0.name": "get_cart",
                "gen_ai.completion.1.tool_calls.0.arguments": '{"user": "u1"}',
                "gen_ai.usage.input_tokens": 120,
                "gen_ai.usage.output_tokens": 30,
                **({"traceloop.association.properties.session_id": session} if session else {}),
            },
        ):
            pass
        with tracer.start_as_current_span(
            "get_cart.tool",
            attributes={
                "traceloop.span.kind": "tool",
                "traceloop.entity.name": "get_cart",
                "traceloop.entity.input": json.dumps({"args": [], "kwargs": {"user": "u1"}}),
                "traceloop.entity.output": json.dumps({"items": ["socks"]}),
                **({"traceloop.association.properties.session_id": session} if session else {}),
            },
        ):
            pass
        with tracer.start_as_current_span(
            "anthropic.chat",
            attributes={
                "llm.request.type": "chat",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.prompt.0.role": "system",
                "gen_ai.prompt.0.content": "You are a shop assistant.",
                "gen_ai.prompt.1.role": "user",
                "gen_ai.prompt.1.content": "What is in my cart?",
                "gen_ai.prompt.2.role": "assistant",
                "gen_ai.prompt.2.content": json.dumps(
                    [
                        {"type": "text", "text": "Let me check."},
                        {
                            "type": "tool_use",
                            "id": "toolu_01",
                            "name": "get_cart",
                            "input": {"user": "u1"},
                        },
                    ]
                ),
                "gen_ai.prompt.3.role": "user",
                "gen_ai.prompt.3.content": json.dumps(
                    [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_01",
                            "content": '{"items": ["socks"]}',
                        },
                    ]
                ),
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.content": "You have socks in your cart.",
                "gen_ai.usage.input_tokens": 200,
                "gen_ai.usage.output_tokens": 12,
                **({"traceloop.association.properties.session_id": session} if session else {}),
            },
        ):
            pass


# -- OpenTelemetry GenAI semantic conventions (gen_ai.input.messages with typed parts) ----------


def semconv_agent(tracer: Tracer) -> None:
    with tracer.start_as_current_span(
        "invoke_agent planner",
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "planner",
            "gen_ai.conversation.id": "conv-42",
        },
    ):
        with tracer.start_as_current_span(
            "chat gpt-5",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-5",
                "gen_ai.conversation.id": "conv-42",
                "gen_ai.system_instructions": json.dumps(
                    [{"type": "text", "content": "Plan trips."}]
                ),
                "gen_ai.input.messages": json.dumps(
                    [
                        {
                            "role": "user",
                            "parts": [{"type": "text", "content": "Weather in Paris?"}],
                        },
                        {
                            "role": "assistant",
                            "parts": [
                                {
                                    "type": "tool_call",
                                    "id": "call_1",
                                    "name": "weather",
                                    "arguments": {"city": "Paris"},
                                }
                            ],
                        },
                        {
                            "role": "tool",
                            "parts": [
                                {"type": "tool_call_response", "id": "call_1", "response": "rain"}
                            ],
                        },
                    ]
                ),
                "gen_ai.output.messages": json.dumps(
                    [
                        {
                            "role": "assistant",
                            "finish_reason": "stop",
                            "parts": [
                                {"type": "reasoning", "content": "It rains, so suggest museums."},
                                {"type": "text", "content": "Rain in Paris: visit the Louvre."},
                            ],
                        },
                    ]
                ),
                "gen_ai.usage.input_tokens": 50,
                "gen_ai.usage.output_tokens": 9,
            },
        ):
            pass
        with tracer.start_as_current_span(
            "execute_tool weather",
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "weather",
                "gen_ai.tool.call.id": "call_1",
                "gen_ai.conversation.id": "conv-42",
                "gen_ai.tool.call.arguments": json.dumps({"city": "Paris"}),
            },
        ) as tool:
            tool.set_status(Status(StatusCode.ERROR, "weather service down"))


# -- legacy llm.prompts.* ------------------------------------------------------------------------


def legacy_call(tracer: Tracer) -> None:
    with tracer.start_as_current_span(
        "openai.completion",
        attributes={
            "llm.request.type": "completion",
            "llm.request.model": "text-davinci-003",
            "llm.prompts.0.role": "user",
            "llm.prompts.0.content": "Say hi",
            "llm.completions.0.role": "assistant",
            "llm.completions.0.content": "hi",
            "llm.usage.prompt_tokens": 3,
            "llm.usage.completion_tokens": 1,
            "session.id": "legacy-session",
        },
    ):
        pass


# -- OpenInference --------------------------------------------------------------------------------


def openinference_call(tracer: Tracer) -> None:
    with tracer.start_as_current_span(
        "ChatCompletion",
        attributes={
            "openinference.span.kind": "LLM",
            "llm.model_name": "mistral-large",
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "Be terse.",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": "2+2?",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "4",
            "llm.token_count.prompt": 10,
            "llm.token_count.completion": 1,
            "session.id": "oi-session",
        },
    ):
        pass
