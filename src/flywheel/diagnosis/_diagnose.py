"""What to do next: bias and variance against human level, the curve against the baselines,
the weakest classes and segments, and one ranked list of actions.

The terms are Andrew Ng's (*Machine Learning Yearning*). Errors are distances to the
metric's perfect score (1 − accuracy, or the RMSE itself), so every component is
"how much better it could be":

- avoidable bias = training error − human-level error (human level stands in for the
  optimal error);
- variance = validation error − training error (or − train-dev error when the project
  holds out a train-dev split: rows from the training distribution the model never saw);
- data mismatch = validation error − train-dev error.

Each estimate carries an interval. The errors come from different rows (independent
samples), so the interval of a difference is combined from the two intervals with the
MOVER method (Zou & Donner, 2008), which keeps the asymmetry of each.

Weak segments are slices of the validation rows (one feature binned or by category,
and pairs of them) whose error rate is higher than the rest's, tested one-sided (Fisher's
exact test for error rates, Welch's t for regression losses) with the
Benjamini–Hochberg procedure across every slice tried, so the many slices searched do
not turn noise into findings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import hypergeom
from scipy.stats import t as student_t

from flywheel.diagnosis._curves import Curve, Forecast
from flywheel.metrics import MetricRef, get_metric, score, wilson_interval

__all__ = [
    "Action",
    "BiasVariance",
    "Component",
    "Diagnosis",
    "Finding",
    "Level",
    "WeakClass",
    "WeakSegment",
    "benjamini_hochberg",
    "bias_variance",
    "next_actions",
    "read_curve",
    "weak_classes",
    "weak_segments",
]


# --- bias and variance --------------------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    """A metric value with its interval (score units) and where it came from."""

    value: float
    low: float | None = None
    high: float | None = None
    source: str = "measured"  # "measured" or "declared"

    def error(self, ref: MetricRef) -> tuple[float, float | None, float | None]:
        """The distance to the perfect score, with the interval flipped where needed."""
        best = ref.best
        if ref.greater_is_better:
            return (
                best - self.value,
                None if self.high is None else best - self.high,
                (None if self.low is None else best - self.low),
            )
        return (
            self.value - best,
            None if self.low is None else self.low - best,
            (None if self.high is None else self.high - best),
        )


@dataclass(frozen=True)
class Component:
    """One part of the error (avoidable bias, variance, data mismatch), with its interval."""

    name: str
    value: float
    low: float | None
    high: float | None

    @property
    def significant(self) -> bool:
        """Whether the interval lies above zero."""
        return self.low is not None and self.low > 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {**self.__dict__, "significant": self.significant}


def _mover(
    a: tuple[float, float | None, float | None], b: tuple[float, float | None, float | None]
) -> Component:
    """a − b for independent estimates, interval by MOVER (an exact side counts as zero width)."""
    (pa, la, ua), (pb, lb, ub) = a, b
    d = pa - pb
    if la is None or ua is None:
        la = ua = pa
    if lb is None or ub is None:
        lb = ub = pb
    low = d - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
    high = d + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
    return Component("", d, low, high)


@dataclass(frozen=True)
class Action:
    """One thing to do next, why, and how much of the optimized metric it could win."""

    title: str
    why: str
    kind: str  # bias, variance, mismatch, data, segment, class, rules, target, model
    gain: float | None = None  # in the optimized metric's units (positive = better)
    cost: float | None = None
    priority: int = 1  # 0 goes first whatever the gain (no ML needed, target met)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


_BIAS_ACTIONS = (
    "Train a bigger model (more trees, leaves or layers; a more flexible family)",
    "Add better features (error analysis of the training mistakes shows which)",
    "Train longer (more iterations; a later early-stopping point)",
    "Reduce regularisation",
)
_VARIANCE_ACTIONS = (
    "Get more training data",
    "Add regularisation (a smaller learning rate, fewer leaves, stronger L2)",
    "Stop training early on the validation score",
    "Select fewer features",
)
_MISMATCH_ACTIONS = (
    "Collect training data that looks like production (like the valid/test rows)",
    "Find how training and validation rows differ (error analysis of train-dev vs valid)",
    "Weight or synthesise training rows to resemble the validation distribution",
)


@dataclass(frozen=True)
class BiasVariance:
    """Errors and their components for the best model, with the dominant one and its actions."""

    metric: str
    model: str
    errors: dict[str, tuple[float, float | None, float | None]]  # human/train/train_dev/valid
    components: list[Component]
    dominant: Literal[
        "avoidable bias", "variance", "both", "data mismatch", "near human level", "none", "unknown"
    ]
    summary: str
    actions: list[str] = field(default_factory=list)
    human_source: str | None = None
    bias_bounds: tuple[float, float] | None = None  # without a human baseline
    notes: list[str] = field(default_factory=list)

    def component(self, name: str) -> Component | None:
        """The component called ``name``, if measured."""
        return next((c for c in self.components if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "metric": self.metric,
            "model": self.model,
            "errors": {k: list(v) for k, v in self.errors.items()},
            "components": [c.to_dict() for c in self.components],
            "dominant": self.dominant,
            "summary": self.summary,
            "actions": self.actions,
            "human_source": self.human_source,
            "bias_bounds": list(self.bias_bounds) if self.bias_bounds else None,
            "notes": self.notes,
        }


def bias_variance(
    ref: MetricRef,
    *,
    train: Level,
    valid: Level,
    train_dev: Level | None = None,
    human: Level | None = None,
    best_baseline: Level | None = None,
    tolerance: float = 0.0,
    model: str = "model",
) -> BiasVariance:
    """Split the model's error into avoidable bias, variance and data mismatch.

    ``tolerance`` is the smallest component worth acting on (the objective's margin);
    a component counts when its interval lies above zero and its value reaches the tolerance.
    Without ``human``, avoidable bias is bounded: below by training error minus the lowest error
    any system reached (``best_baseline``; the optimal error is no higher), above by the training
    error itself (a perfect score as the optimum).
    """
    e_train, e_valid = train.error(ref), valid.error(ref)
    errors = {"train": e_train}
    notes: list[str] = []
    components: list[Component] = []
    bounds = None
    if human is not None:
        e_human = human.error(ref)
        errors = {"human": e_human, **errors}
        bias = _mover(e_train, e_human)
        components.append(Component("avoidable bias", bias.value, bias.low, bias.high))
        if e_valid[0] < e_human[0]:
            notes.append(
                "the model beats human level on validation: human level no longer bounds the optimal "
                "error, and progress from here is harder to steer"
            )
    else:
        lowest = e_train[0]
        if best_baseline is not None:
            lowest = min(lowest, best_baseline.error(ref)[0])
        bounds = (max(0.0, e_train[0] - lowest), max(0.0, e_train[0]))
        notes.append(
            "no human baseline: avoidable bias cannot be separated from unavoidable error; it lies "
            f"between {bounds[0]:.4g} and {bounds[1]:.4g} (declare baselines.human to separate them)"
        )
    if train_dev is not None:
        e_dev = train_dev.error(ref)
        errors["train_dev"] = e_dev
        var = _mover(e_dev, e_train)
        mis = _mover(e_valid, e_dev)
        components.append(Component("variance", var.value, var.low, var.high))
        components.append(Component("data mismatch", mis.value, mis.low, mis.high))
    else:
        var = _mover(e_valid, e_train)
        components.append(Component("variance", var.value, var.low, var.high))
    errors["valid"] = e_valid
    acting = [c for c in components if c.significant and c.value >= tolerance]
    dominant: Any
    if human is None and not any(c.name == "avoidable bias" for c in components):
        assert bounds is not None
        variance = next(c for c in components if c.name == "variance")
        mismatch = next((c for c in acting if c.name == "data mismatch"), None)
        if mismatch is not None and mismatch.value >= max(variance.value, bounds[1]):
            dominant = "data mismatch"
        elif variance in acting and variance.value >= bounds[1]:
            dominant = "variance"
        elif bounds[0] >= max(tolerance, variance.value if variance in acting else 0.0) and bounds[0] > 0:
            dominant = "avoidable bias"
        elif variance in acting or bounds[1] >= tolerance:
            dominant = "unknown"
        else:
            dominant = "none"
    elif not acting:
        dominant = "near human level" if human is not None else "none"
    else:
        top = max(acting, key=lambda c: c.value)
        names = {c.name for c in acting}
        second = sorted((c.value for c in acting), reverse=True)[1] if len(acting) > 1 else 0.0
        if (
            {"avoidable bias", "variance"} <= names
            and second >= 0.5 * top.value
            and top.name != "data mismatch"
        ):
            dominant = "both"
        else:
            dominant = top.name
    actions = {
        "avoidable bias": list(_BIAS_ACTIONS),
        "variance": list(_VARIANCE_ACTIONS),
        "both": [_BIAS_ACTIONS[0], _VARIANCE_ACTIONS[0], _BIAS_ACTIONS[1], _VARIANCE_ACTIONS[1]],
        "data mismatch": list(_MISMATCH_ACTIONS),
        "near human level": [
            "Error analysis of the remaining mistakes against human labels; progress from here is slow"
        ],
        "none": [],
        "unknown": ["Declare or measure human level (baselines.human) to tell avoidable bias from noise"],
    }[dominant]
    summary = _summary(dominant, components, bounds, ref)
    return BiasVariance(
        ref.name,
        model,
        errors,
        components,
        dominant,
        summary,
        actions,
        human.source if human is not None else None,
        bounds,
        notes,
    )


def _summary(
    dominant: str, components: list[Component], bounds: tuple[float, float] | None, ref: MetricRef
) -> str:
    parts = ", ".join(
        f"{c.name} {c.value:.4g}"
        + (f" [{c.low:.4g}, {c.high:.4g}]" if c.low is not None and c.high is not None else "")
        for c in components
    )
    if bounds is not None:
        parts = f"avoidable bias between {bounds[0]:.4g} and {bounds[1]:.4g}, " + parts
    lead = {
        "avoidable bias": "high avoidable bias: the model underfits the training data",
        "variance": "high variance: the model does not generalise from training to validation",
        "both": "both high bias and high variance",
        "data mismatch": "data mismatch: validation rows differ from the training distribution",
        "near human level": "near human level: no component is significantly above zero",
        "none": "no significant gap between training and validation",
        "unknown": "bias cannot be told from unavoidable error without a human baseline",
    }[dominant]
    return f"{lead} ({ref.name} error: {parts})"


# --- the curve against the baselines ------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One reading of a learning curve or a training history."""

    kind: Literal["underfitting", "overfitting", "more data pays", "levelled off", "stop early", "healthy"]
    text: str
    gain: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


def _better(ref: MetricRef | Curve, a: float, b: float) -> float:
    """How much better ``a`` is than ``b`` (positive = better), whatever the metric's direction."""
    return a - b if ref.greater_is_better else b - a


def read_curve(
    curve: Curve,
    *,
    baseline: float | None = None,
    human: float | None = None,
    tolerance: float = 0.01,
) -> list[Finding]:
    """Read a learning curve (or training history) against the best baseline and human level.

    Far below the baselines -> underfitting, work on the model; near or past them with training
    well above validation -> overfitting, regularise; validation still rising with size -> more
    data pays; a history whose validation score peaked and fell -> stop earlier.
    """
    rows = curve.summary()
    last = rows[-1]
    out: list[Finding] = []
    tol = max(tolerance, 1e-12)
    valid_last = last["valid"]
    if baseline is not None and _better(curve, baseline, valid_last) > tol:
        out.append(
            Finding(
                "underfitting",
                f"validation {curve.metric} {valid_last:.4g} is below the best baseline's {baseline:.4g}: "
                "work on the model (features, capacity) before collecting data",
                _better(curve, baseline, valid_last),
            )
        )
    gap = _better(curve, last["train"], valid_last) if last["train"] is not None else None
    past_baseline = baseline is None or _better(curve, valid_last, baseline) >= -tol
    if gap is not None and gap > 2 * tol and past_baseline:
        out.append(
            Finding(
                "overfitting",
                f"training {curve.metric} {last['train']:.4g} is well better than validation "
                f"{valid_last:.4g} (gap {gap:.4g}): watch overfitting, regularise",
                gap,
            )
        )
    if curve.axis == "step":
        values = np.array([r["valid"] for r in rows])
        signed = values if curve.greater_is_better else -values
        best_i = int(np.argmax(signed))
        drop = float(signed[best_i] - signed[-1])
        if best_i < len(rows) - 1 and drop > tol:
            train_gain = (
                _better(curve, rows[-1]["train"], rows[best_i]["train"])
                if rows[-1]["train"] is not None
                else 0.0
            )
            out.append(
                Finding(
                    "stop early",
                    f"validation {curve.metric} peaked at step {rows[best_i]['size']} "
                    f"({values[best_i]:.4g}) and fell by {drop:.4g} while training went on improving "
                    f"({train_gain:+.4g}): stop early",
                    drop,
                )
            )
    elif len(rows) >= 2:
        a, b = rows[-2], rows[-1]
        doublings = math.log2(b["size"] / a["size"]) if b["size"] > a["size"] else 0.0
        if doublings > 0:
            per_doubling = _better(curve, b["valid"], a["valid"]) / doublings
            noise = math.sqrt((a["valid_sd"] ** 2) / max(a["n"], 1) + (b["valid_sd"] ** 2) / max(b["n"], 1))
            if per_doubling > tol / 2 and per_doubling * doublings > 2 * noise:
                out.append(
                    Finding(
                        "more data pays",
                        f"validation {curve.metric} still improves with data: {per_doubling:+.4g} "
                        f"per doubling of the training rows at {b['size']:,} rows",
                        per_doubling,
                    )
                )
            elif abs(per_doubling) <= tol / 2:
                out.append(
                    Finding(
                        "levelled off",
                        f"validation {curve.metric} has levelled off ({per_doubling:+.4g} per doubling): "
                        "more data of the same kind will not help much",
                        per_doubling,
                    )
                )
    if human is not None and _better(curve, valid_last, human) >= -tol and not out:
        out.append(
            Finding("healthy", f"validation {curve.metric} {valid_last:.4g} is at human level ({human:.4g})")
        )
    if not out:
        out.append(Finding("healthy", "nothing stands out on the curve"))
    return out


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
    weak: bool  # recall significantly below the other classes' mean recall
    gain: float | None = None  # optimized metric if this class's recall rose to the others' mean

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
    ref: MetricRef, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: Sequence[Any]
) -> list[WeakClass]:
    """Per-class recall and precision with Wilson intervals, weakest first (by F1, then recall)."""
    cls = np.asarray(classes)
    index = {str(c): i for i, c in enumerate(cls)}
    yi = np.array([index[str(v)] for v in y])
    pi = np.array([index.get(str(v), -1) for v in pred])
    k = len(cls)
    support = np.bincount(yi, minlength=k)
    predicted = np.bincount(pi[pi >= 0], minlength=k)
    hits = np.bincount(yi[yi == pi], minlength=k)
    recalls = np.divide(hits, support, out=np.zeros(k), where=support > 0)
    out = []
    for j in range(k):
        if support[j] == 0:
            continue
        r_low, r_high = wilson_interval(hits[j], int(support[j]))
        others = [recalls[i] for i in range(k) if i != j and support[i] > 0]
        mean_other = float(np.mean(others)) if others else float(recalls[j])
        prec = hits[j] / predicted[j] if predicted[j] else None
        p_low, p_high = wilson_interval(hits[j], int(predicted[j])) if predicted[j] else (None, None)
        f1 = 2 * hits[j] / (support[j] + predicted[j]) if support[j] + predicted[j] else 0.0
        missed_rows = np.flatnonzero((yi == j) & (pi != j))
        lift = max(0, round((mean_other - recalls[j]) * support[j]))
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
                bool(r_high < mean_other - 1e-9 and hits[j] < support[j]),
                None if gain is None else float(gain),
            )
        )
    return sorted(out, key=lambda c: (c.f1, c.recall, str(c.label)))


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


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values), in the input's order.

    Examples
    --------
    >>> benjamini_hochberg(np.array([0.01, 0.04, 0.03])).round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


@dataclass(frozen=True)
class _Feature:
    name: str
    codes: np.ndarray  # bin per row, -1 where the row is in no bin
    labels: list[str]
    conditions: list[dict[str, Any]]  # per bin: what a row must satisfy to fall in it (for new rows)


def _bins(name: str, values: pd.Series, kind: str, n_bins: int) -> _Feature | None:
    """A feature cut into slices: quantile bins (numeric), top categories (categorical)."""
    missing = values.isna().to_numpy()
    if kind == "numeric":
        v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        distinct = np.unique(v[~np.isnan(v)])
        if len(distinct) < 2:
            return None
        if len(distinct) <= max(n_bins, 10):  # few values: each is a slice of its own
            codes = np.searchsorted(distinct, v)
            labels = [f"{name} = {d:g}" for d in distinct]
            conditions = [{"column": name, "equals": float(d)} for d in distinct]
        else:
            edges = np.unique(np.quantile(v[~np.isnan(v)], np.linspace(0, 1, n_bins + 1)[1:-1]))
            codes = np.searchsorted(edges, v, side="right")
            bounds = [-math.inf, *edges.tolist(), math.inf]
            labels = []
            conditions = []
            for i in range(len(bounds) - 1):
                lo, hi = bounds[i], bounds[i + 1]
                conditions.append(
                    {
                        "column": name,
                        "low": None if lo == -math.inf else lo,
                        "high": None if hi == math.inf else hi,
                    }
                )
                if lo == -math.inf:
                    labels.append(f"{name} < {hi:g}")
                elif hi == math.inf:
                    labels.append(f"{name} ≥ {lo:g}")
                else:
                    labels.append(f"{lo:g} ≤ {name} < {hi:g}")
        codes = np.where(np.isnan(v), len(labels), codes)
    else:
        text = values.astype(str)
        counts = text[~missing].value_counts()
        top = list(counts.index[:20])
        if len(top) < 2:
            return None
        lookup = {c: i for i, c in enumerate(top)}
        codes = np.array([lookup.get(t, -1) for t in text])
        labels = [f"{name} = {c}" for c in top]
        conditions = [{"column": name, "equals": c} for c in top]
        codes = np.where(missing, len(labels), codes)
    if missing.any():
        labels = [*labels, f"{name} is missing"]
        conditions = [*conditions, {"column": name, "missing": True}]
    return _Feature(name, codes.astype(np.int64), labels, conditions)


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
    cand_codes: list[np.ndarray] = []  # per slice family: code per row
    cand_labels: list[list[str]] = []
    cand_conditions: list[list[list[dict[str, Any]]]] = []
    cand_parents: list[tuple[int, ...]] = []
    for i, f in enumerate(feats):
        cand_codes.append(f.codes)
        cand_labels.append(f.labels)
        cand_conditions.append([[c] for c in f.conditions])
        cand_parents.append((i,))
    pairs = [(i, j) for i in range(len(feats)) for j in range(i + 1, len(feats))]
    if len(pairs) > max_pairs:
        searched["note"] = (
            f"pairs limited to the first {max_pairs} of {len(pairs)} (features in column order)"
        )
        pairs = pairs[:max_pairs]
    for i, j in pairs:
        a, b = feats[i], feats[j]
        kb = len(b.labels)
        codes = np.where((a.codes >= 0) & (b.codes >= 0), a.codes * kb + b.codes, -1)
        cand_codes.append(codes)
        cand_labels.append([f"{la} and {lb}" for la in a.labels for lb in b.labels])
        cand_conditions.append([[ca, cb] for ca in a.conditions for cb in b.conditions])
        cand_parents.append((i, j))
    # Counts per slice: rows, loss sum, loss sum of squares.
    records = []
    total, total_sq = float(loss.sum()), float((loss**2).sum())
    for fam, codes in enumerate(cand_codes):
        size = len(cand_labels[fam])
        ok = codes >= 0
        cnt = np.bincount(codes[ok], minlength=size)
        s1 = np.bincount(codes[ok], weights=loss[ok], minlength=size)
        s2 = np.bincount(codes[ok], weights=loss[ok] ** 2, minlength=size)
        for slot in np.flatnonzero((cnt >= min_support) & (cnt <= n - min_support)):
            records.append((fam, int(slot), int(cnt[slot]), float(s1[slot]), float(s2[slot])))
    searched["slices"] = int(sum(len(lbl) for lbl in cand_labels))
    searched["tested"] = len(records)
    if not records:
        return [], searched
    cnt = np.array([r[2] for r in records], dtype=float)
    s1 = np.array([r[3] for r in records])
    s2 = np.array([r[4] for r in records])
    rest_n = n - cnt
    rest_mean = (total - s1) / rest_n
    mean = s1 / cnt
    if classify:
        k = np.round(s1).astype(int)
        p = hypergeom.sf(k - 1, n, round(total), cnt.astype(int))
    else:
        var_in = np.maximum(s2 / cnt - mean**2, 0) * cnt / np.maximum(cnt - 1, 1)
        var_out = np.maximum((total_sq - s2) / rest_n - rest_mean**2, 0) * rest_n / np.maximum(rest_n - 1, 1)
        se2 = var_in / cnt + var_out / rest_n
        with np.errstate(all="ignore"):
            tstat = (mean - rest_mean) / np.sqrt(se2)
            df = se2**2 / (
                (var_in / cnt) ** 2 / np.maximum(cnt - 1, 1)
                + (var_out / rest_n) ** 2 / np.maximum(rest_n - 1, 1)
            )
        p = np.where(np.isfinite(tstat), student_t.sf(tstat, np.nan_to_num(df, nan=1.0)), 1.0)
    q = benjamini_hochberg(p)
    hits = np.flatnonzero((q <= fdr) & (mean > rest_mean))
    searched["discoveries"] = len(hits)
    order = sorted(hits, key=lambda h: (-(s1[h] - cnt[h] * rest_mean[h]), p[h]))
    # A single slice whose excess is mostly one of its significant pairs' is that pair, diluted:
    # report the pair (the sharper description) instead.
    excess_of = s1 - cnt * rest_mean
    explained: dict[tuple[int, int], float] = {}
    for h in hits:
        fam = int(records[h][0])
        if len(cand_parents[fam]) == 2:
            i, j = cand_parents[fam]
            kb = len(feats[j].labels)
            for key in ((i, int(records[h][1]) // kb), (j, int(records[h][1]) % kb)):
                explained[key] = max(explained.get(key, 0.0), float(excess_of[h]))
    kept: list[WeakSegment] = []
    kept_rows: list[np.ndarray] = []
    cls = None if classes is None else np.asarray(classes)
    for h in order:
        fam, code = int(records[h][0]), int(records[h][1])
        rows = np.flatnonzero(cand_codes[fam] == code)
        if any(
            len(np.intersect1d(rows, other, assume_unique=True)) >= 0.8 * len(rows) for other in kept_rows
        ):
            continue  # mostly inside a segment already reported
        if len(cand_parents[fam]) == 1 and explained.get((fam, code), 0.0) >= 0.8 * excess_of[h]:
            continue
        if len(cand_parents[fam]) == 2:  # a pair must be worse than both of its single slices
            i, j = cand_parents[fam]
            kb = len(feats[j].labels)
            parents = [(i, code // kb), (j, code % kb)]
            if any(mean[h] <= _parent_rate(loss, feats[pf].codes, pc) for pf, pc in parents):
                continue
        excess = float(s1[h] - cnt[h] * rest_mean[h])
        if classify:
            low, high = (float(v) for v in wilson_interval(s1[h], int(cnt[h])))
            wrong = rows[loss[rows] > 0]
            gain = _fixed_gain(ref, y, pred, proba, cls, wrong[: round(excess)])
            perfect = _fixed_gain(ref, y, pred, proba, cls, wrong)
        else:
            half = float(
                student_t.ppf(0.975, max(cnt[h] - 1, 1))
                * math.sqrt(max(s2[h] / cnt[h] - mean[h] ** 2, 0) / cnt[h])
            )
            low, high = float(mean[h] - half), float(mean[h] + half)
            gain, perfect = _regression_gain(ref, y, pred, rows, rest_mean[h])
        kept.append(
            WeakSegment(
                cand_labels[fam][code],
                int(cnt[h]),
                float(mean[h]),
                low,
                high,
                float(rest_mean[h]),
                float(p[h]),
                float(q[h]),
                excess,
                gain,
                perfect,
                cand_conditions[fam][code],
            )
        )
        kept_rows.append(rows)
        if len(kept) >= limit:
            break
    return kept, searched


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


# --- next actions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnosis:
    """Everything that says what to do next, with the single most valuable action first."""

    metric: str
    model: str | None
    split: str
    bias_variance: BiasVariance | None = None
    curve: Curve | None = None
    curve_findings: list[Finding] = field(default_factory=list)
    history: Curve | None = None
    history_findings: list[Finding] = field(default_factory=list)
    classes: list[WeakClass] = field(default_factory=list)
    segments: list[WeakSegment] = field(default_factory=list)
    searched: dict[str, Any] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def lead(self) -> Action | None:
        """The single most valuable action."""
        return self.actions[0] if self.actions else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "metric": self.metric,
            "model": self.model,
            "split": self.split,
            "bias_variance": self.bias_variance.to_dict() if self.bias_variance else None,
            "curve": self.curve.to_dict() if self.curve else None,
            "curve_findings": [f.to_dict() for f in self.curve_findings],
            "history": self.history.to_dict() if self.history else None,
            "history_findings": [f.to_dict() for f in self.history_findings],
            "classes": [c.to_dict() for c in self.classes],
            "segments": [s.to_dict() for s in self.segments],
            "searched": self.searched,
            "actions": [a.to_dict() for a in self.actions],
            "notes": self.notes,
        }


def next_actions(
    *,
    bv: BiasVariance | None = None,
    findings: Sequence[Finding] = (),
    forecast: Forecast | None = None,
    classes: Sequence[WeakClass] = (),
    segments: Sequence[WeakSegment] = (),
    need_ml: str | None = None,
    target_met: bool | None = None,
    best_simple: str | None = None,
) -> list[Action]:
    """Every action the evidence supports, ranked: decisions first, then by the metric they could win."""
    out: list[Action] = []
    if need_ml == "no":
        out.append(
            Action(
                f"Ship the simple rung ({best_simple}) or improve it: ML does not beat it by the margin",
                "the ladder's paired comparison on test",
                "rules",
                priority=0,
            )
        )
    if target_met:
        out.append(
            Action(
                "The target is met: gate and promote the best candidate, then watch it in production",
                "the best model's interval clears the objective's target",
                "target",
                priority=0,
            )
        )
    if bv is not None and bv.dominant in ("avoidable bias", "variance", "both", "data mismatch"):
        names = {"both": ("avoidable bias", "variance")}.get(bv.dominant, (bv.dominant,))
        for name in names:
            comp = bv.component(name)
            kind = {"avoidable bias": "bias", "variance": "variance", "data mismatch": "mismatch"}[name]
            first = {"bias": _BIAS_ACTIONS, "variance": _VARIANCE_ACTIONS, "mismatch": _MISMATCH_ACTIONS}[
                kind
            ]
            out.append(
                Action(
                    first[0] if kind != "variance" or forecast is None else "Get more training data",
                    f"{name} is {comp.value:.4g} of {bv.metric} error" if comp is not None else bv.summary,
                    kind,
                    comp.value if comp is not None else None,
                )
            )
    for f in findings:
        if f.kind == "underfitting":
            out.append(Action("Work on the model before collecting data", f.text, "model", f.gain))
        elif f.kind == "stop early":
            out.append(
                Action("Stop training earlier (early stopping on validation)", f.text, "variance", f.gain)
            )
    if forecast is not None and forecast.status == "reachable" and forecast.needed is not None:
        cost = f" for about {forecast.cost:,.0f}" if forecast.cost is not None else ""
        gain = forecast.doubling_gain
        out.append(
            Action(
                f"Label about {forecast.labels_to_buy:,.0f} more rows{cost} to reach the target",
                forecast.describe(),
                "data",
                abs(forecast.target - forecast.current)
                if forecast.target is not None and forecast.current is not None
                else gain,
                forecast.cost,
            )
        )
    elif forecast is not None and forecast.status == "unreachable":
        out.append(
            Action(
                "Change the model family or the features: more data of this kind levels off "
                "short of the target",
                forecast.describe(),
                "model",
                None,
            )
        )
    elif forecast is not None and forecast.doubling_gain is not None and forecast.doubling_gain > 0:
        out.append(
            Action(
                f"Double the training rows ({forecast.n_train:,} more labels)",
                f"the fitted curve gains {forecast.doubling_gain:+.4g} from twice the rows",
                "data",
                forecast.doubling_gain,
                forecast.n_train * forecast.cost_per_label if forecast.cost_per_label is not None else None,
            )
        )
    for seg in segments[:3]:
        out.append(
            Action(
                f"Fix the weak segment {seg.description}: collect and label more rows like it",
                f"{seg.rows} rows, error {seg.error:.3g} vs {seg.rest:.3g} elsewhere (q = {seg.q_value:.2g})",
                "segment",
                seg.gain,
            )
        )
    for c in [c for c in classes if c.weak][:3]:
        out.append(
            Action(
                f"Label more examples of class {c.label}",
                f"recall {c.recall:.3g} [{c.recall_low:.3g}, {c.recall_high:.3g}] on {c.support} rows, "
                "significantly below the other classes",
                "class",
                c.gain,
            )
        )
    return sorted(out, key=lambda a: (a.priority, -(a.gain if a.gain is not None else -1.0)))
