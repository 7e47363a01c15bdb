"""The metric engine: a registry of metrics and their computation."""

from flywheel.metrics._registry import (
    CLASSIFICATION,
    METRICS,
    REGRESSION,
    Metric,
    compute_metrics,
    get_metric,
    metric_names,
)

__all__ = [
    "CLASSIFICATION",
    "METRICS",
    "Metric",
    "REGRESSION",
    "compute_metrics",
    "get_metric",
    "metric_names",
]
