"""Timing that says when it cannot be trusted: injected latency series, never a timed test."""

from __future__ import annotations

import json

import numpy as np
import pytest

from petseg.benchmark import report
from petseg.benchmark.measure import Measurement
from petseg.benchmark.stability import ATTEMPTS, assess, steady_times


def _quiet(rng: np.random.Generator, n: int = 200, ms: float = 10.0) -> np.ndarray:
    """An idle core: runs within a few % of their median, a rare slow one."""
    times = ms * (1 + np.abs(rng.normal(0, 0.02, n)))
    times[rng.choice(n, 2, replace=False)] *= 1.5
    return times


def _bimodal(rng: np.random.Generator, n: int = 200) -> np.ndarray:
    """Another job taking the cores now and then: one run in three twice as slow (the issue's fp16)."""
    slow = rng.random(n) < 0.35
    return np.where(slow, 18.3, 9.0) * (1 + rng.normal(0, 0.02, n))


@pytest.mark.parametrize("seed", range(5))
def test_an_idle_machine_s_timings_are_stable(seed):
    verdict = assess(_quiet(np.random.default_rng(seed)))
    assert verdict["stable"] is True, verdict["problems"]


def test_two_modes_are_found():
    verdict = assess(_bimodal(np.random.default_rng(0)))
    assert verdict["stable"] is False and any("two modes" in p for p in verdict["problems"])
    low, high = verdict["modes_ms"]
    assert low == pytest.approx(9.0, rel=0.05) and high == pytest.approx(18.3, rel=0.05)


def test_drift_across_the_run_is_found():
    rng = np.random.default_rng(1)
    heating = np.linspace(10, 13, 150) * (1 + rng.normal(0, 0.01, 150))  # a chip throttling as it heats
    verdict = assess(heating)
    assert verdict["stable"] is False and any("drift +" in p for p in verdict["problems"])


def test_a_wide_spread_is_found():
    verdict = assess(np.random.default_rng(2).lognormal(np.log(10), 0.3, 200))
    assert verdict["stable"] is False and any("spread" in p for p in verdict["problems"])


def test_too_few_runs_are_not_judged():
    assert assess([10.0, 20.0, 10.0])["stable"] is None


def test_an_unstable_measurement_is_measured_again_until_stable():
    rng = np.random.default_rng(3)
    series = iter([_bimodal(rng), _quiet(rng)])
    times, verdict = steady_times(lambda: list(next(series)))
    assert verdict["attempts"] == 2 and verdict["stable"] is True
    assert np.median(times) == pytest.approx(10.0, rel=0.05)


def test_what_stays_unstable_is_reported_so(tmp_path):
    rng = np.random.default_rng(4)
    calls = []
    times, verdict = steady_times(lambda: calls.append(1) or list(_bimodal(rng)))
    assert len(calls) == ATTEMPTS and verdict["stable"] is False and verdict["attempts"] == ATTEMPTS
    shaky = _measurement(tmp_path / "petseg_fp16.tflite", times, verdict)
    steady = _measurement(tmp_path / "petseg_fp32.tflite", list(_quiet(rng)),
                          assess(_quiet(rng)) | {"attempts": 1})
    records = report.rows([steady, shaky])
    text = report.table(records)
    fp16_row = next(line for line in text.splitlines() if line.startswith("fp16"))
    fp32_row = next(line for line in text.splitlines() if line.startswith("fp32"))
    assert report.UNSTABLE in fp16_row and report.UNSTABLE not in fp32_row
    note = next(line for line in text.splitlines() if line.startswith("note: *"))
    assert "fp16 at 1 thread(s)" in note and "two modes" in note and f"{ATTEMPTS} measurement(s)" in note
    report.write_json(tmp_path / "b.json", records, {"cpu": "x", "runtime": "y"}, {})
    saved = {r["variant"]: r for r in json.loads((tmp_path / "b.json").read_text())["results"]}
    assert saved["fp16"]["stability"]["stable"] is False and saved["fp32"]["stability"]["stable"] is True
    report.write_csv(tmp_path / "b.csv", records)
    assert "two modes" in (tmp_path / "b.csv").read_text()


def _measurement(path, times, stability) -> Measurement:
    path.write_bytes(b"x")
    t = np.asarray(times)
    latency = {"macs": 0, "outside_delegate": {}, "runtime": "x", "init_ms": 1, "first_ms": 1,
               "runs": int(t.size), "median_ms": float(np.median(t)), "mean_ms": float(t.mean()),
               "p90_ms": float(np.percentile(t, 90)), "p99_ms": float(np.percentile(t, 99)),
               "std_ms": float(t.std()), "min_ms": float(t.min()), "memory_load_mb": 1.0,
               "memory_first_mb": 2.0, "stability": stability, "input_dtype": "uint8"}
    return Measurement(path, 1, latency)
