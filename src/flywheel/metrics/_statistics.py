"""Each metric family as :class:`Cells`: prepared inputs in, cell codes and a cell function out."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse
from scipy.special import ndtri

from flywheel.metrics._cells import CellFn, Cells, joint_cells, unique_rows
from flywheel.metrics._confusion import confusion_counts, label_metric
from flywheel.metrics._ranking import auc_from_cells, average_precision_from_cells, rank_cells
from flywheel.metrics._registry import MetricRef

__all__ = [
    "ECE_BINS",
    "Prepared",
    "build_cells",
    "confusion_spec",
    "rank_key_counts",
    "row_keys",
    "wilson_interval",
]

ECE_BINS = 15
_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True, eq=False)
class Prepared:
    """Validated inputs: class codes (classification) or floats (regression), and scores."""

    task: str  # "classification" or "regression"
    n: int
    classes: np.ndarray | None = None
    true: np.ndarray | None = None  # class codes, or float targets
    pred: np.ndarray | None = None  # class codes, or float predictions
    proba: np.ndarray | None = None  # (n, K) class scores, columns in class order
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def take(self, rows: np.ndarray) -> Prepared:
        """The same inputs restricted to ``rows``."""

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[rows]

        return Prepared(
            self.task, len(rows), self.classes, pick(self.true), pick(self.pred), pick(self.proba)
        )

    @property
    def k(self) -> int:
        """Number of classes."""
        assert self.classes is not None
        return len(self.classes)


def confusion_spec(ref: MetricRef, p: Prepared) -> tuple[str, int | None]:
    """The label metric's base name and, for per-class and binary metrics, the class index."""
    index: int | None = None
    if ref.class_label is not None:
        index = [str(c) for c in p.classes.tolist()].index(ref.class_label)  # type: ignore[union-attr]
    elif ref.metric.name in ("precision", "recall", "f1"):
        index = p.k - 1  # the positive class: the last of the sorted classes
    return ref.metric.name, index


def _confusion(ref: MetricRef, p: Prepared) -> Cells:
    assert p.true is not None and p.pred is not None
    k = p.k
    name, index = confusion_spec(ref, p)
    if "confusion" not in p.cache:  # one pass over the rows, shared by every label metric
        true, pred = p.true, p.pred

        def codes() -> np.ndarray:
            out = np.multiply(true, k, dtype=np.int64)
            out += pred
            return out

        unchecked = p.cache.get("unchecked")  # labels whose range check was left to this pass
        counted = confusion_counts(true, pred, k, check=unchecked is not None)
        if counted is None:
            assert unchecked is not None
            unchecked()  # raises the ValueError naming the argument and the label
        assert counted is not None
        counts = counted.ravel().astype(float)
        p.cache["confusion"] = Cells(codes, k * k, lambda w: w, counts)
    return p.cache["confusion"].with_fn(lambda w: label_metric(name, w.reshape(-1, k, k), index))


def _binary_ranking(
    kind: str, scores: np.ndarray, positive: np.ndarray, bins: int | None, cache: dict[str, Any] | None = None
) -> Cells:
    if cache is not None and "rank" in cache:  # the scores are sorted once per call to score()
        codes, d = cache["rank"]
    else:
        codes, d = rank_cells(scores, positive)
        if cache is not None:
            cache["rank"] = (codes, d)
    if bins is not None and d > bins:
        # Coarsen to quantile bins of the distinct scores (used only for resampling deviations).
        codes = (codes // 2) * bins // d * 2 + (codes % 2)
        d = bins
    from_cells = auc_from_cells if kind == "roc_auc" else average_precision_from_cells
    return Cells(codes, 2 * d, lambda w: from_cells(w.reshape(-1, d, 2)))


def rank_key_counts(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct scores (ascending) and their (negative, positive) row counts: AUC's sufficient statistic."""
    distinct, inverse = np.unique(scores, return_inverse=True)
    codes = inverse.astype(np.int64) * 2 + positive.astype(np.int64)
    return distinct, np.bincount(codes, minlength=2 * len(distinct)).reshape(len(distinct), 2)


def _ranking(ref: MetricRef, p: Prepared, bins: int | None) -> Cells:
    assert p.true is not None and p.proba is not None
    if p.k == 2:
        return _binary_ranking(ref.metric.name, p.proba[:, 1], p.true == 1, bins, p.cache)
    parts = [_binary_ranking(ref.metric.name, p.proba[:, j], p.true == j, None) for j in range(p.k)]
    return joint_cells(parts, lambda values: np.mean(np.stack(values), axis=0))


# --- families keyed by row values: keys per row, and the metric as a function of distinct keys ------

MakeFn = Callable[[np.ndarray], CellFn]


def _mean(distinct: np.ndarray) -> CellFn:
    return lambda w: np.asarray((w @ distinct) / w.sum(axis=1))


def _root_mean(distinct: np.ndarray) -> CellFn:
    return lambda w: np.sqrt(np.asarray((w @ distinct) / w.sum(axis=1)))


def _ece_fn(distinct: np.ndarray) -> CellFn:
    bin_of = np.minimum((distinct[:, 0] * ECE_BINS).astype(np.int64), ECE_BINS - 1)
    rows = np.arange(len(distinct))
    shape = (len(distinct), ECE_BINS)
    count = sparse.csr_matrix((np.ones(len(distinct)), (rows, bin_of)), shape=shape)
    conf = sparse.csr_matrix((distinct[:, 0], (rows, bin_of)), shape=shape)
    hits = sparse.csr_matrix((distinct[:, 1], (rows, bin_of)), shape=shape)

    def fn(w: np.ndarray) -> np.ndarray:
        n_bin, conf_bin, hit_bin = (np.asarray(w @ m) for m in (count, conf, hits))
        return np.asarray(np.abs(hit_bin - conf_bin).sum(axis=1) / n_bin.sum(axis=1))

    return fn


def _r2_fn(distinct: np.ndarray) -> CellFn:
    y, e = distinct[:, 0], distinct[:, 1]

    def fn(w: np.ndarray) -> np.ndarray:
        n, sy, syy, see = w.sum(axis=1), w @ y, w @ (y * y), w @ (e * e)
        sst = np.maximum(syy - sy * sy / n, 0.0)
        out = np.where(see == 0, 1.0, 0.0)  # scikit-learn's convention for a constant target
        np.divide(see, sst, out=out, where=sst > 0)
        return np.where(sst > 0, 1 - out, out)

    return fn


def _median_fn(distinct: np.ndarray) -> CellFn:
    def fn(w: np.ndarray) -> np.ndarray:
        cum = np.cumsum(w, axis=1)
        total = cum[:, -1:]
        lo = np.argmax(cum > np.floor((total - 1) / 2), axis=1)
        hi = np.argmax(cum > np.floor(total / 2), axis=1)
        return np.asarray((distinct[lo] + distinct[hi]) / 2)

    return fn


def _max_fn(distinct: np.ndarray) -> CellFn:
    return lambda w: np.where(w > 0, distinct, -np.inf).max(axis=1)


def row_keys(ref: MetricRef, p: Prepared) -> tuple[np.ndarray, MakeFn]:
    """Per-row keys of a proba or regression metric, and its function of the distinct keys.

    Rows with equal keys are interchangeable for the metric, so the distinct keys
    and their counts are a sufficient statistic (and merge exactly).
    """
    name = ref.metric.name
    assert p.true is not None
    if p.task == "classification":
        assert p.proba is not None
        rows = np.arange(p.n)
        if name == "ece":
            confidence = p.proba.max(axis=1)
            correct = (p.proba.argmax(axis=1) == p.true).astype(float)
            return np.column_stack([confidence, correct]), _ece_fn
        if name == "log_loss":
            chosen = p.proba[rows, p.true]  # a new array: worked on in place (no 8 MB temporaries)
            np.clip(chosen, _EPS, 1 - _EPS, out=chosen)
            return np.negative(np.log(chosen, out=chosen), out=chosen), _mean
        if p.k == 2:  # scikit-learn's binary Brier score: the positive class's squared error
            err = p.proba[:, 1] - (p.true == 1)
            return np.multiply(err, err, out=err), _mean
        onehot = np.zeros_like(p.proba)
        onehot[rows, p.true] = 1.0
        return ((p.proba - onehot) ** 2).sum(axis=1), _mean
    assert p.pred is not None
    err = p.true - p.pred  # a new array: worked on in place (no 8 MB temporaries per million rows)
    if name == "r2":
        return np.column_stack([p.true, err]), _r2_fn
    if name in ("mse", "rmse"):
        return np.multiply(err, err, out=err), _root_mean if name == "rmse" else _mean
    if name == "pinball":
        q = ref.q if ref.q is not None else 0.5
        below = (q - 1) * err  # the loss where err < 0; q * err where err >= 0: the larger of the two
        return np.maximum(np.multiply(err, q, out=err), below, out=err), _mean
    np.abs(err, out=err)
    if name == "mape":
        scale = np.abs(p.true)
        return np.divide(err, np.maximum(scale, _EPS, out=scale), out=err), _mean
    return err, _mean if name == "mae" else _median_fn if name == "median_ae" else _max_fn


def _keyed(ref: MetricRef, p: Prepared) -> Cells:
    keys, make_fn = row_keys(ref, p)
    distinct, codes = unique_rows(keys)
    return Cells(codes, len(distinct), make_fn(distinct))


def build_cells(ref: MetricRef, p: Prepared, *, bins: int | None = None) -> Cells:
    """The cells of one metric; ``bins`` coarsens binary ranking scores to that many bins."""
    family = ref.metric.family
    if family == "confusion":
        return _confusion(ref, p)
    if family == "ranking":
        return _ranking(ref, p, bins)
    return _keyed(ref, p)


_Z95 = 1.959963984540054


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion.

    Examples
    --------
    >>> low, high = wilson_interval(49, 50)
    >>> round(low, 3), round(high, 3)
    (0.895, 0.996)
    """
    if n <= 0:
        raise ValueError(f"n must be positive; got {n}")
    z = _Z95 if confidence == 0.95 else float(ndtri(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
