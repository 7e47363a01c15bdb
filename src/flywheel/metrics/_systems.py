"""The systems metrics a constraint can name: latency, batch time, throughput, memory, size, fit time.

The vocabulary only (name, unit, direction); :mod:`flywheel.evaluation` measures them. It lives
beside the quality metrics so the project file is checked against one list of metric names.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "SYSTEMS_METRICS",
    "SystemsMetric",
]


@dataclass(frozen=True)
class SystemsMetric:
    """A registered systems metric."""

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
        SystemsMetric("batch32_ms", "ms", "median time to predict a batch of 32 rows"),
        SystemsMetric("batch1024_ms", "ms", "median time to predict a batch of 1024 rows"),
        SystemsMetric("throughput_rows_s", "rows/s", "rows predicted per second in batches of 1024", True),
        SystemsMetric("memory_mb", "MB", "peak memory allocated while predicting 1024 rows"),
        SystemsMetric("size_mb", "MB", "size of the pickled fitted model"),
        SystemsMetric("fit_time_s", "s", "time to fit on the training split"),
    )
}
