"""The metric registry: one place that says what each metric is.

The project-file validation, the objective and the engine all read this
registry, so a metric name is accepted in ``flywheel.yaml`` exactly when
flywheel can compute it. Each entry records the tasks it applies to, whether
higher is better, whether it needs hard labels or class scores, its range, and
the family of sufficient statistics it is computed from.

Names follow scikit-learn's where one exists (``*_score`` style names drop the
suffix; ``*_error``/``*_loss`` are lower-is-better). Two kinds take a
parameter in brackets: per-class ``precision[class=7]``, ``recall[class=7]``,
``f1[class=7]``, and the pinball loss at a quantile, ``pinball[q=0.9]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CLASSIFICATION",
    "METRICS",
    "Metric",
    "MetricRef",
    "REGRESSION",
    "get_metric",
    "is_metric",
    "metric_names",
    "parse_metric",
]

CLASSIFICATION = frozenset({"binary", "multiclass"})
REGRESSION = frozenset({"regression"})
BINARY = frozenset({"binary"})
Family = Literal["confusion", "ranking", "proba", "regression", "composite"]


@dataclass(frozen=True)
class Metric:
    """A registered metric: name, tasks, direction, needs, range and statistics family."""

    name: str
    tasks: frozenset[str]
    greater_is_better: bool
    needs: Literal["labels", "scores"]
    lower: float
    upper: float
    family: Family
    description: str

    @property
    def best(self) -> float:
        """The metric's best possible value (1 for accuracy, 0 for an error)."""
        return self.upper if self.greater_is_better else self.lower

    def applies_to(self, task: str) -> bool:
        """Whether the metric is defined for ``task``."""
        return task in self.tasks


@dataclass(frozen=True)
class MetricRef:
    """A metric as named by the user: the registered metric plus its bracket parameter."""

    name: str
    metric: Metric
    class_label: str | None = None
    q: float | None = None

    @property
    def greater_is_better(self) -> bool:
        """Direction of the underlying metric."""
        return self.metric.greater_is_better

    @property
    def best(self) -> float:
        """The best possible value."""
        return self.metric.best

    @property
    def lower(self) -> float:
        """Lowest possible value."""
        return self.metric.lower

    @property
    def upper(self) -> float:
        """Highest possible value."""
        return self.metric.upper

    def applies_to(self, task: str) -> bool:
        """Whether the metric is defined for ``task``."""
        return self.metric.applies_to(task)


_INF = float("inf")


def _m(
    name: str,
    tasks: frozenset[str],
    hib: bool,
    needs: Literal["labels", "scores"],
    lo: float,
    hi: float,
    family: Family,
    text: str,
) -> Metric:
    return Metric(name, tasks, hib, needs, lo, hi, family, text)


def _label_metrics() -> list[Metric]:
    """Classification metrics of hard labels, computed from the confusion counts."""
    c = CLASSIFICATION
    return [
        _m("accuracy", c, True, "labels", 0, 1, "confusion", "share of rows predicted correctly"),
        _m("balanced_accuracy", c, True, "labels", 0, 1, "confusion", "mean recall over the true classes"),
        _m("mcc", c, True, "labels", -1, 1, "confusion", "Matthews correlation coefficient"),
        _m("cohen_kappa", c, True, "labels", -1, 1, "confusion", "agreement beyond chance"),
        _m("precision", BINARY, True, "labels", 0, 1, "confusion", "precision of the positive class"),
        _m("recall", BINARY, True, "labels", 0, 1, "confusion", "recall of the positive class"),
        _m("f1", BINARY, True, "labels", 0, 1, "confusion", "F1 of the positive class"),
    ]


def _score_metrics() -> list[Metric]:
    """Classification metrics of class scores: rankings and probabilities."""
    c = CLASSIFICATION
    ovr = "(one-vs-rest macro for multiclass)"
    return [
        _m("roc_auc", c, True, "scores", 0, 1, "ranking", f"area under the ROC curve {ovr}"),
        _m(
            "average_precision",
            c,
            True,
            "scores",
            0,
            1,
            "ranking",
            f"area under the precision-recall curve {ovr}",
        ),
        _m("log_loss", c, False, "scores", 0, _INF, "proba", "cross-entropy of the class probabilities"),
        _m("brier", c, False, "scores", 0, 2, "proba", "mean squared error of the class probabilities"),
        _m(
            "ece",
            c,
            False,
            "scores",
            0,
            1,
            "proba",
            "expected calibration error (15 equal-width confidence bins)",
        ),
    ]


def _regression_metrics() -> list[Metric]:
    """Regression metrics of predicted values."""
    r = REGRESSION
    return [
        _m("mae", r, False, "labels", 0, _INF, "regression", "mean absolute error"),
        _m("mse", r, False, "labels", 0, _INF, "regression", "mean squared error"),
        _m("rmse", r, False, "labels", 0, _INF, "regression", "root mean squared error"),
        _m("r2", r, True, "labels", -_INF, 1, "regression", "coefficient of determination"),
        _m("mape", r, False, "labels", 0, _INF, "regression", "mean absolute percentage error (a fraction)"),
        _m("median_ae", r, False, "labels", 0, _INF, "regression", "median absolute error"),
        _m("max_error", r, False, "labels", 0, _INF, "regression", "largest absolute error"),
        _m(
            "pinball",
            r,
            False,
            "labels",
            0,
            _INF,
            "regression",
            "mean pinball loss at quantile q (pinball[q=0.9]; default 0.5)",
        ),
    ]


def _averaged_metrics() -> list[Metric]:
    """Precision, recall and F1 averaged over classes: micro, macro and weighted."""
    return [
        _m(
            f"{kind}_{average}",
            CLASSIFICATION,
            True,
            "labels",
            0,
            1,
            "confusion",
            f"{kind}, {average}-averaged over classes",
        )
        for kind in ("precision", "recall", "f1")
        for average in ("micro", "macro", "weighted")
    ]


def _build() -> dict[str, Metric]:
    entries = [*_label_metrics(), *_score_metrics(), *_regression_metrics(), *_averaged_metrics()]
    return {e.name: e for e in entries}


METRICS: dict[str, Metric] = _build()
_PARAM = re.compile(r"^(?P<base>[a-z0-9_]+)\[(?P<key>class|q)=(?P<value>[^\]]+)\]$")
_PER_CLASS = frozenset({"precision", "recall", "f1"})


def parse_metric(name: str) -> MetricRef:
    """Resolve a metric name, including ``recall[class=7]`` and ``pinball[q=0.9]``.

    Raises
    ------
    ValueError
        When the name is not a registered metric.

    Examples
    --------
    >>> parse_metric("recall[class=7]").class_label
    '7'
    >>> parse_metric("pinball[q=0.9]").q
    0.9
    """
    if name in METRICS:
        return MetricRef(name, METRICS[name], q=0.5 if name == "pinball" else None)
    match = _PARAM.match(name)
    if match:
        base, key, value = match["base"], match["key"], match["value"].strip()
        if key == "class" and base in _PER_CLASS and value:
            per_class = Metric(
                base, CLASSIFICATION, True, "labels", 0, 1, "confusion", f"{base} of class {value}"
            )
            return MetricRef(name, per_class, class_label=value)
        if key == "q" and base == "pinball":
            try:
                q = float(value)
            except ValueError:
                q = -1.0
            if 0 < q < 1:
                return MetricRef(name, METRICS["pinball"], q=q)
            raise ValueError(f"pinball's quantile must be a number in (0, 1); got {value!r}")
    raise ValueError(f"unknown metric {name!r}")


def is_metric(name: str) -> bool:
    """Whether ``name`` is a registered metric (bracket parameters included)."""
    try:
        parse_metric(name)
    except ValueError:
        return False
    return True


def metric_names(task: str | None = None) -> list[str]:
    """Registered metric names, sorted; only those defined for ``task`` when given."""
    return sorted(n for n, m in METRICS.items() if task is None or m.applies_to(task))


def get_metric(name: str) -> Metric:
    """The registered metric called ``name`` (bracket parameters allowed)."""
    return parse_metric(name).metric
