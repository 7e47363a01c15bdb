"""Mergeable accumulators: score a prediction log chunk by chunk, or partition by partition.

An :class:`Accumulator` keeps each metric's sufficient statistic: the KxK
confusion counts for label metrics; the distinct scores with their negative
and positive counts for ROC AUC and average precision (per class for
one-vs-rest); the distinct per-row keys with their counts for means of
per-row losses, R², the median and the maximum. ``update`` adds a chunk,
``merge`` adds another accumulator (another file, another Dask partition), and
``result`` gives exactly the values :func:`flywheel.metrics.score` gives on
all the rows at once: the statistics are the same, in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from flywheel.metrics._confusion import confusion_counts, label_metric
from flywheel.metrics._inputs import prepare
from flywheel.metrics._ranking import auc_from_cells, average_precision_from_cells
from flywheel.metrics._registry import MetricRef, parse_metric
from flywheel.metrics._statistics import Prepared, rank_key_counts, row_keys

__all__ = [
    "Accumulator",
]

Histogram = tuple[np.ndarray, np.ndarray]  # (distinct keys, counts)


def _merge_histograms(a: Histogram | None, b: Histogram) -> Histogram:
    if a is None:
        return b
    keys = np.concatenate([a[0], b[0]])
    counts = np.concatenate([a[1], b[1]])
    if keys.ndim == 1:
        distinct, inverse = np.unique(keys, return_inverse=True)
    else:
        distinct, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    if counts.ndim == 1:
        return distinct, np.bincount(inverse, weights=counts, minlength=len(distinct))
    merged = np.zeros((len(distinct), counts.shape[1]))
    np.add.at(merged, inverse, counts)
    return distinct, merged


class Accumulator:
    """Exact metrics over data seen in chunks.

    Parameters
    ----------
    metrics
        Metric names from the registry.
    classes
        Every class label (required for classification: a chunk may lack some).

    Examples
    --------
    >>> acc = Accumulator(["accuracy", "f1_macro"], classes=[0, 1])
    >>> acc.update([0, 1, 1], [0, 1, 0])
    >>> other = Accumulator(["accuracy", "f1_macro"], classes=[0, 1])
    >>> other.update([1], [1])
    >>> acc.merge(other).result()["accuracy"]
    0.75
    """

    def __init__(self, metrics: Sequence[str], classes: Sequence[Any] | None = None) -> None:
        self.refs: list[MetricRef] = [parse_metric(m) for m in metrics]
        self.classes = None if classes is None else np.unique(np.asarray(classes))
        self.classification = any("regression" not in r.metric.tasks for r in self.refs)
        if self.classification and self.classes is None:
            raise ValueError("classes is required for classification metrics: a chunk may lack some classes")
        self.n = 0
        self.confusion: np.ndarray | None = None
        self.ranking: dict[tuple[str, int], Histogram] = {}
        self.keyed: dict[str, Histogram] = {}

    def _prepare(self, y_true: Any, y_pred: Any, y_score: Any) -> Prepared:
        p, _ = prepare(y_true, y_pred, y_score, [r.name for r in self.refs], self.classes, partial=True)
        return p

    def update(self, y_true: Any, y_pred: Any = None, y_score: Any = None) -> None:
        """Add a chunk of rows."""
        p = self._prepare(y_true, y_pred, y_score)
        self.n += p.n
        if any(r.metric.family == "confusion" for r in self.refs):
            assert p.true is not None and p.pred is not None
            counts = confusion_counts(p.true, p.pred, p.k)
            assert counts is not None
            self.confusion = counts if self.confusion is None else self.confusion + counts
        for ref in self.refs:
            family = ref.metric.family
            if family == "ranking":
                assert p.true is not None and p.proba is not None
                columns = [1] if p.k == 2 else list(range(p.k))
                for j in columns:
                    key = (ref.metric.name, j)
                    hist = rank_key_counts(p.proba[:, j], p.true == j)
                    self.ranking[key] = _merge_histograms(self.ranking.get(key), hist)
            elif family != "confusion":
                keys, _ = row_keys(ref, p)
                distinct, codes = np.unique(keys, axis=0 if keys.ndim > 1 else None, return_inverse=True)
                counts = np.bincount(codes.reshape(-1), minlength=len(distinct)).astype(float)
                self.keyed[ref.name] = _merge_histograms(self.keyed.get(ref.name), (distinct, counts))

    def merge(self, other: Accumulator) -> Accumulator:
        """Add another accumulator's statistics into this one; returns self."""
        if [r.name for r in other.refs] != [r.name for r in self.refs]:
            raise ValueError("cannot merge accumulators of different metrics")
        self.n += other.n
        if other.confusion is not None:
            self.confusion = other.confusion if self.confusion is None else self.confusion + other.confusion
        for key, hist in other.ranking.items():
            self.ranking[key] = _merge_histograms(self.ranking.get(key), hist)
        for name, hist in other.keyed.items():
            self.keyed[name] = _merge_histograms(self.keyed.get(name), hist)
        return self

    def result(self) -> dict[str, float]:
        """Each metric's exact value on every row seen."""
        if self.n == 0:
            raise ValueError("the accumulator has seen no rows")
        out: dict[str, float] = {}
        for ref in self.refs:
            family = ref.metric.family
            if family == "confusion":
                assert self.confusion is not None and self.classes is not None
                index = None
                if ref.class_label is not None:
                    index = [str(c) for c in self.classes.tolist()].index(ref.class_label)
                elif ref.metric.name in ("precision", "recall", "f1"):
                    index = len(self.classes) - 1
                out[ref.name] = float(label_metric(ref.metric.name, self.confusion.astype(float), index))
            elif family == "ranking":
                fn = auc_from_cells if ref.metric.name == "roc_auc" else average_precision_from_cells
                values = [
                    float(fn(counts.astype(float)[None])[0])
                    for (name, _), (_, counts) in self.ranking.items()
                    if name == ref.metric.name
                ]
                out[ref.name] = float(np.mean(values))
            else:
                _, make_fn = row_keys(ref, _probe(ref, self.classes))
                distinct, counts = self.keyed[ref.name]
                out[ref.name] = float(make_fn(distinct)(counts[None])[0])
        return out


def _probe(ref: MetricRef, classes: np.ndarray | None) -> Prepared:
    """A one-row input, only to look up which function of the keys a metric uses."""
    if classes is None:
        return Prepared("regression", 1, None, np.zeros(1), np.zeros(1))
    k = len(classes)
    return Prepared(
        "classification",
        1,
        classes,
        np.zeros(1, dtype=np.int64),
        np.zeros(1, dtype=np.int64),
        np.full((1, k), 1 / k),
    )
