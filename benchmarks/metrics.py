"""Metric engine speed, as ratios against anchors measured in the same run.

Targets (DESIGN.md, issue 3): on 10M rows and 10 classes, the full label metric
set with 1,000-resample intervals in <= 3x one ``np.bincount`` pass over the
labels and >= 50x faster than ``sklearn.metrics.classification_report``;
ROC AUC with its interval on 1M rows no slower than scikit-learn's
``roc_auc_score`` without one.

Run: ``python benchmarks/metrics.py [--rows 10000000]``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from flywheel.metrics import score

LABEL_METRICS = ["accuracy", "balanced_accuracy", "mcc", "cohen_kappa"] + [
    f"{kind}_{avg}" for kind in ("precision", "recall", "f1") for avg in ("micro", "macro", "weighted")
]


def best_of(fn: Callable[[], Any], repeats: int = 3) -> float:
    """The fastest of ``repeats`` runs, in seconds (the least disturbed by the machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--classes", type=int, default=10)
    args = parser.parse_args()
    n, k = args.rows, args.classes
    rng = np.random.default_rng(0)
    y = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.8, y, rng.integers(0, k, n))
    classes = np.arange(k)

    print(f"# labels: {n:,} rows, {k} classes, 1,000 resamples, 95% intervals")
    anchor = best_of(lambda: np.bincount(y, minlength=k))
    print(f"anchor  np.bincount over the labels        {anchor * 1e3:9.1f} ms   1.0x")
    ours = best_of(lambda: score(y, pred, metrics=LABEL_METRICS, classes=classes))
    print(
        f"flywheel {len(LABEL_METRICS)} label metrics + intervals "
        f"{ours * 1e3:9.1f} ms  {ours / anchor:5.1f}x bincount (target <= 3x)"
    )
    inferred = best_of(lambda: score(y, pred, metrics=LABEL_METRICS))
    print(
        f"flywheel, classes inferred from y_true    {inferred * 1e3:9.1f} ms  "
        f"{inferred / anchor:5.1f}x bincount"
    )
    report = best_of(lambda: skm.classification_report(y, pred), repeats=1)
    print(
        f"sklearn classification_report (no CIs)   {report * 1e3:9.1f} ms   flywheel is "
        f"{report / ours:5.1f}x faster (target >= 50x)"
    )
    few = 3
    one_f1 = best_of(
        lambda: skm.f1_score(y[rng.integers(0, n, n)], pred[rng.integers(0, n, n)], average="macro"),
        repeats=few,
    )
    print(
        f"sklearn f1_macro x 1,000 resamples (extrapolated from {few}) {one_f1 * 1000:9.1f} s   "
        f"flywheel is {one_f1 * 1000 / ours:7.0f}x faster"
    )

    m = 100_000
    yy, pp = y[:m], pred[:m]
    hits = (yy == pp).astype(float)
    sp = best_of(
        lambda: stats.bootstrap((hits,), np.mean, n_resamples=1000, method="percentile", random_state=0),
        repeats=1,
    )
    fw = best_of(lambda: score(yy, pp, metrics=["accuracy"], classes=classes, method="percentile"))
    print(f"\n# {m:,} rows: accuracy with a 1,000-resample percentile interval")
    print(
        f"scipy.stats.bootstrap (vectorised mean)   {sp * 1e3:9.1f} ms   flywheel is {sp / fw:5.1f}x faster "
        f"({fw * 1e3:.1f} ms)"
    )

    m = 1_000_000
    yb = rng.integers(0, 2, m)
    s = yb * 0.5 + rng.normal(size=m)
    sk = best_of(lambda: skm.roc_auc_score(yb, s))
    fw = best_of(lambda: score(yb, None, s, ["roc_auc"]))
    print(f"\n# {m:,} rows: ROC AUC")
    print(f"sklearn roc_auc_score, no interval        {sk * 1e3:9.1f} ms   1.0x")
    print(
        f"flywheel roc_auc with its interval        {fw * 1e3:9.1f} ms  {fw / sk:5.2f}x sklearn "
        "(target <= 1x)"
    )


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main()
