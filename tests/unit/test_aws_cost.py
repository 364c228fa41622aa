"""The cost model's arithmetic (``bench/aws_cost.py``, docs/cost.md), on units of work whose
times are given, so each figure can be worked out by hand. No measuring: that is the bench's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "aws_cost.py"


@pytest.fixture(scope="module")
def cost() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kontex_bench_aws_cost", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


def units(
    cost: ModuleType, given: dict[str, tuple[float, float]] | None = None
) -> dict[str, dict[str, float]]:
    """Every unit the model prices at zero time, but those ``given`` as (wall ms, CPU ms)."""
    measured = {name: {"wall_ms": 0.0, "cpu_ms": 0.0, "peak_kib": 0.0} for name in cost.UNITS}
    for name, (wall, cpu) in (given or {}).items():
        measured[name] = {"wall_ms": wall, "cpu_ms": cpu, "peak_kib": 0.0}
    measured[cost.SPAN_BATCH]["messages_per_request"] = 1
    return measured


# 60 agents, one active hour a month, no viewers: 2 steps a second (an LLM step every 30 s),
# so 1 proxy call a second, 10 spans a second (0.1 OTLP request), 2 snapshots a second
WORKLOAD: dict[str, Any] = {"agents": 60, "active_hours": 1, "stage": "dev", "viewers": 0}


def test_the_model_prices_every_unit_the_issue_lists(cost: ModuleType) -> None:
    listed = [
        "OTLP request",
        "span-worker batch",
        "capture",
        "REST read",
        "REST write",
        "MCP call",
        "feed",
        "embed batch",
        "WebSocket message",
    ]
    for unit in listed:
        assert any(name.startswith(unit) for name in cost.UNITS), unit
    assert cost.ESTIMATED_AS == {}  # nothing priced by analogy


def test_lambda_is_the_proxys_wait_when_every_other_unit_takes_no_time(cost: ModuleType) -> None:
    bill = cost.bill(WORKLOAD, units(cost))
    # 1 proxy call/s x 8 s x 1 GB x 3,600 s = 28,800 GB-s at $0.0000133334 = $0.384;
    # requests: ingest 0.1 + spans worker 0.01 + proxy 1 + capture 0.1 + REST write 1 +
    # REST read 1 + MCP 1 + search 1/30 + feed 0.2 + embed 0.2 = 4.6433/s, 16,716 in the hour,
    # at $0.20 a million = $0.0033
    assert bill["cost"]["Lambda"] == pytest.approx(0.39, abs=0.005)
    # the floors: RDS Proxy's 8 ACU all month, one NAT gateway and three secrets
    assert bill["cost"]["RDS Proxy"] == pytest.approx(8 * 730 * 0.015)
    assert bill["cost"]["NAT gateways, secrets"] == pytest.approx(730 * 0.045 + 3 * 0.40)
    # 10 spans/s for an hour = 36,000 spans; 2 snapshots/s = 7,200 snapshots
    assert bill["per_million_spans"] == pytest.approx(bill["total"] / 36_000 * 1e6, rel=1e-3)
    assert bill["per_thousand_snapshots"] == pytest.approx(bill["total"] / 7.2, rel=1e-3)


def test_the_database_time_of_a_unit_becomes_busy_acus(cost: ModuleType) -> None:
    # a span-worker batch of 1 s wall, 0.2 s of it CPU: 0.8 s waiting on the database
    bill = cost.bill(WORKLOAD, units(cost, {cost.SPAN_BATCH: (1000.0, 200.0)}))
    # 0.1 OTLP request/s, one message each, batches of 10: 0.01 batch/s x 0.8 s = 0.008 busy
    # database seconds a second = 0.032 ACU at a quarter vCPU an ACU, over dev's 4 ACU = 0.008
    load = {row["limit"]: row["load"] for row in bill["limits"]}
    assert load["Aurora ACUs (writer)"] == pytest.approx(0.008, abs=1e-4)
    # Lambda gains the batch's wall time: 0.01/s x 1 s x 3,600 s = 36 GB-s = $0.00048
    assert bill["cost"]["Lambda"] == pytest.approx(0.39, abs=0.005)


def test_search_pays_a_qdrant_node_for_every_6_gib_of_vectors_and_voyage_by_the_token(
    cost: ModuleType,
) -> None:
    measured = units(cost)
    embed = measured["embed batch (10 snapshots)"]
    embed["texts_per_snapshot"], embed["tokens_per_snapshot"] = 2.0, 100.0
    bill = cost.bill(WORKLOAD, measured)
    # 2 snapshots/s for an hour: 7,200 snapshots, 14,400 vectors, each 1,024 int8 bytes x 1.5
    # (Qdrant's rule) in RAM = 22 MB: one node all month, 730 h x $0.0816 = $59.568; Voyage AI:
    # 7,200 x 100 tokens + 120 searches x 12 tokens = 721,440 tokens x $0.18/M = $0.13
    assert bill["vectors"] == 14_400
    assert bill["qdrant_nodes"] == 1
    assert bill["voyage_tokens"] == 721_440
    assert bill["cost"]["Search: Qdrant nodes, Voyage AI (not AWS)"] == pytest.approx(59.70)

    embed["texts_per_snapshot"] = 100_000.0
    bill = cost.bill(WORKLOAD, measured)
    # 720 million vectors x 1,536 bytes = 1.1 TB over 6 GiB a node: 172 nodes
    assert bill["qdrant_nodes"] == 172
    load = {row["limit"]: row["load"] for row in bill["limits"]}
    # 1/30 search a second over 172 nodes x 100 searches/s
    assert load["Qdrant searches"] == pytest.approx(1 / 30 / 17_200, abs=1e-4)
