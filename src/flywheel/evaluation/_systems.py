"""Systems metrics: how fast, how big, how hungry, how slow to train.

A model is judged on speed and size as well as quality, so the objective can
constrain them (``latency_p95_ms: {max: 2}``). Timings are noisy, so they are
measured the way a benchmark would be, not once:

- latency per call at batch sizes 1, 32 and 1024 (real rows, resampled), after
  a warm-up; calls repeat until the distribution-free interval of the median is
  within ``rel_tol`` of it, or the time budget is spent;
- p50 / p95 / p99 of single-row latency, the interval of its median, and
  throughput (rows per second at the largest batch);
- peak memory allocated while predicting a large batch (``tracemalloc``), and
  the pickled size of the fitted model.

Two models are only called different in speed when their median intervals do
not overlap (:func:`latency_differs`).
"""

from __future__ import annotations

import math
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
    "peak_memory_mb",
    "serialized_size_mb",
]

BATCH_SIZES = (1, 32, 1024)


def median_interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval of the median from order statistics (binomial ranks).

    >>> low, high = median_interval(np.arange(1.0, 101.0))
    >>> low < 50.5 < high
    True
    """
    x = np.sort(np.asarray(samples, dtype=float))
    n = len(x)
    if n < 6:
        return float(x[0]), float(x[-1])
    alpha = 1 - confidence
    lo = int(stats.binom.ppf(alpha / 2, n, 0.5))
    hi = int(stats.binom.isf(alpha / 2, n, 0.5))
    return float(x[max(lo - 1, 0)]), float(x[min(hi, n - 1)])


def _time_calls(
    model: Any, batch: pd.DataFrame, *, budget_s: float, rel_tol: float, min_calls: int, max_calls: int
) -> np.ndarray:
    for _ in range(3):  # warm-up: caches, lazy imports, first-call allocations
        model.predict(batch)
    timings: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(timings) < max_calls:
        start = time.perf_counter()
        model.predict(batch)
        timings.append(time.perf_counter() - start)
        if len(timings) >= min_calls and len(timings) % 10 == 0:
            low, high = median_interval(np.asarray(timings))
            median = float(np.median(timings))
            if median > 0 and (high - low) / median <= rel_tol:
                break
        if time.perf_counter() > deadline and len(timings) >= min(min_calls, 10):
            break
    return np.asarray(timings)


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

    ``budget_s`` is spent per batch size; the result also holds
    ``latency_p50_ms_interval``, the interval of the single-row median.
    """
    if len(rows) == 0:
        raise ValueError("measure_latency needs at least one row")
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for size in BATCH_SIZES:
        batch = rows.iloc[rng.integers(0, len(rows), size)]
        timings = (
            _time_calls(
                model, batch, budget_s=budget_s, rel_tol=rel_tol, min_calls=min_calls, max_calls=max_calls
            )
            * 1e3
        )
        if size == 1:
            p50, p95, p99 = np.percentile(timings, [50, 95, 99])
            out.update(
                latency_p50_ms=float(p50),
                latency_p95_ms=float(p95),
                latency_p99_ms=float(p99),
                latency_p50_ms_interval=median_interval(timings),
                latency_calls=len(timings),
            )
        else:
            out[f"batch{size}_ms"] = float(np.median(timings))
            out[f"batch{size}_ms_interval"] = median_interval(timings)
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
