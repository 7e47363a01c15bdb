"""Drift: is production's input (or the champion's output) distributed as the reference's?

Per feature, a two-sample test on the reference's bins — Kolmogorov–Smirnov for a numeric feature
(with a test of the missing share beside it), chi-square for a categorical feature or a text
feature's tokens — and the false discovery rate held at 5 % across the features by
Benjamini–Hochberg, so thirty features do not raise an alarm by chance alone. A p-value says
whether a shift is real, not whether it matters: a million rows make a negligible shift
significant. So each feature also gets an effect size, the population stability index (PSI) on
deciles of the reference, which teams already read (under 0.1 small, 0.1–0.25 moderate, over 0.25
large), and features are ranked by it.

One multivariate check sees what no single feature shows (two features that moved together): a
domain classifier is trained to tell reference rows from logged rows; its cross-validated ROC AUC
is 0.5 when it cannot, and its interval says how sure that is.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from flywheel.monitoring._reference import Binning

__all__ = [
    "FeatureDrift",
    "benjamini_hochberg",
    "domain_classifier",
    "drift_region",
    "psi",
    "two_sample",
]

_PSI_FLOOR = 1e-4  # a share of zero is counted as 0.01 % so that PSI stays finite


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's shift in a window: the test, its p- and q-value, PSI, and the bins that moved most."""

    feature: str
    kind: str
    test: str  # "KS" | "chi-square"
    statistic: float
    p_value: float
    psi: float
    rows: int
    q_value: float = 1.0  # after Benjamini–Hochberg across the window's features
    moved: tuple[dict[str, Any], ...] = ()  # bins: label, reference share, window share

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "moved": list(self.moved)}


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins.

    >>> round(psi(np.array([50, 50]), np.array([50, 50])), 6)
    0.0
    >>> round(psi(np.array([50, 50]), np.array([90, 10])), 3)
    0.879
    """
    r = reference / max(reference.sum(), 1)
    c = current / max(current.sum(), 1)
    keep = (r > 0) | (c > 0)
    r, c = np.maximum(r[keep], _PSI_FLOOR), np.maximum(c[keep], _PSI_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def _deciles(binning: Binning, reference: np.ndarray) -> np.ndarray:
    """Group a numeric feature's fine bins into (about) ten of equal reference mass, missing apart."""
    values = reference[:-1].astype(float)
    share = values / max(values.sum(), 1.0)
    before = np.concatenate([[0.0], np.cumsum(share)[:-1]])
    groups = np.minimum(9, np.floor(before * 10 + 1e-9)).astype(np.int64)
    return np.concatenate([groups, [10]])


def _grouped(counts: np.ndarray, groups: np.ndarray) -> np.ndarray:
    return np.bincount(groups, weights=counts, minlength=int(groups.max()) + 1)


def two_sample(binning: Binning, reference: np.ndarray, current: np.ndarray) -> FeatureDrift:
    """The test, PSI and moved bins of one feature (counts over ``binning``'s bins)."""
    from scipy import stats

    n_cur = int(current.sum())
    if binning.kind == "numeric":
        r, c = reference[:-1].astype(float), current[:-1].astype(float)
        n, m = r.sum(), c.sum()
        statistic, p_value = 0.0, 1.0
        if n > 0 and m > 0:
            statistic = float(np.max(np.abs(np.cumsum(r) / n - np.cumsum(c) / m)))
            en = n * m / (n + m)
            p_value = float(stats.kstwo.sf(statistic, max(1, round(en))))
        miss_r, miss_c = float(reference[-1]), float(current[-1])
        if miss_r + miss_c > 0 and n + m > 0:  # a feature that stops being sent is a shift too
            table = np.array([[miss_r, n], [miss_c, m]])
            defined = (table.sum(axis=0) > 0).all() and (table.sum(axis=1) > 0).all()
            p_missing = float(stats.chi2_contingency(table)[1]) if defined else 1.0
            p_value = min(1.0, 2 * min(p_value, p_missing))
        effect = psi(*(_grouped(x, _deciles(binning, reference)) for x in (reference, current)))
        test = "KS"
    else:
        keep = (reference + current) > 0
        table = np.vstack([reference[keep], current[keep]]).astype(float)
        statistic, p_value = 0.0, 1.0
        if table.shape[1] > 1 and table.sum(axis=1).min() > 0:
            chi = stats.chi2_contingency(table, correction=False)
            statistic, p_value = float(chi[0]), float(chi[1])
        effect = psi(reference, current)
        test = "chi-square"
    return FeatureDrift(
        binning.feature,
        binning.kind,
        test,
        statistic,
        p_value,
        effect,
        n_cur,
        moved=_moved(binning, reference, current),
    )


def _moved(
    binning: Binning, reference: np.ndarray, current: np.ndarray, top: int = 3
) -> tuple[dict[str, Any], ...]:
    """The bins whose share changed most, largest first."""
    r = reference / max(reference.sum(), 1)
    c = current / max(current.sum(), 1)
    order = np.argsort(-np.abs(c - r), kind="stable")[:top]
    return tuple(
        {
            "bin": binning.label(int(i)),
            "edges": binning.bounds(int(i)),  # the numbers its label shows
            "reference": float(r[i]),
            "window": float(c[i]),
        }
        for i in order
        if abs(c[i] - r[i]) > 0.005
    )


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """q-values controlling the false discovery rate (Benjamini–Hochberg), in the order given.

    >>> [round(q, 3) for q in benjamini_hochberg([0.01, 0.04, 0.03, 0.5])]
    [0.04, 0.053, 0.053, 0.5]
    """
    if not p_values:
        return []
    from scipy.stats import false_discovery_control

    return [float(q) for q in false_discovery_control(np.asarray(p_values, dtype=float), method="bh")]


def drift_region(
    binning: Binning,
    reference: np.ndarray,
    current: np.ndarray,
    unseen: dict[str, int],
    sample_values: list[Any],
) -> dict[str, Any] | None:
    """Where a drifted feature's logged values crowd: bins holding at least 1 % of the window and at
    least twice their reference share (numeric: merged into ranges; categorical: the values,
    including ones never seen in training). ``None`` when no bin qualifies (or for text)."""
    r = reference / max(reference.sum(), 1)
    total = max(current.sum(), 1)
    c = current / total
    crowded = (c >= 0.01) & (c >= 2 * r)
    if binning.kind == "numeric":
        e = binning.edges
        finite = [float(v) for v in sample_values if isinstance(v, (int, float)) and np.isfinite(v)]
        low_end = min(finite, default=(e[0] if e else 0.0))
        high_end = max(finite, default=(e[-1] if e else 0.0))
        ranges: list[list[float]] = []
        for i in np.flatnonzero(crowded[: len(e) + 1]):
            lo = e[i - 1] if i > 0 else min(low_end, e[0] if e else low_end)
            hi = e[i] if i < len(e) else max(high_end, e[-1] if e else high_end)
            if ranges and ranges[-1][1] == lo:
                ranges[-1][1] = hi
            else:
                ranges.append([float(lo), float(hi)])
        return {"feature": binning.feature, "kind": "numeric", "ranges": ranges} if ranges else None
    if binning.kind == "categorical":
        values = [binning.values[i] for i in np.flatnonzero(crowded[: len(binning.values)])]
        values += [v for v, n in sorted(unseen.items(), key=lambda kv: -kv[1]) if n / total >= 0.01]
        return {"feature": binning.feature, "kind": "categorical", "values": values} if values else None
    return None


def domain_classifier(
    reference: pd.DataFrame, logged: list[dict[str, Any]], binnings: dict[str, Binning]
) -> dict[str, Any]:
    """Cross-validated ROC AUC (with its 95 % interval) of a classifier telling reference rows from
    logged rows (gradient-boosted trees, 3 folds). 0.5: it cannot tell them apart."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    from flywheel.metrics import score

    features = [f for f, b in binnings.items() if b.kind != "text"]
    current = pd.DataFrame(logged, columns=features)
    frame = pd.concat([reference[features].reset_index(drop=True), current], ignore_index=True)
    x = (
        np.column_stack([_encoded(frame[f], binnings[f]) for f in features])
        if features
        else np.zeros((len(frame), 1))
    )
    y = np.r_[np.zeros(len(reference), dtype=int), np.ones(len(current), dtype=int)]
    model = HistGradientBoostingClassifier(
        max_iter=50, max_leaf_nodes=15, learning_rate=0.1, early_stopping=False, random_state=0
    )
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    # One thread: OpenMP threads spinning on a busy two-core machine cost ten times their work.
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proba = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    est = score(y, y_score=proba, metrics=["roc_auc"], n_resamples=1000)["roc_auc"]
    return {
        "auc": float(est.value),
        "low": None if est.low is None else float(est.low),
        "high": None if est.high is None else float(est.high),
        "reference_rows": len(reference),
        "logged_rows": len(current),
    }


def _encoded(column: pd.Series, binning: Binning) -> np.ndarray:
    if binning.kind == "numeric":
        return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    index = {v: float(i) for i, v in enumerate(binning.values)}
    unseen = float(len(binning.values))
    return np.asarray(
        [
            np.nan if v is None or (isinstance(v, float) and np.isnan(v)) else index.get(str(v), unseen)
            for v in column
        ],
        dtype=float,
    )
