"""The cold-start benchmark's rounds, checked cheaply with a fake process: every round runs one
process of every probe in an order rotated by one, a ``+bytecode`` probe runs once untimed
first, and a ratio is the median of the rounds' ratios, which a drift of the machine's speed
during the run touches on both sides. Timings are printed by the benchmark, never asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import coldstart


def test_rounds_run_every_probe_once_in_a_rotated_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[str] = []

    def fake_run(probe: coldstart.Probe, clock: str) -> float:
        started.append(probe.body)
        return float(len(started))

    monkeypatch.setattr(coldstart, "run_once", fake_run)
    compiled = coldstart.Lambda(tmp_path, (tmp_path,), tmp_path / "pycache")
    probes = {
        ("base", "venv"): coldstart.Probe("base"),
        ("api", "venv"): coldstart.Probe("api"),
        ("api", "+bytecode"): coldstart.Probe("api+b", where=compiled),
    }
    times = coldstart.interleaved(probes, 3, "cpu")
    assert started == [
        "api+b",  # its untimed run, writing the bytecode
        *["base", "api", "api+b"],
        *["api", "api+b", "base"],
        *["api+b", "base", "api"],
    ]
    assert times[("base", "venv")] == [2.0, 7.0, 9.0]  # the untimed run is not among them
    assert times[("api", "+bytecode")] == [4.0, 6.0, 8.0]


def test_a_ratio_is_the_median_of_the_rounds_ratios() -> None:
    base = [100.0, 100.0, 100.0, 100.0, 200.0]
    row = [150.0, 400.0, 150.0, 160.0, 300.0]  # rounds' ratios 1.5, 4, 1.5, 1.6, 1.5
    assert coldstart.paired(row, base) == pytest.approx(1.5)  # the medians' ratio is 1.6
