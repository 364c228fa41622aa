"""Every function flushes EMF metrics through Powertools: what ingest and the worker report."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.otlp import spans as fixtures
from tests.otlp.test_ingest_and_worker import deliver, kontex, post  # noqa: F401  (fixture)


def _emf(text: str) -> dict[str, float]:
    """Metric name -> value over the EMF lines Powertools printed."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if '"_aws"' not in line:
            continue
        doc = json.loads(line)
        for definition in doc["_aws"]["CloudWatchMetrics"]:
            for metric in definition["Metrics"]:
                value = doc[metric["Name"]]
                found[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return found


def test_ingest_and_the_span_worker_report_their_counts(
    kontex: Any,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "kontex-test")
    spans = fixtures.record(fixtures.openllmetry_agent)
    status, _, _ = post(
        kontex, fixtures.protobuf(spans), {"content-type": "application/x-protobuf"}
    )
    assert status == 200
    ingest = _emf(capsys.readouterr().out)
    assert ingest["SpansAccepted"] == len(spans)
    assert "SpansRefused" not in ingest  # nothing refused: no zero metric
    assert deliver(kontex) == [{"batchItemFailures": []}]
    worker = _emf(capsys.readouterr().out)
    assert worker["SnapshotsWritten"] == 3  # two LLM calls and the tool's completion
