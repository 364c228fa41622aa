"""The storage-growth claim, checked cheaply: a 20-turn run of ``bench/storage_growth.py``.

At 20 turns the migrated but empty SQLite schema (one page per table and index, about 170 KiB)
is larger than the run's distinct content (about 70 KiB), so ``stored / distinct`` there
measures the schema, not growth. The bound is therefore checked on what the run added:
``(stored - empty schema) / distinct``. The full 200-turn figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "storage_growth.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kontex_bench_storage_growth", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module through sys.modules
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return _load().main(["--turns", "20", "--backend", "sqlite", "--json"])


def test_storage_grows_at_most_three_times_the_distinct_content(report: dict[str, Any]) -> None:
    (result,) = report["results"]
    assert result["backend"] == "sqlite"
    assert result["turns"] == 20
    assert result["growth_ratio"] <= 3, result


def test_storing_once_beats_a_full_bundle_per_snapshot(report: dict[str, Any]) -> None:
    (result,) = report["results"]
    assert result["naive_ratio"] > result["stored_ratio"], result
    assert result["naive_ratio"] > result["growth_ratio"], result


def test_the_run_is_deterministic(report: dict[str, Any]) -> None:
    (result,) = report["results"]
    again = _load().main(["--turns", "20", "--backend", "sqlite", "--json"])["results"][0]
    for name in ("messages", "tool_calls", "files", "distinct_bytes", "naive_bytes", "blob_bytes"):
        assert again[name] == result[name], name


@pytest.mark.parametrize("history", ["sliding", "compacted"])
def test_other_histories_stay_within_three_times_the_distinct_content(history: str) -> None:
    """A sliding window and a compacted history share what did not change: 60 turns (the
    window slides past 50 messages; two compactions), (stored - empty schema) / distinct."""
    report = _load().main(["--turns", "60", "--backend", "sqlite", "--history", history, "--json"])
    (result,) = report["results"]
    assert result["history"] == history
    assert result["messages"] == {"sliding": 50, "compacted": 12}[history]
    assert 0 < result["growth_ratio"] <= 3, result
    assert result["naive_ratio"] > 5


def test_s3_requests_are_counted_per_write_and_read() -> None:
    report = _load().main(["--turns", "3", "--backend", "sqlite", "--blobs", "s3", "--json"])
    (result,) = report["results"]
    assert result["blobs"] == "s3"
    # items live in the database: with no file body above 64 KiB, S3 sees no request at all
    assert result["requests_per_write"].get("PutObject", 0) == 0
    assert result["requests_per_read"].get("GetObject", 0) == 0
