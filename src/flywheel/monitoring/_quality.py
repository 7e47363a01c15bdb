"""Quality in production: measured on labelled traffic, estimated without labels, and what it moves.

- **Live quality** is the objective's metric on the predictions whose label came back with the
  traffic (``POST /feedback``), with its bootstrap interval. Labels from the review queue are left
  out: mining chose those rows because the model was likely wrong on them, so they are a biased
  sample of production.
- **Estimated quality** (confidence-based performance estimation, as NannyML's CBPE): for every
  prediction the champion's calibrated probabilities say how likely each true class is, so they
  give the *expected* confusion matrix of the unlabelled traffic, and the metric follows from it.
  Its interval comes from the labels' own randomness (the confusion matrix drawn from a normal
  with the summed per-row covariances). It is only as good as the probabilities' calibration
  under the new inputs, which is why it is checked against the labelled rows where both exist.
- **Latency** percentiles of the logged request times, with distribution-free intervals.
- **Outcomes**: whether a downstream event's rate differs between right and wrong predictions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from flywheel.monitoring._state import LATENCY_EDGES, ModelDay

__all__ = [
    "estimated_quality",
    "latency_percentile",
    "live_quality",
    "outcome_effect",
    "versus",
]

_DRAWS = 2000


def _label_spec(metric: str, classes: list[Any]) -> tuple[str, int | None] | None:
    """The label metric's base name and class index; None when it is not computed from labels."""
    from flywheel.metrics import parse_metric

    ref = parse_metric(metric)
    if ref.metric.family != "confusion":
        return None
    if ref.class_label is not None:
        names = [str(c) for c in classes]
        return (ref.metric.name, names.index(ref.class_label)) if ref.class_label in names else None
    if ref.metric.name in ("precision", "recall", "f1"):
        return ref.metric.name, len(classes) - 1
    return ref.metric.name, None


def live_quality(
    y: list[Any], pred: list[Any], proba: np.ndarray | None, metric: str, classes: list[Any] | None
) -> dict[str, Any]:
    """The metric on labelled rows with its 95 % bootstrap interval (``value`` None when undefined)."""
    from flywheel.metrics import get_metric, score

    needs_scores = get_metric(metric).needs == "scores"
    if needs_scores and proba is None:
        return {
            "value": None,
            "low": None,
            "high": None,
            "rows": len(y),
            "note": f"{metric} needs class scores",
        }
    try:
        est = score(
            np.asarray(y, dtype=object if classes is not None else float),
            y_pred=np.asarray(pred, dtype=object if classes is not None else float),
            y_score=proba if needs_scores else None,
            metrics=[metric],
            classes=classes,
            n_resamples=1000,
        )[metric]
    except ValueError as exc:
        return {"value": None, "low": None, "high": None, "rows": len(y), "note": str(exc)}
    return {"value": est.value, "low": est.low, "high": est.high, "rows": len(y), "note": est.note}


def estimated_quality(day: ModelDay, metric: str, classes: list[Any], seed: int = 0) -> dict[str, Any] | None:
    """The metric expected from the logged probabilities, with its 95 % interval; None when the
    metric is not a label metric or no probabilities were logged."""
    from flywheel.metrics import label_metric

    spec = _label_spec(metric, classes)
    if spec is None or day.expected is None or day.covariance is None or day.with_scores == 0:
        return None
    name, index = spec
    point = float(label_metric(name, day.expected, index))
    k = len(classes)
    rng = np.random.default_rng(seed)
    draws = np.empty((_DRAWS, k, k))
    for j in range(k):
        cov = day.covariance[j]
        vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
        root = vecs * np.sqrt(np.clip(vals, 0, None))
        draws[:, :, j] = day.expected[:, j] + rng.standard_normal((_DRAWS, k)) @ root.T
    draws = np.clip(draws, 0, None)
    values = np.asarray(label_metric(name, draws, index), dtype=float)
    values = values[np.isfinite(values)]
    low, high = (
        (float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975)))
        if values.size
        else (None, None)
    )
    return {"value": point, "low": low, "high": high, "rows": day.with_scores}


def expected_on(proba: np.ndarray, pred_codes: np.ndarray, k: int) -> ModelDay:
    """A :class:`ModelDay` holding only the expected confusion of these rows (for the labelled check)."""
    expected = np.zeros((k, k))
    covariance = np.zeros((k, k, k))
    for j in np.unique(pred_codes[pred_codes >= 0]):
        pj = proba[pred_codes == j]
        total = pj.sum(axis=0)
        expected[:, j] += total
        covariance[j] += np.diag(total) - pj.T @ pj
    empty = np.zeros(1, dtype=np.int64)
    return ModelDay(len(proba), None, empty, empty, len(proba), expected, covariance)


def latency_percentile(counts: np.ndarray, q: float, confidence: float = 0.95) -> dict[str, Any] | None:
    """The q-th latency percentile (ms) from the histogram, with a distribution-free interval from
    order statistics (binomial ranks), each read as its bin's upper edge (bins 12 % wide)."""
    from scipy import stats

    n = int(counts.sum())
    if n == 0:
        return None
    cum = np.cumsum(counts)
    uppers = np.r_[LATENCY_EDGES, math.inf]

    def at_rank(rank: float) -> float:
        rank = min(max(rank, 1), n)
        return float(uppers[int(np.searchsorted(cum, rank, side="left"))])

    alpha = (1 - confidence) / 2
    lo_rank = stats.binom.ppf(alpha, n, q / 100)
    hi_rank = stats.binom.ppf(1 - alpha, n, q / 100) + 1
    return {
        "percentile": q,
        "value": at_rank(math.ceil(q / 100 * n)),
        "low": at_rank(lo_rank) if lo_rank >= 1 else None,
        "high": at_rank(hi_rank) if hi_rank <= n else None,
        "rows": n,
    }


def versus(
    value: float,
    low: float | None,
    high: float | None,
    ref: float,
    ref_low: float | None,
    ref_high: float | None,
    greater_is_better: bool,
) -> dict[str, Any]:
    """How far ``value`` falls short of ``ref`` (positive: worse), with an interval that combines
    both intervals' halves (independent rows: live traffic and the test split)."""
    sign = 1.0 if greater_is_better else -1.0
    drop = sign * (ref - value)
    lo_v = value - (low if low is not None else value)
    hi_v = (high if high is not None else value) - value
    lo_r = ref - (ref_low if ref_low is not None else ref)
    hi_r = (ref_high if ref_high is not None else ref) - ref
    if greater_is_better:  # drop = ref - value: low when ref is low and value high
        d_low, d_high = drop - math.hypot(lo_r, hi_v), drop + math.hypot(hi_r, lo_v)
    else:  # drop = value - ref
        d_low, d_high = drop - math.hypot(lo_v, hi_r), drop + math.hypot(hi_v, lo_r)
    return {"drop": drop, "low": d_low, "high": d_high}


def outcome_effect(correct: list[bool], values: list[float], min_rows: int) -> dict[str, Any]:
    """The outcome's mean among right predictions minus among wrong ones, with a 95 % interval
    (Welch), and whether correctness moves it: ``moves`` (interval excludes 0), ``unmoved`` (interval
    inside ± a tenth of the outcome's standard deviation: no effect worth the name),
    ``undecided``, or ``too few rows``."""
    c = np.asarray(correct, dtype=bool)
    v = np.asarray(values, dtype=float)
    right, wrong = v[c], v[~c]
    out: dict[str, Any] = {"right_rows": int(right.size), "wrong_rows": int(wrong.size)}
    if right.size < min_rows or wrong.size < min_rows:
        return {**out, "status": "too few rows", "needed": min_rows}
    diff = float(right.mean() - wrong.mean())
    se = math.sqrt(right.var(ddof=1) / right.size + wrong.var(ddof=1) / wrong.size)
    low, high = diff - 1.96 * se, diff + 1.96 * se
    bound = 0.1 * float(v.std(ddof=1)) if v.size > 1 else 0.0
    if low > 0 or high < 0:
        status = "moves"
    elif bound > 0 and -bound < low and high < bound:
        status = "unmoved"
    else:
        status = "undecided"
    return {
        **out,
        "right_mean": float(right.mean()),
        "wrong_mean": float(wrong.mean()),
        "difference": diff,
        "low": low,
        "high": high,
        "equivalence_bound": bound,
        "status": status,
    }
