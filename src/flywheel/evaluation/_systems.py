"""Systems metrics: how fast, how big, how hungry, how slow to train.

A model is judged on speed and size as well as quality, so the objective can
constrain them (``latency_p95_ms: {max: 2}``). Timings are noisy, so they are
measured the way a benchmark would be, not once:

- latency per call at batch sizes 1, 32 and 1024 (real rows, resampled), after
  a warm-up; calls repeat until the distribution-free interval of the median is
  within ``rel_tol`` of it, or the time budget is spent;
- each call's time is its wall time *minus the time its thread waited for a CPU*
  (the kernel's ``schedstat`` run delay, on Linux): the latency the model has on a
  machine that is not busy with other work. With two processes spinning on a
  2-core machine, a logistic regression's wall p95 rose 7.7x and this measure's
  1.09x (``benchmarks/latency_under_load.py``), so a constraint is not decided by
  what else the machine was doing. The wall-time p50 and p95 are reported beside
  it (``latency_p50_wall_ms``);
- the cyclic garbage collector is off while calls are timed (as ``timeit`` does): a
  collection walks the whole heap of the process *measuring* (flywheel with pandas and
  scikit-learn loaded), not the model's; on a busy machine one such pause (125 ms for a
  3 ms call) in 80 calls was the whole upper end of a p95 interval and turned a
  gate's "pass" into "undecided";
- every model is timed on one OpenMP/BLAS thread, whatever its fit was given, so a model that
  happened to run alone (with every core's threads) is compared on the same footing;
- p50 / p95 / p99 of single-row latency, each with a distribution-free 95 %
  interval (order statistics), and throughput (rows per second at the largest batch);
- peak memory allocated while predicting a large batch (``tracemalloc``), and
  the pickled size of the fitted model.

Two models are only called different in speed when their median intervals do
not overlap (:func:`latency_differs`).
"""

from __future__ import annotations

import gc
import math
import os
import pickle
import time
import tracemalloc
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "BATCH_SIZES",
    "latency_differs",
    "measure_latency",
    "median_interval",
    "quantile_interval",
    "peak_memory_mb",
    "serialized_size_mb",
]

BATCH_SIZES = (1, 32, 1024)


def quantile_interval(samples: np.ndarray, q: float, confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval of the ``q`` quantile from order statistics (binomial ranks).

    The ranks ``lo`` and ``hi`` are the ``confidence`` central range of Binomial(n, q): the
    ``q`` quantile lies between the lo-th and hi-th smallest samples with at least that
    probability, whatever the distribution. With too few samples for the tail it reaches the
    largest (or smallest) sample, which is what such a sample can say.

    >>> low, high = quantile_interval(np.arange(1.0, 1001.0), 0.95)
    >>> low < 950.5 < high
    True
    """
    x = np.sort(np.asarray(samples, dtype=float))
    n = len(x)
    if n < 6:
        return float(x[0]), float(x[-1])
    alpha = 1 - confidence
    lo = int(stats.binom.ppf(alpha / 2, n, q))
    hi = int(stats.binom.isf(alpha / 2, n, q))
    return float(x[max(lo - 1, 0)]), float(x[min(hi, n - 1)])


def median_interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval of the median from order statistics (binomial ranks).

    >>> low, high = median_interval(np.arange(1.0, 101.0))
    >>> low < 50.5 < high
    True
    """
    return quantile_interval(samples, 0.5, confidence)


class _RunDelay:
    """This thread's time spent waiting for a CPU so far, in ns (0 where the kernel does not say).

    ``/proc/thread-self/schedstat`` holds the time on a CPU, the time runnable but waiting, and
    the number of slices; the file stays open and is re-read with ``pread`` (a few µs).
    """

    def __init__(self) -> None:
        self._fd: int | None = None
        try:
            self._fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
            self.ns()
        except (OSError, ValueError, IndexError):
            self.close()

    def ns(self) -> int:
        if self._fd is None:
            return 0
        return int(os.pread(self._fd, 128, 0).split()[1])

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _time_calls(
    model: Any, batch: pd.DataFrame, *, budget_s: float, rel_tol: float, min_calls: int, max_calls: int
) -> tuple[np.ndarray, np.ndarray]:
    """(own, wall) seconds per call: own is wall time less the time the thread waited for a CPU."""
    for _ in range(3):  # warm-up: caches, lazy imports, first-call allocations
        model.predict(batch)
    own: list[float] = []
    wall: list[float] = []
    delay = _RunDelay()
    collecting = gc.isenabled()
    gc.disable()  # the collector's pauses belong to this process's heap, not to the model
    deadline = time.perf_counter() + budget_s
    try:
        while len(own) < max_calls:
            waited = delay.ns()
            start = time.perf_counter_ns()
            model.predict(batch)
            took = time.perf_counter_ns() - start
            waited = delay.ns() - waited
            wall.append(took / 1e9)
            own.append(max(took - waited, 0) / 1e9)
            if len(own) >= min_calls and len(own) % 10 == 0:
                low, high = median_interval(np.asarray(own))
                median = float(np.median(own))
                if median > 0 and (high - low) / median <= rel_tol:
                    break
            if time.perf_counter() > deadline and len(own) >= min(min_calls, 10):
                break
    finally:
        if collecting:
            gc.enable()
        delay.close()
    return np.asarray(own), np.asarray(wall)


def measure_latency(
    model: Any,
    rows: pd.DataFrame,
    *,
    budget_s: float = 1.0,
    rel_tol: float = 0.05,
    min_calls: int = 30,
    max_calls: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Latency at batch sizes 1, 32 and 1024, single-row percentiles, and throughput (ms, rows/s).

    ``budget_s`` is spent per batch size. Each timing is the model's own (wall time less the
    time waiting for a CPU) and has a ``*_interval`` (95 %, distribution-free); the wall-time
    single-row p50 and p95 are ``latency_p50_wall_ms`` and ``latency_p95_wall_ms``.
    """
    if len(rows) == 0:
        raise ValueError("measure_latency needs at least one row")
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for size in BATCH_SIZES:
        batch = rows.iloc[rng.integers(0, len(rows), size)]
        with threadpool_limits(limits=1):  # every model on one thread, whatever its fit was given
            own, wall = _time_calls(
                model, batch, budget_s=budget_s, rel_tol=rel_tol, min_calls=min_calls, max_calls=max_calls
            )
        own, wall = own * 1e3, wall * 1e3
        if size == 1:
            for q in (50, 95, 99):
                out[f"latency_p{q}_ms"] = float(np.percentile(own, q))
                out[f"latency_p{q}_ms_interval"] = quantile_interval(own, q / 100)
            for q in (50, 95):
                out[f"latency_p{q}_wall_ms"] = float(np.percentile(wall, q))
            out["latency_calls"] = len(own)
        else:
            out[f"batch{size}_ms"] = float(np.median(own))
            out[f"batch{size}_ms_interval"] = median_interval(own)
    largest = out[f"batch{BATCH_SIZES[-1]}_ms"]
    out["throughput_rows_s"] = BATCH_SIZES[-1] / (largest / 1e3) if largest > 0 else math.inf
    return out


def latency_differs(
    a: dict[str, Any],
    b: dict[str, Any],
    key: str = "latency_p50_ms",
    min_ratio: float = 1.1,
    min_ms: float = 0.02,
) -> bool:
    """Whether two measurements differ in speed.

    Their median intervals must not overlap, *and* the medians must differ by at
    least ``min_ratio`` and by ``min_ms``: the machine's drift between two runs
    separates very tight intervals of the same code, and below 20 µs a Python
    call's own overhead and the timer's resolution are what is being measured.
    """
    (a_low, a_high), (b_low, b_high) = a[f"{key}_interval"], b[f"{key}_interval"]
    separated = a_high < b_low or b_high < a_low
    slow, fast = max(a[key], b[key]), min(a[key], b[key])
    return separated and slow - fast >= min_ms and (fast <= 0 or slow / fast >= min_ratio)


def peak_memory_mb(model: Any, rows: pd.DataFrame, size: int = 1024, seed: int = 0) -> float:
    """Peak memory allocated while predicting ``size`` rows, in megabytes (tracemalloc)."""
    batch = rows.iloc[np.random.default_rng(seed).integers(0, len(rows), size)]
    model.predict(batch)  # allocations made once (caches) are not the model's working memory
    tracemalloc.start()
    try:
        model.predict(batch)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1e6


def serialized_size_mb(model: Any) -> float:
    """Size of the model pickled with the highest protocol, in megabytes (10^6 bytes)."""
    return len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)) / 1e6
