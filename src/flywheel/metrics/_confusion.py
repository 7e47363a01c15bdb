"""Label metrics from confusion counts, vectorised over a batch of count matrices.

Every label metric (accuracy, precision/recall/F1 in all their averages, MCC,
Cohen's kappa, balanced accuracy) is a function of the KxK confusion counts.
Computing them from counts costs nothing once the counts exist, and the counts
cost one ``np.bincount`` pass over the rows. A bootstrap resample of rows has
exactly the distribution of a multinomial draw over the K² cells, so intervals
are computed on count matrices of shape ``(B, K, K)`` without touching the rows
again: the cost does not grow with the number of rows.

Conventions follow scikit-learn's (``zero_division=0``): a precision with no
predicted rows, a recall with no true rows, and an F1 with neither, are 0;
balanced accuracy averages recall over the classes present in the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

__all__ = [
    "ConfusionAccumulator",
    "confusion_counts",
    "label_metric",
    "label_metrics",
]


_CHUNK = 1 << 18  # rows per chunk: the temporary codes stay in cache


def confusion_counts(
    true_codes: np.ndarray, pred_codes: np.ndarray, k: int, *, check: bool = False
) -> np.ndarray | None:
    """KxK counts (rows: truth, columns: prediction) in one chunked bincount pass.

    Codes must lie in 0..k-1; with ``check`` they are verified chunk by chunk
    while the chunk is in cache (``None`` is returned when one is out of range).
    Chunking keeps the combined codes in cache, so the pass reads each input
    once and writes nothing the size of the input.
    """
    counts = np.zeros(k * k, dtype=np.int64)
    buf = np.empty(min(_CHUNK, len(true_codes)), dtype=np.int64)
    if check:  # negatives wrap to huge unsigned values: one max checks 0 <= code < k
        t_view = true_codes.view(np.dtype(f"u{true_codes.dtype.itemsize}"))
        p_view = pred_codes.view(np.dtype(f"u{pred_codes.dtype.itemsize}"))
    for start in range(0, len(true_codes), _CHUNK):
        stop = start + _CHUNK
        if check and (int(t_view[start:stop].max()) >= k or int(p_view[start:stop].max()) >= k):
            return None
        t = true_codes[start:stop]
        b = buf[: len(t)]
        np.multiply(t, k, out=b, casting="unsafe")
        b += pred_codes[start:stop]
        counts += np.bincount(b, minlength=k * k)
    return counts.reshape(k, k)


@dataclass
class ConfusionAccumulator:
    """Mergeable confusion counts: ``update`` with chunks of codes, ``merge`` partial results.

    >>> acc = ConfusionAccumulator(2)
    >>> acc.update(np.array([0, 1, 1]), np.array([0, 1, 0]))
    >>> other = ConfusionAccumulator(2)
    >>> other.update(np.array([1]), np.array([1]))
    >>> acc.merge(other).counts.tolist()
    [[1, 0], [1, 2]]
    """

    k: int
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros((self.k, self.k), dtype=np.int64)

    def update(self, true_codes: np.ndarray, pred_codes: np.ndarray) -> None:
        """Add a chunk of rows (class codes 0..K-1)."""
        counts = confusion_counts(true_codes, pred_codes, self.k, check=True)
        if counts is None:
            raise ValueError(f"class codes must lie in 0..{self.k - 1}")
        self.counts += counts

    def merge(self, other: ConfusionAccumulator) -> ConfusionAccumulator:
        """Add another accumulator's counts into this one; returns self."""
        if other.k != self.k:
            raise ValueError(f"cannot merge accumulators over {self.k} and {other.k} classes")
        self.counts += other.counts
        return self


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(num, den).shape, dtype=float)
    np.divide(num, den, out=out, where=den != 0)
    return out


class _Parts(NamedTuple):
    tp: np.ndarray
    support: np.ndarray
    predicted: np.ndarray
    n: np.ndarray


def _parts(c: np.ndarray) -> _Parts:
    """(tp, support, predicted, n) for counts of shape (..., K, K): shared by every label metric."""
    c = c.astype(float, copy=False)
    return _Parts(np.diagonal(c, axis1=-2, axis2=-1), c.sum(axis=-1), c.sum(axis=-2), c.sum(axis=(-2, -1)))


def _per_class(kind: str, q: _Parts) -> np.ndarray:
    if kind == "precision":
        return _safe_div(q.tp, q.predicted)
    if kind == "recall":
        return _safe_div(q.tp, q.support)
    return _safe_div(2 * q.tp, q.support + q.predicted)  # f1 = 2tp / (2tp + fp + fn)


def _accuracy(q: _Parts) -> np.ndarray:
    return _safe_div(q.tp.sum(axis=-1), q.n)


def _averaged(kind: str, average: str, q: _Parts) -> np.ndarray:
    if average == "micro":  # with every class counted, micro P = R = F1 = accuracy
        return _accuracy(q)
    values = _per_class(kind, q)
    if average == "macro":
        return values.mean(axis=-1)
    return _safe_div((values * q.support).sum(axis=-1), q.n)


def _balanced_accuracy(q: _Parts) -> np.ndarray:
    present = q.support > 0
    recall = _safe_div(q.tp, q.support)
    return _safe_div((recall * present).sum(axis=-1), present.sum(axis=-1).astype(float))


def _mcc(q: _Parts) -> np.ndarray:
    t, p, n = q.support, q.predicted, q.n
    cov_tp = q.tp.sum(axis=-1) * n - (t * p).sum(axis=-1)
    cov_pp = n**2 - (p**2).sum(axis=-1)
    cov_tt = n**2 - (t**2).sum(axis=-1)
    return _safe_div(cov_tp, np.sqrt(cov_tt * cov_pp))


def _kappa(q: _Parts) -> np.ndarray:
    observed_disagreement = 1 - _accuracy(q)
    expected_disagreement = 1 - _safe_div((q.support * q.predicted).sum(axis=-1), q.n**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 - observed_disagreement / expected_disagreement


def _from_parts(name: str, q: _Parts, class_index: int | None) -> np.ndarray:
    if name == "accuracy":
        return _accuracy(q)
    if name == "balanced_accuracy":
        return _balanced_accuracy(q)
    if name == "mcc":
        return _mcc(q)
    if name == "cohen_kappa":
        return _kappa(q)
    kind, _, average = name.partition("_")
    if average:
        return _averaged(kind, average, q)
    assert class_index is not None, name
    return _per_class(kind, q)[..., class_index]


def label_metric(name: str, c: np.ndarray, class_index: int | None = None) -> np.ndarray:
    """A label metric from counts of shape (..., K, K); per-class metrics take ``class_index``.

    ``name`` is a base name: accuracy, balanced_accuracy, mcc, cohen_kappa,
    ``{precision,recall,f1}_{micro,macro,weighted}``, or precision/recall/f1 with
    ``class_index`` (the binary metrics use the positive class's index).
    """
    return _from_parts(name, _parts(c), class_index)


def label_metrics(specs: list[tuple[str, int | None]], c: np.ndarray) -> np.ndarray:
    """Several label metrics from the same counts, sharing their sums; shape (len(specs), ...)."""
    q = _parts(c)
    return np.stack([_from_parts(name, q, index) for name, index in specs])
