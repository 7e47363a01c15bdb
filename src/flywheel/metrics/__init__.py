"""The metric engine: exact metrics, bootstrap intervals and paired comparisons.

>>> from flywheel.metrics import score
>>> score([0, 1, 1, 0], [0, 1, 0, 0], metrics=["accuracy"], n_resamples=0)["accuracy"].value
0.75
"""

from flywheel.metrics._accumulate import Accumulator
from flywheel.metrics._compare import Comparison, compare, rows_to_decide
from flywheel.metrics._confusion import ConfusionAccumulator
from flywheel.metrics._engine import Estimate, Scores, score
from flywheel.metrics._inputs import prepare
from flywheel.metrics._registry import (
    CLASSIFICATION,
    METRICS,
    REGRESSION,
    Metric,
    MetricRef,
    get_metric,
    is_metric,
    metric_names,
    parse_metric,
)
from flywheel.metrics._statistics import wilson_interval
from flywheel.metrics._systems import SYSTEMS_METRICS, SystemsMetric

__all__ = [
    "Accumulator",
    "CLASSIFICATION",
    "Comparison",
    "ConfusionAccumulator",
    "Estimate",
    "METRICS",
    "Metric",
    "MetricRef",
    "REGRESSION",
    "SYSTEMS_METRICS",
    "Scores",
    "SystemsMetric",
    "compare",
    "get_metric",
    "is_metric",
    "metric_names",
    "parse_metric",
    "prepare",
    "rows_to_decide",
    "score",
    "wilson_interval",
]
