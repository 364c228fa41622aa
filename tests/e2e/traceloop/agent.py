"""A small agent instrumented by the real traceloop-sdk, calling the real anthropic SDK.

Run by tests/e2e/test_traceloop.py in its own cached venv (see test_traceloop.py):
    agent.py KONTEX_BASE KONTEX_KEY ANTHROPIC_BASE SESSION_NAME {batch,nobatch}
A workflow with two tasks: "plan" (a call that asks for a tool, the tool, a second call) and
"summarize" (a streamed call).
"""

from __future__ import annotations

import json
import sys

import anthropic
from opentelemetry import metrics, trace
from traceloop.sdk import Traceloop
from traceloop.sdk.decorators import task, tool, workflow

base, key, upstream, session, mode = sys.argv[1:6]
Traceloop.init(
    app_name="weather-agent",
    api_endpoint=f"{base}/ingest",
    headers={"x-kontex-api-key": key},
    disable_batch=mode == "nobatch",
    telemetry_enabled=False,
)
Traceloop.set_association_properties({"session_id": session})
client = anthropic.Anthropic(base_url=upstream, api_key="sk-ant-fake", max_retries=0)
MODEL = "claude-sonnet-4-5"


@tool(name="get_weather")
def get_weather(city: str, unit: str) -> dict[str, object]:
    return {"city": city, "temperature": 21, "unit": unit}


@task(name="plan")
def plan(question: str) -> str:
    messages: list[dict[str, object]] = [{"role": "user", "content": question}]
    reply = client.messages.create(model=MODEL, max_tokens=200, messages=messages)
    messages.append({"role": "assistant", "content": [b.model_dump() for b in reply.content]})
    results = []
    for block in reply.content:
        if block.type == "tool_use":
            output = get_weather(**block.input)
            results.append(
                {"type": "tool_result", "tool_use_id": block.id, "content": json.dumps(output)}
            )
    messages.append({"role": "user", "content": results})
    final = client.messages.create(model=MODEL, max_tokens=200, messages=messages)
    return "".join(b.text for b in final.content if b.type == "text")


@task(name="summarize")
def summarize(text: str) -> str:
    with client.messages.stream(
        model=MODEL, max_tokens=200, messages=[{"role": "user", "content": f"Summarize: {text}"}]
    ) as stream:
        return "".join(stream.text_stream)


@workflow(name="weather_agent")
def run() -> str:
    return summarize(plan("What is the weather in Paris?"))


run()
provider = trace.get_tracer_provider()
provider.force_flush(10_000)  # type: ignore[attr-defined]
meter_provider = metrics.get_meter_provider()
if hasattr(meter_provider, "force_flush"):
    meter_provider.force_flush(10_000)
