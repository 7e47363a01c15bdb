"""Systems metrics: timings that only call models different when they are."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from flywheel.data import load_dataset, split_dataset
from flywheel.evaluation import (
    Candidate,
    evaluate_elsewhere,
    finish_here,
    latency_differs,
    measure_latency,
    median_interval,
    peak_memory_mb,
)
from flywheel.evaluation._systems import _time_calls, quantile_interval
from flywheel.project import DataSpec


class Fast:
    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(rows))


class Sleepy(Fast):
    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        time.sleep(0.002)  # 2 ms per call, whatever the batch
        return np.zeros(len(rows))


class Spin(Fast):
    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        end = time.thread_time() + 1e-3  # 1 ms of this thread's CPU
        while time.thread_time() < end:
            pass
        return np.zeros(len(rows))


class Hungry(Fast):
    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        scratch = np.ones((len(rows), 2000))  # ~16 MB for 1024 rows
        return scratch.sum(axis=1) * 0


ROWS = pd.DataFrame({"a": np.arange(50.0), "b": np.arange(50.0) * 2})


def test_a_model_that_sleeps_is_slower_every_time_and_twins_are_not_different() -> None:
    for _ in range(3):
        fast = measure_latency(Fast(), ROWS, budget_s=0.3)
        sleepy = measure_latency(Sleepy(), ROWS, budget_s=0.3)
        twin = measure_latency(Fast(), ROWS, budget_s=0.3)
        assert latency_differs(sleepy, fast)
        assert latency_differs(sleepy, fast, key="batch1024_ms")
        assert not latency_differs(fast, twin)
        assert sleepy["latency_p50_ms"] >= 2.0
        assert fast["throughput_rows_s"] > sleepy["throughput_rows_s"]


def test_measurement_reports_percentiles_batches_and_intervals() -> None:
    m = measure_latency(Sleepy(), ROWS, budget_s=0.5)
    assert m["latency_p50_ms"] <= m["latency_p95_ms"] <= m["latency_p99_ms"]
    low, high = m["latency_p50_ms_interval"]
    assert low <= m["latency_p50_ms"] <= high
    assert {"batch32_ms", "batch1024_ms", "throughput_rows_s"} <= set(m)
    assert m["latency_calls"] >= 10


def test_median_interval_covers_the_median() -> None:
    rng = np.random.default_rng(0)
    covered = sum(
        (lambda lo_hi: lo_hi[0] <= 0.0 <= lo_hi[1])(median_interval(rng.normal(size=61))) for _ in range(400)
    )
    assert 0.92 <= covered / 400 <= 0.99


def test_peak_memory_sees_a_hungry_model() -> None:
    assert peak_memory_mb(Hungry(), ROWS) > 10 * peak_memory_mb(Fast(), ROWS) + 5


def test_differences_below_the_timer_floor_are_not_differences() -> None:
    a = {"latency_p50_ms": 0.00046, "latency_p50_ms_interval": (0.00045, 0.00047)}
    b = {"latency_p50_ms": 0.00076, "latency_p50_ms_interval": (0.00074, 0.00077)}
    assert not latency_differs(a, b)  # sub-microsecond: noise of the timer, not the model
    c = {"latency_p50_ms": 3.1, "latency_p50_ms_interval": (3.0, 3.2)}
    d = {"latency_p50_ms": 3.25, "latency_p50_ms_interval": (3.21, 3.3)}
    assert not latency_differs(c, d)  # separated, but under 10% apart
    e = {"latency_p50_ms": 4.0, "latency_p50_ms_interval": (3.9, 4.1)}
    assert latency_differs(c, e)


def test_quantile_intervals_cover_the_true_quantile() -> None:
    """Order-statistic intervals hold at their level whatever the distribution (here exponential)."""
    rng = np.random.default_rng(7)
    for q in (0.5, 0.95, 0.99):
        truth = -np.log(1 - q)  # the q quantile of Exp(1)
        covered = [
            low <= truth <= high
            for low, high in (quantile_interval(rng.exponential(size=400), q) for _ in range(400))
        ]
        assert 0.92 <= np.mean(covered) <= 1.0, q


@pytest.mark.skipif(not Path("/proc/thread-self/schedstat").exists(), reason="Linux schedstat")
def test_time_spent_waiting_for_a_cpu_is_not_the_models() -> None:
    """Two busy processes share this thread's CPU: its calls wait, and that wait is taken out."""
    cpu = sorted(os.sched_getaffinity(0))[0]
    before = os.sched_getaffinity(0)
    busy = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"import os, time\nos.sched_setaffinity(0, {{{cpu}}})\n"
                "end = time.time() + 20\nwhile time.time() < end: pass",
            ]
        )
        for _ in range(2)
    ]
    try:
        os.sched_setaffinity(0, {cpu})
        time.sleep(0.2)
        own, wall = _time_calls(
            Spin(), ROWS.iloc[:1], budget_s=2.0, rel_tol=0.0, min_calls=200, max_calls=200
        )
    finally:
        os.sched_setaffinity(0, before)
        for p in busy:
            p.kill()
            p.wait()
    assert (own <= wall).all()
    assert wall.sum() - own.sum() > 0.2 * wall.sum()  # a third of the CPU: most of the wall time is waiting


def test_a_model_that_waits_on_io_is_charged_for_it() -> None:
    """Sleeping (a model calling a service) is the model's time: only waiting for a CPU is taken out."""
    own, wall = _time_calls(Sleepy(), ROWS.iloc[:1], budget_s=1.0, rel_tol=0.0, min_calls=20, max_calls=20)
    assert np.median(own) >= 2e-3 and np.median(own) >= 0.9 * np.median(wall)


def test_the_garbage_collector_stays_out_of_the_timed_calls_and_is_restored() -> None:
    """A collection walks the measuring process's heap, not the model's: one such pause in 80 calls
    was the whole upper end of a p95 interval on a busy machine, so timings run with it off."""

    class Watch:
        def __init__(self) -> None:
            self.seen: list[bool] = []

        def predict(self, rows: pd.DataFrame) -> np.ndarray:
            self.seen.append(gc.isenabled())
            return np.zeros(len(rows))

    watch = Watch()
    assert gc.isenabled()
    _time_calls(watch, ROWS.iloc[:1], budget_s=1.0, rel_tol=0.0, min_calls=20, max_calls=20)
    assert watch.seen[3:] == [False] * 20  # after the three warm-up calls, every timed one
    assert gc.isenabled()
    gc.disable()
    try:  # a caller that had it off keeps it off
        _time_calls(watch, ROWS.iloc[:1], budget_s=1.0, rel_tol=0.0, min_calls=5, max_calls=5)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_fit_elsewhere_is_finished_here_with_its_artifact_and_latency() -> None:
    """A model fitted on a cluster's worker is pickled and timed in the run's own process."""
    ds = load_dataset(DataSpec(source="builtin:iris", target="species"), Path("."))
    split = split_dataset(ds, DataSpec(source="x", target="y").split)
    make = lambda: LogisticRegression(max_iter=300)  # noqa: E731
    rule = lambda rows: ["setosa"] * len(rows)  # noqa: E731
    for cand in (
        Candidate("model", "candidate", "estimator", "a candidate", make=make),
        Candidate("linear", "baseline", "estimator", "a rung", make=make),
        Candidate("rule", "baseline", "rule", "a rule", rule=rule, stage="rule"),
    ):
        there, model = evaluate_elsewhere(cand, ds, split, ["accuracy"], n_resamples=50, latency=False)
        assert there.ok and there.artifact is None and (model is None) == (cand.rule is not None)
        assert not [k for k in there.systems if k.startswith("latency")] and "memory_mb" in there.systems
        untimed = finish_here(there, model, cand, ds, split, latency=False)
        assert (untimed.artifact is not None) == (cand.role == "candidate"), cand.name
        assert "size_mb" not in there.systems and ("size_mb" in untimed.systems) == (cand.make is not None)
        assert {k: v for k, v in untimed.systems.items() if k != "size_mb"} == there.systems
        assert "systems" not in untimed.intervals
        timed = finish_here(there, model, cand, ds, split, latency=True)
        assert timed.metrics == there.metrics and timed.predictions.keys() == there.predictions.keys()
        assert timed.systems["latency_p50_ms"] > 0 and "latency_p50_ms" in timed.intervals["systems"]
        assert {k: v for k, v in timed.systems.items() if k in there.systems} == there.systems
