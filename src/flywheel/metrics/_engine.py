"""``score``: exact metrics with bootstrap confidence intervals, one estimate per metric asked for.

Label metrics share their confusion cells and so one multinomial draw; every
other metric is resampled as ``_bootstrap`` plans it. Inputs are checked by
``_inputs``; the paired comparison of two models is ``_compare``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import numpy as np

from flywheel.metrics._bootstrap import (
    DEFAULT_MAX_ROWS,
    bootstrap_interval,
    compressed,
    interval_note,
    jackknife_accelerations,
    resample_plan,
    resampled,
)
from flywheel.metrics._cells import CellFn, Cells
from flywheel.metrics._confusion import label_metrics
from flywheel.metrics._inputs import prepare
from flywheel.metrics._means import MeanBins, is_mean, maybe_few, mean_bins
from flywheel.metrics._median import MEDIAN_LABEL, OrderStatistics, median_interval, partitioned
from flywheel.metrics._r2 import R2Bins, r2_bins
from flywheel.metrics._registry import MetricRef
from flywheel.metrics._statistics import Prepared, build_cells, confusion_spec, row_keys, wilson_interval

__all__ = [
    "Estimate",
    "Method",
    "Scores",
    "binned_mean",
    "binned_r2",
    "exact_median",
    "score",
]

Method = Literal["bca", "percentile"]


@dataclass(frozen=True)
class Estimate:
    """A metric's value on the rows given, with its bootstrap interval."""

    name: str
    value: float
    low: float | None
    high: float | None
    n: int
    confidence: float
    method: str
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "confidence": self.confidence,
            "method": self.method,
            "note": self.note,
        }


@dataclass(frozen=True)
class Scores(Mapping[str, Estimate]):
    """Estimates by metric name, in the order asked for."""

    estimates: dict[str, Estimate] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Estimate:
        return self.estimates[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.estimates)

    def __len__(self) -> int:
        return len(self.estimates)

    def values_only(self) -> dict[str, float]:
        """Point values by name."""
        return {k: e.value for k, e in self.estimates.items()}


def _estimate_group(
    refs: Sequence[MetricRef],
    group: Sequence[Cells],
    p: Prepared,
    confidence: float,
    n_resamples: int,
    rng: np.random.Generator,
    method: Method,
    multi: CellFn | None = None,
) -> list[Estimate]:
    """Estimates for metrics that share exactly-resampled cells (one draw serves all)."""
    counts = group[0].counts()[None, :]
    points = [float(v[0]) for v in multi(counts)] if multi is not None else [c.value() for c in group]
    draws = resampled(group, n_resamples, rng, multi)
    accels = jackknife_accelerations(group, multi) if method == "bca" else [None] * len(group)
    out = []
    for ref, point, row, accel in zip(refs, points, draws, accels, strict=True):
        low, high, used = bootstrap_interval(point, row, confidence, accel)
        out.append(
            Estimate(ref.name, point, low, high, p.n, confidence, used, interval_note(p.n, low, high, None))
        )
    return out


def _estimate_one(
    ref: MetricRef,
    p: Prepared,
    confidence: float,
    n_resamples: int,
    rng: np.random.Generator,
    method: Method,
    max_rows: int,
) -> Estimate:
    def build(prep: Prepared, bins: int | None) -> Cells:
        return build_cells(ref, prep, bins=bins)

    # Many rows: a mean's and R²'s bootstrap over bins of the rows, a median's from its order statistics.
    values = _row_values(ref, p) if p.n > max_rows else None
    if values is not None and not all(maybe_few(v) for v in values):  # many distinct: no sort to count
        return _from_values(ref, values, confidence, n_resamples, rng)
    full = build(p, None)
    point = full.value()
    if ref.metric.name == "max_error":
        return Estimate(
            ref.name,
            point,
            None,
            None,
            p.n,
            confidence,
            "none",
            "bootstrap intervals are not valid for a maximum",
        )
    if n_resamples == 0:
        return Estimate(ref.name, point, None, None, p.n, confidence, "none")
    if compressed(full, p.n):
        return _estimate_group([ref], [full], p, confidence, n_resamples, rng, method)[0]
    if values is not None:
        return _from_values(ref, values, confidence, n_resamples, rng)
    coarsen = ref.metric.family == "ranking" and p.k == 2
    plan = resample_plan(build, full, p, point, max_rows, rng, coarsen)
    draws = point + plan.scale * (resampled([plan.cells], n_resamples, rng)[0] - plan.center)
    accel = jackknife_accelerations([plan.cells])[0] if method == "bca" and plan.exact else None
    low, high, used = bootstrap_interval(point, draws, confidence, accel)
    return Estimate(
        ref.name, point, low, high, p.n, confidence, used, interval_note(p.n, low, high, plan.label or None)
    )


def _row_values(ref: MetricRef, p: Prepared) -> tuple[np.ndarray, ...] | None:
    """What a metric bootstrapped over bins or order statistics is computed from: the per-row values
    of a mean or the median, R²'s targets and predictions; None for other metrics."""
    if is_mean(ref) or ref.metric.name == "median_ae":
        return (row_keys(ref, p)[0],)
    if ref.metric.name == "r2":
        assert p.true is not None and p.pred is not None
        return p.true, p.pred  # few distinct of each: few distinct (target, error) pairs
    return None


def _from_values(
    ref: MetricRef,
    values: tuple[np.ndarray, ...],
    confidence: float,
    n_resamples: int,
    rng: np.random.Generator,
) -> Estimate:
    if ref.metric.name == "r2":
        return binned_r2(ref, r2_bins(*values), confidence, n_resamples, rng)
    if is_mean(ref):
        return binned_mean(ref, mean_bins(values[0]), confidence, n_resamples, rng)
    return exact_median(ref, len(values[0]), partitioned(values[0]), confidence, n_resamples)


def exact_median(
    ref: MetricRef, n: int, order: OrderStatistics, confidence: float, n_resamples: int
) -> Estimate:
    """A median's estimate with the percentile interval of its exact bootstrap distribution (``_median``)."""
    point, low, high = median_interval(n, confidence, order)
    if n_resamples == 0:
        return Estimate(ref.name, point, None, None, n, confidence, "none")
    note = interval_note(n, low, high, MEDIAN_LABEL)
    return Estimate(ref.name, point, low, high, n, confidence, "percentile", note)


def binned_mean(
    ref: MetricRef, bins: MeanBins, confidence: float, n_resamples: int, rng: np.random.Generator
) -> Estimate:
    """A mean's estimate from the bins of its per-row values (see ``_means``): a percentile interval."""
    root = ref.metric.name == "rmse"
    draw = partial(bins.draws, n_resamples, rng, root)
    return _binned(ref, bins, bins.value(root), draw, confidence, n_resamples)


def binned_r2(
    ref: MetricRef, bins: R2Bins, confidence: float, n_resamples: int, rng: np.random.Generator
) -> Estimate:
    """R²'s estimate from the bins of its rows (see ``_r2``): a percentile interval."""
    return _binned(ref, bins, bins.value(), partial(bins.draws, n_resamples, rng), confidence, n_resamples)


def _binned(
    ref: MetricRef,
    bins: MeanBins | R2Bins,
    point: float,
    draw: Callable[[], np.ndarray],
    confidence: float,
    n_resamples: int,
) -> Estimate:
    if n_resamples == 0 or not bins.finite():
        return Estimate(ref.name, point, None, None, bins.n, confidence, "none")
    low, high, used = bootstrap_interval(point, draw(), confidence, None)
    note = interval_note(bins.n, low, high, bins.label)
    return Estimate(ref.name, point, low, high, bins.n, confidence, used, note)


def score(
    y_true: Any,
    y_pred: Any = None,
    y_score: Any = None,
    metrics: Sequence[str] | None = None,
    *,
    classes: Any = None,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    method: Method = "bca",
    max_rows: int = DEFAULT_MAX_ROWS,
) -> Scores:
    """Exact metrics with bootstrap confidence intervals.

    Parameters
    ----------
    y_true
        True labels (classification) or values (regression).
    y_pred
        Predicted labels or values. For classification it may be omitted when
        ``y_score`` is given (the highest-scoring class is predicted).
    y_score
        Class scores: shape (n, K) with columns in the sorted order of the
        classes, or shape (n,) with the positive class's score for a binary task.
    metrics
        Metric names from the registry (``recall[class=7]``, ``pinball[q=0.9]``
        included); by default a standard set for the task.
    classes
        All class labels, when some may be absent from ``y_true``.
    confidence, n_resamples, seed
        Interval level, bootstrap resamples (0 for none) and the seed.
    method
        ``"bca"`` (where cheap, else percentile) or ``"percentile"``.
    max_rows
        Above this many rows, a mean of per-row values over many distinct values (log loss,
        Brier, MAE, MSE, RMSE, MAPE, pinball) is bootstrapped over bins of its values, R² over
        bins of its squared errors and targets, the median absolute error from its order
        statistics, and other metrics over many cells use the m-out-of-n bootstrap; the
        estimate's note says so.

    Raises
    ------
    ValueError
        Naming the argument, what is allowed and what was given.

    Examples
    --------
    >>> s = score([0, 1, 1, 0, 1], [0, 1, 0, 0, 1], metrics=["accuracy"], n_resamples=200)
    >>> s["accuracy"].value
    0.8
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence}")
    if n_resamples < 0:
        raise ValueError(f"n_resamples must be >= 0; got {n_resamples}")
    if method not in ("bca", "percentile"):
        raise ValueError(f"method must be 'bca' or 'percentile'; got {method!r}")
    prepared, refs = prepare(y_true, y_pred, y_score, metrics, classes)
    out: dict[str, Estimate] = {}
    label_refs = [r for r in refs if r.metric.family == "confusion"]
    if label_refs and n_resamples > 0:
        # Every label metric shares the confusion cells: one multinomial draw serves them all.
        group = [build_cells(r, prepared) for r in label_refs]
        specs = [confusion_spec(r, prepared) for r in label_refs]
        k = prepared.k

        def multi(w: np.ndarray) -> np.ndarray:
            return label_metrics(specs, w.reshape(-1, k, k))

        rng = np.random.default_rng([seed, 0])
        estimates = _estimate_group(label_refs, group, prepared, confidence, n_resamples, rng, method, multi)
        for est in estimates:
            out[est.name] = est
    for i, ref in enumerate(refs):
        if ref.name not in out:
            rng = np.random.default_rng([seed, i + 1])
            out[ref.name] = _estimate_one(ref, prepared, confidence, n_resamples, rng, method, max_rows)
    return Scores({r.name: _uncollapsed(out[r.name]) for r in refs})


def _uncollapsed(est: Estimate) -> Estimate:
    """Accuracy of 0 or 1 with its Wilson interval instead of the bootstrap's ``[1, 1]``.

    Every resample of an all-right (or all-wrong) sample is all right, so the bootstrap interval
    collapses onto the point, which claims certainty 114 rows cannot give. The Wilson score
    interval is the binomial proportion's own and does not collapse at 0 or 1.
    """
    collapsed = est.low is not None and est.low == est.high and est.value in (0.0, 1.0)
    if est.name != "accuracy" or not collapsed or est.n == 0:
        return est
    low, high = wilson_interval(est.value * est.n, est.n, est.confidence)
    note = "every resample scores the same: Wilson score interval of the proportion"
    return Estimate(est.name, est.value, low, high, est.n, est.confidence, "wilson", note)
