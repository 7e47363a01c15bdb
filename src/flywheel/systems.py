"""Systems metrics: how fast, how big, how slow to train.

A model is judged on speed and size as well as quality, so the objective can
constrain them (``latency_p95_ms: {max: 2}``). This module measures per-row
prediction latency on real rows (after a warm-up, one row at a time, as a
service would call it), the serialized size of the fitted model and its fit
time. Every systems metric is lower-is-better.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "SYSTEMS_METRICS",
    "SystemsMetric",
    "measure_latency",
    "serialized_size_mb",
]


@dataclass(frozen=True)
class SystemsMetric:
    """A registered systems metric (all are lower-is-better)."""

    name: str
    unit: str
    description: str
    greater_is_better: bool = False


SYSTEMS_METRICS: dict[str, SystemsMetric] = {
    m.name: m
    for m in (
        SystemsMetric("latency_p50_ms", "ms", "median time to predict one row"),
        SystemsMetric("latency_p95_ms", "ms", "95th percentile time to predict one row"),
        SystemsMetric("latency_p99_ms", "ms", "99th percentile time to predict one row"),
        SystemsMetric("size_mb", "MB", "size of the pickled fitted model"),
        SystemsMetric("fit_time_s", "s", "time to fit on the training split"),
    )
}


def measure_latency(
    model: Any, rows: pd.DataFrame, *, n_calls: int = 100, warmup: int = 5
) -> dict[str, float]:
    """Per-row latency percentiles, in milliseconds, over ``n_calls`` single-row calls.

    The rows are cycled so each call sees a real row; the first ``warmup`` calls
    are not timed (caches, lazy imports).
    """
    if len(rows) == 0:
        raise ValueError("measure_latency needs at least one row")
    singles = [rows.iloc[[i % len(rows)]] for i in range(n_calls + warmup)]
    timings = np.empty(n_calls)
    for i, row in enumerate(singles):
        start = time.perf_counter()
        model.predict(row)
        elapsed = time.perf_counter() - start
        if i >= warmup:
            timings[i - warmup] = elapsed
    p50, p95, p99 = np.percentile(timings * 1e3, [50, 95, 99])
    return {"latency_p50_ms": float(p50), "latency_p95_ms": float(p95), "latency_p99_ms": float(p99)}


def serialized_size_mb(model: Any) -> float:
    """Size of the model pickled with the highest protocol, in megabytes (10^6 bytes)."""
    return len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)) / 1e6
