"""The labelled set through bench/search_eval.py: hybrid recall@5 meets its target (quality is
asserted here; the times it prints are for docs/benchmarks.md, never asserted)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "search_eval.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kontex_bench_search_eval", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module through sys.modules
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


def test_the_set_is_large_enough_and_names_identifiers() -> None:
    snapshots, queries = _load().load_set()
    keys = {s["key"] for s in snapshots}
    assert len(keys) == len(snapshots) >= 40
    assert len(queries) >= 25
    assert all(set(q["expected"]) <= keys for q in queries)
    exact = {"parse_jwt_claims", "E11000", "middleware/ratelimit.go", "DEADLINE_EXCEEDED"}
    assert exact <= {q["q"] for q in queries}


def test_hybrid_search_finds_the_expected_snapshots() -> None:
    report = _load().run(rounds=1)
    hybrid = report.quality["hybrid"]
    assert hybrid.recall_at_5 >= 0.9, hybrid.missed
    # fusion is worth it: at least as good as either ranking alone
    assert hybrid.recall_at_5 >= report.quality["dense"].recall_at_5
    assert hybrid.recall_at_5 >= report.quality["sparse"].recall_at_5
    assert report.points > report.snapshots  # labels, messages, tool calls and files


@pytest.mark.e2e
def test_the_freshness_run_measures_a_real_kontex_dev() -> None:
    """A small freshness run (bench/search_eval.py --freshness): every checkpoint is embedded
    and timed, the last one and the probed messages are found by search (the times are for
    docs/benchmarks.md, never asserted)."""
    fresh = _load().freshness(count=24, window=6)
    assert fresh.snapshots == 24 and fresh.probes == 20
    assert fresh.probes_found == 20, fresh.probes_missed
    assert fresh.delay_ms_p50 <= fresh.delay_ms_p95 <= fresh.delay_ms_max
    assert fresh.embed_snapshots_per_second > 0 and fresh.capacity_snapshots_per_second > 0
    # each sliding-window checkpoint holds its window and its label, and brings one message
    # and its label to the index (the label's model input is cached, its point is new)
    assert fresh.items_per_second > fresh.embed_snapshots_per_second
