"""GenAI events through the real OTLP log exporter, and metrics through the real metric
exporter, against `kontex dev`: the events give a content-less span the messages the
attribute form gives; every export answers 200."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader

from tests.e2e.stack import DevStack, Http, create_key, start_dev, stop_dev
from tests.e2e.test_otlp_exporter import export, wait_for
from tests.otlp import spans as fixtures
from tests.otlp.test_fidelity import attribute_call, events_build, traceloop_agent

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    data = tmp_path_factory.mktemp("otlp-logs") / "data"
    create_key(data, "bootstrap")
    running = start_dev(data)
    yield running
    stop_dev(running)


def test_genai_events_exported_as_logs(stack: DevStack) -> None:
    key = create_key(stack.data_dir, "logs")
    api = Http(stack.base, key)
    headers = {"x-kontex-api-key": key}
    exporter = OTLPLogExporter(
        endpoint=f"{stack.base}/ingest/v1/logs", headers=headers, compression=Compression.Gzip
    )
    logs = LoggerProvider()
    logs.add_log_record_processor(BatchLogRecordProcessor(exporter))
    export(stack, key, events_build(logs.get_logger("opentelemetry.instrumentation.anthropic")))
    export(stack, key, attribute_call)
    assert logs.force_flush(10_000)  # the logs arrive after their span: it waits for them
    logs.shutdown()

    def bundles() -> dict[str, Any] | None:
        found = {}
        for session in api("GET", "/v1/sessions")[1]["data"]:
            snaps = api("GET", f"/v1/sessions/{session['id']}/snapshots")[1]["data"]
            if not snaps:
                return None
            found[session["name"]] = api("GET", f"/v1/snapshots/{snaps[0]['id']}/bundle")[1]
        return found if len(found) == 2 else None

    found = wait_for(bundles)
    assert found["events"]["messages"] == found["attributes"]["messages"]
    assert [m["role"] for m in found["events"]["messages"]] == ["system", "user", "assistant"]
    assert found["events"]["usage"]["input_tokens"] == 30


class RecordingMetricExporter(OTLPMetricExporter):
    """The real exporter, remembering what each export returned (force_flush does not say)."""

    results: list[MetricExportResult]

    def export(self, *args: Any, **kwargs: Any) -> MetricExportResult:
        result = super().export(*args, **kwargs)
        self.results.append(result)
        return result


def test_metrics_export_answers_200(stack: DevStack) -> None:
    key = create_key(stack.data_dir, "metrics")
    RecordingMetricExporter.results = []
    exporter = RecordingMetricExporter(
        endpoint=f"{stack.base}/ingest/v1/metrics",
        headers={"x-kontex-api-key": key},
        compression=Compression.Gzip,
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("opentelemetry.instrumentation.anthropic")
    meter.create_histogram("gen_ai.client.token.usage").record(126, {"gen_ai.token.type": "input"})
    meter.create_histogram("gen_ai.client.operation.duration").record(0.4)
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert RecordingMetricExporter.results
    assert set(RecordingMetricExporter.results) == {MetricExportResult.SUCCESS}


def test_a_span_whose_parent_never_comes_is_placed_after_the_grace_period(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    create_key(data, "bootstrap")
    running = start_dev(data, env={"KONTEX_SPAN_GRACE_SECONDS": "1"})
    try:
        key = create_key(data, "grace")
        recorded = [s for s in fixtures.record(traceloop_agent) if s.name != "agent.workflow"]
        request = urllib.request.Request(
            f"{running.base}/ingest/v1/traces",
            data=fixtures.protobuf(recorded),
            headers={"x-kontex-api-key": key, "content-type": "application/x-protobuf"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
        api = Http(running.base, key)

        def placed() -> list[dict[str, Any]] | None:
            sessions = api("GET", "/v1/sessions")[1]["data"]
            if not sessions:
                return None
            snaps = api("GET", f"/v1/sessions/{sessions[0]['id']}/snapshots")[1]["data"]
            return snaps if len(snaps) == 3 else None

        # nothing else of the trace comes: the worker's delayed retry places it
        assert [s["label"] for s in wait_for(placed)] == [
            "anthropic.chat",
            "tool: get_weather",
            "anthropic.chat",
        ]
    finally:
        stop_dev(running)
