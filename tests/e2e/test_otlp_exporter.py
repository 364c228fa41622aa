"""The real OpenTelemetry exporter (protobuf, gzip) against `kontex dev`, read back over REST."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tests.e2e.stack import DevStack, Http, create_key, start_dev, stop_dev
from tests.otlp import spans as fixtures

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    data = tmp_path_factory.mktemp("otlp") / "data"
    create_key(data, "bootstrap")
    running = start_dev(data)
    yield running
    stop_dev(running)


def export(stack: DevStack, key: str, build: Any, headers: dict[str, str] | None = None) -> None:
    exporter = OTLPSpanExporter(
        endpoint=f"{stack.base}/ingest/v1/traces",
        headers={"x-kontex-api-key": key, **(headers or {})},
        compression=Compression.Gzip,
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "shop-agent"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    build(provider.get_tracer("e2e"))
    assert provider.force_flush(10_000)
    provider.shutdown()


def wait_for(check: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the span worker")


def test_exported_spans_become_snapshots(stack: DevStack) -> None:
    key = create_key(stack.data_dir, "otel")
    api = Http(stack.base, key)
    export(stack, key, fixtures.openllmetry_agent)

    sessions = wait_for(lambda: api("GET", "/v1/sessions")[1]["data"])
    assert [s["name"] for s in sessions] == ["checkout-bot"]
    sid = sessions[0]["id"]
    snaps = wait_for(
        lambda: (lambda d: d if len(d) == 3 else None)(
            api("GET", f"/v1/sessions/{sid}/snapshots")[1]["data"]
        )
    )
    assert [s["label"] for s in snaps] == ["anthropic.chat", "tool: get_cart", "anthropic.chat"]
    assert [s["token_total"] for s in snaps] == [150, 150, 212]
    assert {s["source"] for s in snaps} == {"openllmetry"}

    first = api("GET", f"/v1/snapshots/{snaps[0]['id']}/bundle")[1]
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    assert first["reasoning"] == "I should look the cart up."
    assert first["tool_calls"][0]["tool"] == "get_cart"
    last = api("GET", f"/v1/snapshots/{snaps[2]['id']}/bundle")[1]
    assert [m["role"] for m in last["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert last["messages"][-1]["content"] == "You have socks in your cart."
    assert last["tool_calls"][0]["output"] == '{"items": ["socks"]}'
    tasks = api("GET", f"/v1/sessions/{sid}/tasks")[1]["data"]
    assert [t["name"] for t in tasks] == ["checkout"]


def test_header_session_and_bad_key(stack: DevStack) -> None:
    key = create_key(stack.data_dir, "header")
    api = Http(stack.base, key)
    session = api("POST", "/v1/sessions", {"name": "from header"})[1]
    export(stack, key, fixtures.legacy_call, {"x-kontex-session-id": session["id"]})
    snaps = wait_for(lambda: api("GET", f"/v1/sessions/{session['id']}/snapshots")[1]["data"])
    assert snaps[0]["token_total"] == 4
    bundle = api("GET", f"/v1/snapshots/{snaps[0]['id']}/bundle")[1]
    assert [(m["role"], m["content"]) for m in bundle["messages"]] == [
        ("user", "Say hi"),
        ("assistant", "hi"),
    ]
