"""The metric engine's input checks: one-line errors, labels as class codes, metric names resolved.

``prepare`` runs once per call of ``score`` or ``compare`` (and per chunk of an
accumulator), so every check here names the argument, what is allowed and what
was given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from flywheel.metrics._registry import METRICS, MetricRef, parse_metric
from flywheel.metrics._statistics import Prepared

__all__ = [
    "prepare",
]


def _show(value: Any) -> str:
    """A label as the user wrote it: ``2`` or ``'cat'``, not ``np.int64(2)``."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _as_1d(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {arr.shape}")
    return arr


def _check_length(name: str, arr: np.ndarray, n: int) -> None:
    if len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} rows but y_true has {n}; they must match")


def _check_finite(name: str, arr: np.ndarray) -> np.ndarray:
    try:
        out = np.asarray(arr, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers; got values such as {arr.ravel()[:1].tolist()}") from None
    bad = int(np.count_nonzero(~np.isfinite(out)))
    if bad:
        raise ValueError(f"{name} has {bad} NaN or infinite values; it must be finite")
    return out


def _unknown_label(label: Any, origin: str) -> str:
    if origin == "classes":
        return f"a label that is not among classes: {_show(label)}; add it to classes"
    return f"labels never seen in y_true: {_show(label)}; pass classes= to allow them"


def _class_codes(
    name: str, labels: np.ndarray, classes: np.ndarray, origin: str, *, defer: bool = False
) -> np.ndarray:
    """Codes 0..K-1 of ``labels`` in ``classes``; the fast path avoids sorting integer labels.

    With ``defer``, integer labels that already are codes are returned unchecked:
    the confusion pass checks their range while it reads them anyway.
    """
    k = len(classes)
    if labels.dtype.kind in "iub" and classes.dtype.kind in "iub":
        if np.array_equal(classes, np.arange(k)) and labels.dtype.kind in "iu":
            if defer and len(labels):
                return labels.astype(np.int64, copy=False)
            # One reduction checks 0 <= label < k: negatives wrap to huge unsigned values.
            unsigned = labels.view(np.dtype(f"u{labels.dtype.itemsize}"))
            if len(labels) and int(unsigned.max()) < k:
                return labels.astype(np.int64, copy=False)
        else:
            lo, hi = int(labels.min()), int(labels.max())
            c_lo = int(classes.min())
            span = max(hi, int(classes.max())) - min(lo, c_lo) + 1
            if span <= 16 * k + 1024:
                base = min(lo, c_lo)
                lut = np.full(span, -1, dtype=np.int64)
                lut[classes.astype(np.int64) - base] = np.arange(k)
                codes = lut[labels.astype(np.int64) - base]
                if (codes >= 0).all():
                    return codes
                unknown = labels[codes < 0][0]
                raise ValueError(f"{name} has {_unknown_label(unknown, origin)}")
    codes = np.asarray(pd.Index(classes).get_indexer(labels), dtype=np.int64)
    if (codes < 0).any():
        unknown = labels[codes < 0][0]
        raise ValueError(f"{name} has {_unknown_label(unknown, origin)}")
    return codes


def _unique_sorted(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "iu" and len(values):
        lo, hi = int(values.min()), int(values.max())
        if hi - lo <= 4 * len(values) + 1024:  # one bincount pass instead of a sort
            present = np.flatnonzero(np.bincount(values - lo if lo else values, minlength=hi - lo + 1))
            return (present + lo).astype(values.dtype)
    try:
        return np.unique(values)
    except TypeError:  # mixed types: order by their text
        return np.asarray(sorted(pd.unique(values).tolist(), key=str), dtype=object)


def _infer_task(refs: Sequence[MetricRef], y_true: np.ndarray) -> str:
    kinds = {"regression" if "regression" in r.metric.tasks else "classification" for r in refs}
    if len(kinds) > 1:
        raise ValueError("metrics mixes classification and regression metrics; score them separately")
    return kinds.pop()


def _default_metrics(y_true: np.ndarray, y_score: Any, classes: Any) -> list[str]:
    regression = classes is None and y_true.dtype.kind == "f" and not np.all(y_true == np.round(y_true))
    if regression:
        return ["mae", "rmse", "r2", "median_ae"]
    names = ["accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "mcc"]
    return names + (["roc_auc", "log_loss"] if y_score is not None else [])


def _scores_matrix(y_score: Any, n: int, k: int, classes: np.ndarray) -> np.ndarray:
    raw = np.asarray(y_score)
    if raw.ndim == 1:
        if k != 2:
            raise ValueError(
                f"y_score is one-dimensional but there are {k} classes; pass one column per "
                f"class ({', '.join(map(str, classes[:5].tolist()))})"
            )
        _check_length("y_score", raw, n)
        s = _check_finite("y_score", raw)
        return np.column_stack([1 - s, s]) if s.min() >= 0 and s.max() <= 1 else np.column_stack([-s, s])
    if raw.ndim != 2 or raw.shape[1] != k:
        raise ValueError(
            f"y_score has shape {raw.shape}; expected ({n}, {k}): one column per class "
            f"({', '.join(map(str, classes[:5].tolist()))})"
        )
    _check_length("y_score", raw, n)
    return _check_finite("y_score", raw)


def prepare(
    y_true: Any,
    y_pred: Any = None,
    y_score: Any = None,
    metrics: Sequence[str] | None = None,
    classes: Any = None,
    *,
    partial: bool = False,
) -> tuple[Prepared, list[MetricRef]]:
    """Validate the inputs once, encode labels as class codes, and resolve the metric names.

    ``partial`` is for a chunk of a larger set (an accumulator's update): checks
    that need the whole set, such as every class having rows, are skipped.
    """
    yt = _as_1d("y_true", y_true)
    if len(yt) == 0:
        raise ValueError("y_true is empty; need at least one row")
    names = list(metrics) if metrics is not None else _default_metrics(yt, y_score, classes)
    refs = _resolve_metrics(names)
    task = _infer_task(refs, yt)
    if task == "regression":
        return _prepare_regression(yt, y_pred), refs
    prepared = _prepare_classification(yt, y_pred, y_score, classes, refs)
    for ref in refs:
        _check_ref(ref, prepared, partial)
    return prepared, refs


def _resolve_metrics(names: Sequence[str]) -> list[MetricRef]:
    refs = []
    for name in names:
        try:
            refs.append(parse_metric(name))
        except ValueError as exc:
            raise ValueError(f"metrics: {exc}; allowed: {', '.join(sorted(METRICS))}") from None
    return refs


def _prepare_regression(yt: np.ndarray, y_pred: Any) -> Prepared:
    n = len(yt)
    if y_pred is None:
        raise ValueError("y_pred is required for regression metrics; got None")
    values = _as_1d("y_pred", y_pred)
    _check_length("y_pred", values, n)
    return Prepared("regression", n, None, _check_finite("y_true", yt), _check_finite("y_pred", values))


def _known_classes(yt: np.ndarray, classes: Any) -> tuple[np.ndarray, str]:
    """The sorted classes and where they came from (``y_true`` or ``classes``); at least two."""
    if classes is None:
        cls = _unique_sorted(yt)
        origin = "y_true"
    else:
        cls = _unique_sorted(_as_1d("classes", classes))
        origin = "classes"
        if len(cls) != len(_as_1d("classes", classes)):
            raise ValueError("classes has repeated labels; each class must appear once")
    if len(cls) < 2:
        raise ValueError(
            f"y_true has a single class ({_show(cls[0])}); classification metrics need two; pass "
            "classes= to name the others"
        )
    return cls, origin


def _prepare_classification(
    yt: np.ndarray, y_pred: Any, y_score: Any, classes: Any, refs: Sequence[MetricRef]
) -> Prepared:
    n = len(yt)
    cls, origin = _known_classes(yt, classes)
    # Label metrics alone: the range check of integer codes happens in the confusion pass.
    defer = y_score is None and all(r.metric.family == "confusion" for r in refs)
    true = _class_codes("y_true", yt, cls, origin, defer=defer)
    proba = _scores_matrix(y_score, n, len(cls), cls) if y_score is not None else None
    yp: np.ndarray | None = None
    if y_pred is not None:
        yp = _as_1d("y_pred", y_pred)
        _check_length("y_pred", yp, n)
        pred = _class_codes("y_pred", yp, cls, origin, defer=defer)
    elif proba is not None:
        pred = proba.argmax(axis=1)
    else:
        raise ValueError("give y_pred (labels) or y_score (class scores); got neither")
    prepared = Prepared("classification", n, cls, true, pred, proba)
    if defer:

        def check() -> None:
            _class_codes("y_true", yt, cls, origin)
            if yp is not None:
                _class_codes("y_pred", yp, cls, origin)

        prepared.cache["unchecked"] = check
    return prepared


def _check_ref(ref: MetricRef, p: Prepared, partial: bool = False) -> None:
    metric = ref.metric
    assert p.classes is not None and p.true is not None
    if ref.class_label is not None and ref.class_label not in [str(c) for c in p.classes.tolist()]:
        raise ValueError(
            f"{ref.name}: class {ref.class_label!r} is not among the classes "
            f"({', '.join(map(str, p.classes[:10].tolist()))})"
        )
    if metric.name in ("precision", "recall", "f1") and ref.class_label is None and p.k != 2:
        raise ValueError(
            f"{ref.name} is for binary targets; with {p.k} classes use {ref.name}_macro or "
            f"{ref.name}[class=...]"
        )
    if metric.needs == "scores" and p.proba is None:
        raise ValueError(f"{ref.name} needs y_score (class scores); got only y_pred")
    if metric.family == "proba" and p.proba is not None and (p.proba.min() < 0 or p.proba.max() > 1):
        raise ValueError(
            f"{ref.name} needs probabilities in [0, 1]; y_score has values in "
            f"[{p.proba.min():.3g}, {p.proba.max():.3g}]"
        )
    if metric.family == "ranking" and not partial:
        present = np.bincount(p.true, minlength=p.k)
        if p.k == 2 and present.min() == 0:
            only = p.classes[int(np.argmax(present))]
            raise ValueError(f"{ref.name} needs both classes in y_true; got only {_show(only)}")
        if p.k > 2 and (present == 0).any():
            missing = p.classes[present == 0][0]
            raise ValueError(
                f"{ref.name} (one-vs-rest) needs every class in y_true; class {_show(missing)} has no rows"
            )
