"""What the confusion and calibration plots show, computed once from the best model's predictions
on the selection split and stored with the run, so the report and the workbench draw the same
numbers without keeping the predictions.

The confusion matrix keeps counts (the plot colours each row by its share, which is the class's
recall), with the classes beyond ``limit`` folded into one "other" row and column so a 500-class
problem still draws. The reliability table bins the predicted probability into equal-width bins and
gives each bin's observed rate with its Wilson interval: the probability of the positive class for
a binary task, the top class's probability against whether the top class was right otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flywheel.metrics import wilson_interval

__all__ = [
    "Confusion",
    "Reliability",
    "confusion",
    "reliability",
]

OTHER = "(other classes)"


@dataclass(frozen=True)
class Confusion:
    """Counts of true class (rows) against predicted class (columns)."""

    labels: list[str]
    matrix: list[list[int]]
    folded: int  # how many classes the "other" row and column hold (0: none folded)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Reliability:
    """Predicted probability against the observed rate, bin by bin, and the calibration error."""

    kind: str  # "positive" (P of ``positive``) or "top" (the top class's probability)
    positive: str | None
    bins: list[dict[str, float]]  # low, high, predicted, observed, observed_low, observed_high, rows
    ece: float  # expected calibration error: the rows-weighted mean |observed - predicted|
    rows: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


def _codes(values: np.ndarray, index: dict[str, int]) -> np.ndarray:
    return np.fromiter((index.get(str(v), -1) for v in values), dtype=np.int64, count=len(values))


def confusion(y: np.ndarray, pred: np.ndarray, classes: Sequence[Any], *, limit: int = 20) -> Confusion:
    """The confusion matrix over ``classes``; beyond ``limit`` classes the least frequent true
    classes are folded into one "other" class. Predictions outside ``classes`` count as "other"."""
    names = [str(c) for c in classes]
    index = {n: i for i, n in enumerate(names)}
    yi, pi = _codes(np.asarray(y), index), _codes(np.asarray(pred), index)
    k = len(names)
    support = np.bincount(yi[yi >= 0], minlength=k)
    if k <= limit:
        keep = list(range(k))
    else:
        keep = sorted(np.argsort(-support, kind="stable")[: max(1, limit - 1)].tolist())
    slot = np.full(k + 1, len(keep), dtype=np.int64)  # the last slot is "other" (and unknown codes)
    slot[keep] = np.arange(len(keep))
    folded = k - len(keep)
    size = len(keep) + (1 if folded or (pi < 0).any() or (yi < 0).any() else 0)
    cells = np.bincount(slot[yi] * size + slot[pi], minlength=size * size).reshape(size, size)
    labels = [names[i] for i in keep] + ([OTHER] if size > len(keep) else [])
    return Confusion(labels, cells.astype(int).tolist(), folded)


def reliability(
    y: np.ndarray, proba: np.ndarray, classes: Sequence[Any], *, bins: int = 10
) -> Reliability | None:
    """The reliability table of ``proba`` (rows × classes, in ``classes`` order); ``None`` when
    there is nothing to bin (no rows, or a single class)."""
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2 or p.shape[0] != len(y):
        return None
    names = [str(c) for c in classes]
    truth = np.array([str(v) for v in y])
    if p.shape[1] == 2:
        kind, positive = "positive", names[1]
        score, hit = p[:, 1], truth == names[1]
    else:
        kind, positive = "top", None
        top = np.argmax(p, axis=1)
        score, hit = p[np.arange(len(p)), top], truth == np.asarray(names)[top]
    score = np.clip(np.nan_to_num(score, nan=0.0), 0.0, 1.0)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.searchsorted(edges[1:-1], score)  # right-closed bins, as scikit-learn's calibration_curve
    rows = np.bincount(which, minlength=bins)
    predicted = np.bincount(which, weights=score, minlength=bins)
    observed = np.bincount(which, weights=hit.astype(float), minlength=bins)
    out, gap = [], 0.0
    for b in np.flatnonzero(rows):
        n = int(rows[b])
        low, high = wilson_interval(float(observed[b]), n)
        mean_p, rate = float(predicted[b] / n), float(observed[b] / n)
        gap += n * abs(rate - mean_p)
        out.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "predicted": mean_p,
                "observed": rate,
                "observed_low": float(low),
                "observed_high": float(high),
                "rows": n,
            }
        )
    return Reliability(kind, positive, out, float(gap / len(score)), len(score))
