"""Where the model is weakest: the classes it recalls worst and the slices of rows it errs on most.

Weak classes are the ones whose recall is significantly below the rest's: Fisher's exact test of
the class's misses against the other classes' (one-sided), with false discoveries controlled
across the classes (Benjamini–Hochberg), as for segments. Weak segments are slices of the
validation rows whose error is significantly above the rest's (:mod:`flywheel.diagnosis._slices`
cuts and tests them); the discoveries are reported best first, with overlapping ones folded,
each with what fixing it would win on the optimized metric.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact
from scipy.stats import t as student_t

from flywheel.diagnosis._curves import _better
from flywheel.diagnosis._slices import (
    _bins,
    _Feature,
    _slice_families,
    _Slices,
    _test_slices,
    _Tested,
    benjamini_hochberg,
)
from flywheel.metrics import MetricRef, get_metric, score, wilson_interval

__all__ = ["WeakClass", "WeakSegment", "weak_classes", "weak_segments"]


# --- weak classes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeakClass:
    """One class's recall and precision with Wilson intervals, and what fixing it would win."""

    label: Any
    support: int
    recall: float
    recall_low: float
    recall_high: float
    precision: float | None
    precision_low: float | None
    precision_high: float | None
    f1: float
    missed: int
    weak: bool  # recall significantly below the other classes' (Fisher, BH-controlled)
    gain: float | None = None  # optimized metric if its recall rose as far as the evidence says it lags
    p_value: float | None = None  # one-sided Fisher: this class misses more than the rest
    q_value: float | None = None  # Benjamini–Hochberg across the classes

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            **self.__dict__,
            "label": self.label if isinstance(self.label, (int, float, str)) else str(self.label),
        }


def _fixed_gain(
    ref: MetricRef,
    y: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    classes: np.ndarray | None,
    fix: np.ndarray,
) -> float | None:
    """How much the metric improves when the rows in ``fix`` are predicted right."""
    if not len(fix):
        return 0.0
    needs_scores = get_metric(ref.name).needs == "scores"
    if needs_scores and proba is None:
        return None
    pred2 = pred.copy()
    pred2[fix] = y[fix]
    proba2 = None
    if proba is not None and classes is not None:
        column = {str(c): i for i, c in enumerate(classes)}
        proba2 = proba.copy()
        proba2[fix] = 0.0
        proba2[fix, [column[str(v)] for v in y[fix]]] = 1.0
    try:
        before = score(y, pred, proba if needs_scores else None, [ref.name], classes=classes, n_resamples=0)
        after = score(y, pred2, proba2 if needs_scores else None, [ref.name], classes=classes, n_resamples=0)
    except ValueError:
        return None
    return _better(ref, after[ref.name].value, before[ref.name].value)


def weak_classes(
    ref: MetricRef,
    y: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    classes: Sequence[Any],
    fdr: float = 0.1,
) -> list[WeakClass]:
    """Per-class recall and precision with Wilson intervals, weakest first (by F1, then recall).

    A class is weak when Fisher's exact test says it misses more than the other classes together
    (one-sided) with a Benjamini–Hochberg q-value at most ``fdr``. Its gain is what the optimized
    metric would win if its recall rose to the rest's by the part the evidence supports: up to
    the upper end of its recall interval, not its point.
    """
    cls = np.asarray(classes)
    index = {str(c): i for i, c in enumerate(cls)}
    yi = np.array([index[str(v)] for v in y])
    pi = np.array([index.get(str(v), -1) for v in pred])
    k = len(cls)
    support = np.bincount(yi, minlength=k)
    predicted = np.bincount(pi[pi >= 0], minlength=k)
    hits = np.bincount(yi[yi == pi], minlength=k)
    recalls = np.divide(hits, support, out=np.zeros(k), where=support > 0)
    present = [j for j in range(k) if support[j] > 0]
    p_values = {j: _misses_more(j, hits, support) for j in present}
    q_values = dict(zip(present, benjamini_hochberg(np.array([p_values[j] for j in present])), strict=True))
    out = []
    for j in present:
        r_low, r_high = wilson_interval(hits[j], int(support[j]))
        rest = support.sum() - support[j]
        rest_recall = float((hits.sum() - hits[j]) / rest) if rest else float(recalls[j])
        prec = hits[j] / predicted[j] if predicted[j] else None
        p_low, p_high = wilson_interval(hits[j], int(predicted[j])) if predicted[j] else (None, None)
        f1 = 2 * hits[j] / (support[j] + predicted[j]) if support[j] + predicted[j] else 0.0
        weak = bool(q_values[j] <= fdr)
        missed_rows = np.flatnonzero((yi == j) & (pi != j))
        lift = max(0, math.floor((rest_recall - r_high) * support[j])) if weak else 0
        gain = _fixed_gain(ref, y, pred, proba, cls, missed_rows[:lift]) if lift else 0.0
        out.append(
            WeakClass(
                cls[j].item() if hasattr(cls[j], "item") else cls[j],
                int(support[j]),
                float(recalls[j]),
                float(r_low),
                float(r_high),
                None if prec is None else float(prec),
                None if p_low is None else float(p_low),
                None if p_high is None else float(p_high),
                float(f1),
                int(support[j] - hits[j]),
                weak,
                None if gain is None else float(gain),
                p_values[j],
                float(q_values[j]),
            )
        )
    return sorted(out, key=lambda c: (c.f1, c.recall, str(c.label)))


def _misses_more(j: int, hits: np.ndarray, support: np.ndarray) -> float:
    """One-sided Fisher's exact p: class ``j`` misses more of its rows than the other classes do."""
    rest_hits, rest_rows = int(hits.sum() - hits[j]), int(support.sum() - support[j])
    if rest_rows == 0:
        return 1.0
    table = [[int(support[j] - hits[j]), int(hits[j])], [rest_rows - rest_hits, rest_hits]]
    return float(fisher_exact(table, alternative="greater").pvalue)


# --- weak segments ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeakSegment:
    """A slice of the validation rows where the model errs significantly more than elsewhere."""

    description: str
    rows: int
    error: float  # error rate (classification) or mean loss (regression) in the slice
    error_low: float | None
    error_high: float | None
    rest: float  # the same outside the slice
    p_value: float
    q_value: float  # Benjamini–Hochberg adjusted
    excess: float  # errors above what the rest's rate predicts (or excess loss)
    gain: float | None  # optimized metric if the slice erred at the rest's rate
    gain_if_perfect: float | None  # ... if every row in it were right
    conditions: list[dict[str, Any]] = field(default_factory=list)  # what a row must satisfy to be in it

    def contains(self, frame: pd.DataFrame) -> np.ndarray:
        """Which rows of ``frame`` fall in the segment (for rows the diagnosis never saw)."""
        inside = np.ones(len(frame), dtype=bool)
        for c in self.conditions:
            if c["column"] not in frame.columns:
                return np.zeros(len(frame), dtype=bool)
            col = frame[c["column"]]
            if c.get("missing"):
                inside &= col.isna().to_numpy()
            elif "equals" in c:
                value = c["equals"]
                if isinstance(value, float):
                    inside &= (pd.to_numeric(col, errors="coerce") == value).to_numpy()
                else:
                    inside &= (col.astype(str) == str(value)).to_numpy()
            else:
                v = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
                if c.get("low") is not None:
                    inside &= v >= c["low"]
                if c.get("high") is not None:
                    inside &= v < c["high"]
        return inside

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class _Search:
    """One weak-segment search: the rows' labels, predictions and losses, and the slices cut."""

    ref: MetricRef
    y: np.ndarray
    pred: np.ndarray
    proba: np.ndarray | None
    classes: np.ndarray | None  # None for regression
    loss: np.ndarray  # per row: 1 for a wrong class, or the absolute error
    feats: list[_Feature]
    slices: _Slices


def weak_segments(
    ref: MetricRef,
    frame: pd.DataFrame,
    kinds: dict[str, str],
    y: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None = None,
    classes: Sequence[Any] | None = None,
    *,
    min_support: int = 30,
    fdr: float = 0.1,
    n_bins: int = 4,
    max_pairs: int = 5000,
    limit: int = 10,
) -> tuple[list[WeakSegment], dict[str, Any]]:
    """Slices (one feature, and pairs) whose error is significantly above the rest's, FDR-controlled.

    ``kinds`` maps feature columns to ``numeric`` or ``categorical`` (text is not sliced).
    Returns the kept segments (best first, overlapping ones folded) and what was searched.
    """
    n = len(y)
    classify = classes is not None
    if classify:
        loss = (np.asarray(pred).astype(str) != np.asarray(y).astype(str)).astype(float)
    else:
        loss = np.abs(np.asarray(pred, dtype=float) - np.asarray(y, dtype=float))
    feats = [
        f
        for name, kind in kinds.items()
        if kind in ("numeric", "categorical")
        for f in [_bins(name, frame[name], kind, n_bins)]
        if f is not None
    ]
    searched: dict[str, Any] = {
        "rows": n,
        "features": len(feats),
        "slices": 0,
        "tested": 0,
        "fdr": fdr,
        "min_support": min_support,
    }
    if n < 2 * min_support or not feats or loss.sum() == 0:
        searched["note"] = (
            f"too few rows to slice ({n} rows, min support {min_support})"
            if n < 2 * min_support
            else "no errors to explain"
            if loss.sum() == 0
            else "no numeric or categorical features to slice"
        )
        return [], searched
    slices, note = _slice_families(feats, max_pairs)
    if note is not None:
        searched["note"] = note
    tested = _test_slices(slices, loss, min_support, classify)
    searched["slices"] = int(sum(len(lbl) for lbl in slices.labels))
    searched["tested"] = 0 if tested is None else len(tested.family)
    if tested is None:
        return [], searched
    hits = np.flatnonzero((tested.q <= fdr) & (tested.mean > tested.rest_mean))
    searched["discoveries"] = len(hits)
    cls = None if classes is None else np.asarray(classes)
    search = _Search(ref, y, pred, proba, cls, loss, feats, slices)
    return _fold(search, tested, hits, limit), searched


def _fold(search: _Search, tested: _Tested, hits: np.ndarray, limit: int) -> list[WeakSegment]:
    """The discoveries, largest excess first, each kept only when it says something new."""
    order = sorted(hits, key=lambda h: (-tested.excess[h], tested.p[h]))
    explained = _explained_by_pairs(search, tested, hits)
    kept: list[WeakSegment] = []
    kept_rows: list[np.ndarray] = []
    for h in order:
        rows = np.flatnonzero(search.slices.codes[int(tested.family[h])] == int(tested.code[h]))
        if _redundant(search, tested, h, rows, kept_rows, explained):
            continue
        kept.append(_segment(search, tested, h, rows))
        kept_rows.append(rows)
        if len(kept) >= limit:
            break
    return kept


def _explained_by_pairs(search: _Search, tested: _Tested, hits: np.ndarray) -> dict[tuple[int, int], float]:
    """The largest excess of a significant pair each single slice (feature, code) takes part in."""
    # A single slice whose excess is mostly one of its significant pairs' is that pair, diluted:
    # report the pair (the sharper description) instead.
    explained: dict[tuple[int, int], float] = {}
    for h in hits:
        fam = int(tested.family[h])
        if len(search.slices.parents[fam]) == 2:
            i, j = search.slices.parents[fam]
            kb = len(search.feats[j].labels)
            for key in ((i, int(tested.code[h]) // kb), (j, int(tested.code[h]) % kb)):
                explained[key] = max(explained.get(key, 0.0), float(tested.excess[h]))
    return explained


def _redundant(
    search: _Search,
    tested: _Tested,
    h: int,
    rows: np.ndarray,
    kept_rows: list[np.ndarray],
    explained: dict[tuple[int, int], float],
) -> bool:
    """Whether discovery ``h`` adds nothing to the segments kept so far."""
    fam, code = int(tested.family[h]), int(tested.code[h])
    if any(len(np.intersect1d(rows, other, assume_unique=True)) >= 0.8 * len(rows) for other in kept_rows):
        return True  # mostly inside a segment already reported
    parents = search.slices.parents[fam]
    if len(parents) == 1 and explained.get((fam, code), 0.0) >= 0.8 * tested.excess[h]:
        return True
    if len(parents) == 2:  # a pair must be worse than both of its single slices
        i, j = parents
        kb = len(search.feats[j].labels)
        singles = [(i, code // kb), (j, code % kb)]
        return any(
            tested.mean[h] <= _parent_rate(search.loss, search.feats[pf].codes, pc) for pf, pc in singles
        )
    return False


def _segment(search: _Search, tested: _Tested, h: int, rows: np.ndarray) -> WeakSegment:
    """Discovery ``h`` as a reported segment, with its interval and what fixing it would win."""
    fam, code = int(tested.family[h]), int(tested.code[h])
    cnt, s1, s2, mean, rest_mean = (
        tested.rows[h],
        tested.loss[h],
        tested.loss_sq[h],
        tested.mean[h],
        tested.rest_mean[h],
    )
    excess = float(s1 - cnt * rest_mean)
    ref, y, pred = search.ref, search.y, search.pred
    if search.classes is not None:
        low, high = (float(v) for v in wilson_interval(s1, int(cnt)))
        wrong = rows[search.loss[rows] > 0]
        gain = _fixed_gain(ref, y, pred, search.proba, search.classes, wrong[: round(excess)])
        perfect = _fixed_gain(ref, y, pred, search.proba, search.classes, wrong)
    else:
        half = float(student_t.ppf(0.975, max(cnt - 1, 1)) * math.sqrt(max(s2 / cnt - mean**2, 0) / cnt))
        low, high = float(mean - half), float(mean + half)
        gain, perfect = _regression_gain(ref, y, pred, rows, rest_mean)
    return WeakSegment(
        search.slices.labels[fam][code],
        int(cnt),
        float(mean),
        low,
        high,
        float(rest_mean),
        float(tested.p[h]),
        float(tested.q[h]),
        excess,
        gain,
        perfect,
        search.slices.conditions[fam][code],
    )


def _parent_rate(loss: np.ndarray, codes: np.ndarray, code: int) -> float:
    inside = codes == code
    return float(loss[inside].mean()) if inside.any() else 0.0


def _regression_gain(
    ref: MetricRef, y: np.ndarray, pred: np.ndarray, rows: np.ndarray, rest_loss: float
) -> tuple[float | None, float | None]:
    """Metric gain if the slice's absolute errors shrank to the rest's mean, and if they vanished."""
    yf, pf = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    resid = pf[rows] - yf[rows]
    size = np.abs(resid)
    shrunk = pf.copy()
    scale = (
        np.divide(rest_loss, size.mean(), out=np.ones(1), where=size.mean() > 0)[0] if size.mean() else 1.0
    )
    shrunk[rows] = yf[rows] + resid * min(1.0, float(scale))
    perfect = pf.copy()
    perfect[rows] = yf[rows]
    try:
        base = score(yf, pf, None, [ref.name], n_resamples=0)[ref.name].value
        a = score(yf, shrunk, None, [ref.name], n_resamples=0)[ref.name].value
        b = score(yf, perfect, None, [ref.name], n_resamples=0)[ref.name].value
    except ValueError:
        return None, None
    return _better(ref, a, base), _better(ref, b, base)
