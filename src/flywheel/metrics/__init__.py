"""The metric engine: exact metrics, bootstrap intervals and paired comparisons.

>>> from flywheel.metrics import score
>>> score([0, 1, 1, 0], [0, 1, 0, 0], metrics=["accuracy"], n_resamples=0)["accuracy"].value
0.75
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
from flywheel.metrics._systems import SYSTEMS_METRICS, SystemsMetric

if TYPE_CHECKING:
    from flywheel.metrics._accumulate import Accumulator
    from flywheel.metrics._compare import Comparison, compare, rows_to_decide
    from flywheel.metrics._confusion import ConfusionAccumulator, label_metric
    from flywheel.metrics._dataset import score_batches, score_dataset
    from flywheel.metrics._engine import Estimate, Scores, score
    from flywheel.metrics._inputs import prepare
    from flywheel.metrics._statistics import wilson_interval

# The engine (NumPy, SciPy, pandas) loads on first use; the names and directions of the metrics,
# which a project file is checked against, do not need it.
_LAZY = {
    "Accumulator": "_accumulate",
    "Comparison": "_compare",
    "compare": "_compare",
    "rows_to_decide": "_compare",
    "ConfusionAccumulator": "_confusion",
    "label_metric": "_confusion",
    "score_batches": "_dataset",
    "score_dataset": "_dataset",
    "Estimate": "_engine",
    "Scores": "_engine",
    "score": "_engine",
    "prepare": "_inputs",
    "wilson_interval": "_statistics",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'flywheel.metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"flywheel.metrics.{module}"), name)
    globals()[name] = value
    return value


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
    "label_metric",
    "metric_names",
    "parse_metric",
    "prepare",
    "rows_to_decide",
    "score",
    "score_batches",
    "score_dataset",
    "wilson_interval",
]
