"""The metric registry: one place that says what each metric is.

The project-file validation, the objective and the evaluation all read this
registry, so a metric name is accepted in ``flywheel.yaml`` exactly when flywheel
can compute it. Each entry records the tasks it applies to, whether higher is
better, whether it needs hard labels or class scores, and its range.

The values are computed here with scikit-learn's reference implementations;
the metric engine (sufficient statistics, bootstrap intervals) replaces the
``compute`` functions without changing the registry's shape.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn import metrics as skm

__all__ = [
    "CLASSIFICATION",
    "METRICS",
    "Metric",
    "REGRESSION",
    "compute_metrics",
    "get_metric",
    "metric_names",
]

CLASSIFICATION = frozenset({"binary", "multiclass"})
REGRESSION = frozenset({"regression"})

# compute(y_true, y_pred, proba, classes) -> float; proba columns follow `classes`.
ComputeFn = Callable[[np.ndarray, np.ndarray, "np.ndarray | None", np.ndarray], float]


@dataclass(frozen=True)
class Metric:
    """A registered metric: name, direction, needs, range and how to compute it."""

    name: str
    tasks: frozenset[str]
    greater_is_better: bool
    needs: Literal["labels", "scores"]
    lower: float
    upper: float
    compute: ComputeFn
    description: str

    @property
    def best(self) -> float:
        """The metric's best possible value (1 for accuracy, 0 for an error)."""
        return self.upper if self.greater_is_better else self.lower

    def applies_to(self, task: str) -> bool:
        """Whether the metric is defined for ``task``."""
        return task in self.tasks


def _labels(fn: Callable[..., float], **kwargs: object) -> ComputeFn:
    def compute(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray) -> float:
        return float(fn(y, pred, **kwargs))

    return compute


def _averaged(fn: Callable[..., float], average: str) -> ComputeFn:
    def compute(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray) -> float:
        return float(fn(y, pred, labels=classes, average=average, zero_division=0))

    return compute


def _roc_auc(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray) -> float:
    assert proba is not None
    if len(classes) == 2:
        return float(skm.roc_auc_score(y == classes[1], proba[:, 1]))
    return float(skm.roc_auc_score(y, proba, labels=classes, multi_class="ovr", average="macro"))


def _average_precision(
    y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray
) -> float:
    assert proba is not None
    if len(classes) == 2:
        return float(skm.average_precision_score(y == classes[1], proba[:, 1]))
    onehot = (y[:, None] == classes[None, :]).astype(int)
    return float(skm.average_precision_score(onehot, proba, average="macro"))


def _log_loss(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray) -> float:
    assert proba is not None
    return float(skm.log_loss(y, proba, labels=classes))


def _brier(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray) -> float:
    assert proba is not None
    if len(classes) == 2:
        return float(skm.brier_score_loss(y == classes[1], proba[:, 1]))
    onehot = (y[:, None] == classes[None, :]).astype(float)
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


def _rmse(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray) -> float:
    return float(np.sqrt(skm.mean_squared_error(y, pred)))


_INF = float("inf")


def _build() -> dict[str, Metric]:
    c, r = CLASSIFICATION, REGRESSION
    entries = [
        Metric(
            "accuracy",
            c,
            True,
            "labels",
            0,
            1,
            _labels(skm.accuracy_score),
            "share of rows predicted correctly",
        ),
        Metric(
            "balanced_accuracy",
            c,
            True,
            "labels",
            0,
            1,
            _labels(skm.balanced_accuracy_score),
            "mean recall over classes",
        ),
        Metric(
            "mcc",
            c,
            True,
            "labels",
            -1,
            1,
            _labels(skm.matthews_corrcoef),
            "Matthews correlation coefficient",
        ),
        Metric(
            "cohen_kappa", c, True, "labels", -1, 1, _labels(skm.cohen_kappa_score), "agreement beyond chance"
        ),
        Metric(
            "roc_auc",
            c,
            True,
            "scores",
            0,
            1,
            _roc_auc,
            "area under the ROC curve (one-vs-rest macro for multiclass)",
        ),
        Metric(
            "average_precision",
            c,
            True,
            "scores",
            0,
            1,
            _average_precision,
            "area under the precision-recall curve (macro for multiclass)",
        ),
        Metric("log_loss", c, False, "scores", 0, _INF, _log_loss, "cross-entropy of the class scores"),
        Metric("brier", c, False, "scores", 0, 2, _brier, "mean squared error of the class scores"),
        Metric("mae", r, False, "labels", 0, _INF, _labels(skm.mean_absolute_error), "mean absolute error"),
        Metric("mse", r, False, "labels", 0, _INF, _labels(skm.mean_squared_error), "mean squared error"),
        Metric("rmse", r, False, "labels", 0, _INF, _rmse, "root mean squared error"),
        Metric("r2", r, True, "labels", -_INF, 1, _labels(skm.r2_score), "coefficient of determination"),
        Metric(
            "mape",
            r,
            False,
            "labels",
            0,
            _INF,
            _labels(skm.mean_absolute_percentage_error),
            "mean absolute percentage error (a fraction)",
        ),
        Metric(
            "median_ae",
            r,
            False,
            "labels",
            0,
            _INF,
            _labels(skm.median_absolute_error),
            "median absolute error",
        ),
        Metric("max_error", r, False, "labels", 0, _INF, _labels(skm.max_error), "largest absolute error"),
    ]
    for kind, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        for average in ("micro", "macro", "weighted"):
            entries.append(
                Metric(
                    f"{kind}_{average}",
                    c,
                    True,
                    "labels",
                    0,
                    1,
                    _averaged(fn, average),
                    f"{kind}, {average}-averaged over classes",
                )
            )
    return {m.name: m for m in entries}


METRICS: dict[str, Metric] = _build()


def metric_names(task: str | None = None) -> list[str]:
    """Registered metric names, sorted; only those defined for ``task`` when given."""
    return sorted(n for n, m in METRICS.items() if task is None or m.applies_to(task))


def get_metric(name: str) -> Metric:
    """The registered metric called ``name``; ``KeyError`` if there is none."""
    return METRICS[name]


def compute_metrics(
    names: Sequence[str],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    classes: np.ndarray,
) -> dict[str, float | None]:
    """Compute each named metric; ``None`` where it needs scores the model lacks.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0, 1, 1, 0])
    >>> compute_metrics(["accuracy"], y, np.array([0, 1, 0, 0]), None, np.array([0, 1]))
    {'accuracy': 0.75}
    """
    out: dict[str, float | None] = {}
    for name in names:
        metric = METRICS[name]
        if metric.needs == "scores" and proba is None:
            out[name] = None
            continue
        with warnings.catch_warnings():
            # Edge cases (a class absent from y_true, an undefined precision) have defined
            # values here; scikit-learn's warnings about them are not the user's concern.
            warnings.simplefilter("ignore")
            out[name] = metric.compute(y_true, y_pred, proba, classes)
    return out
