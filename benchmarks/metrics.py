"""Metric engine speed: every figure against an anchor timed in the same rounds.

Targets (issues 3 and 20):

- on 10M rows and 10 classes, the 13 label metrics with their 1,000-resample intervals, called as
  the README calls ``score`` (classes inferred from ``y_true``), in <= 3x the confusion pass
  itself (``np.bincount(y * K + p, minlength=K * K)``, the floor: no engine can count the cells
  with less) and >= 50x faster than ``sklearn.metrics.classification_report`` without intervals;
- ROC AUC with its interval on 1M rows no slower than scikit-learn's ``roc_auc_score`` without one;
- every per-row metric (log loss, Brier, MAE, MSE, RMSE, MAPE, pinball, R², the median absolute
  error) with its interval on 1M rows in <= 2x scikit-learn's value without one.

How: each figure runs flywheel and its anchor one after the other in every round (the order
turning), ``--rounds`` rounds, with the OpenMP/BLAS threads of both pinned to one
(``_harness.pinned``); a ratio is flywheel's time over the anchor's in the same round, printed as
the median and range over the rounds. A target is met when every round's ratio is within it,
missed when none is, and undecided when the rounds straddle it. Where an anchor is scaled from a
few timed resamples, the figure says so. What the engine approximates (score bins, a binned or
m-out-of-n bootstrap) is read from the estimates' own notes, not written here.

Run: ``python benchmarks/metrics.py [--rows 10000000] [--classes 10] [--score-rows 1000000]
[--rounds 5] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from _harness import Figures, interleave, judge, pinned
from scipy import stats
from sklearn import metrics as skm

from flywheel.metrics import Scores, score

LABEL_METRICS = ["accuracy", "balanced_accuracy", "mcc", "cohen_kappa"] + [
    f"{kind}_{avg}" for kind in ("precision", "recall", "f1") for avg in ("micro", "macro", "weighted")
]
RESAMPLES = 1000  # score()'s default


def caveats(result: Scores) -> str:
    """How the engine computed the intervals, from the estimates themselves: method and notes."""
    said = []
    for est in result.values():
        text = est.method + (f": {est.note}" if est.note else ", no approximation noted")
        if text not in said:
            said.append(text)
    return "; ".join(said)


def add(
    figures: Figures,
    name: str,
    times: dict[str, list[float]],
    anchor: str,
    *,
    at_most: float | None = None,
    target: str | None = None,
    note: str = "",
    scale: float = 1.0,
) -> None:
    """A figure from interleaved times (flywheel's, the anchor's times ``scale``), judged on the
    ratios against ``at_most``: met when every round's is within, undecided when they straddle it."""
    ours, theirs = times["flywheel"], [t * scale for t in times["anchor"]]
    ratios = [o / a for o, a in zip(ours, theirs, strict=True)]
    met = None
    if at_most is not None:
        met, note = judge(ratios, at_most, note)
    figures.add(
        name,
        ours,
        anchor=anchor,
        anchor_values=theirs,
        target=target,
        met=met,
        note=note or None,
    )


def timed_pair(flywheel: Callable[[], Any], anchor: Callable[[], Any], rounds: int) -> dict[str, list[float]]:
    """Seconds per round of flywheel and its anchor, interleaved."""
    return interleave({"flywheel": flywheel, "anchor": anchor}, rounds)


def labels(figures: Figures, n: int, k: int, rounds: int) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.8, y, rng.integers(0, k, n))
    print(f"\n# label metrics: {n:,} rows, {k} classes, {RESAMPLES:,} resamples, 95% intervals")

    def readme() -> Scores:  # the README's call: classes inferred from y_true
        return score(y, pred, metrics=LABEL_METRICS)

    how = caveats(readme())
    floor = "the confusion pass, np.bincount(y * K + p, minlength=K * K)"
    times = timed_pair(readme, lambda: np.bincount(y * k + pred, minlength=k * k), rounds)
    add(
        figures,
        f"{len(LABEL_METRICS)} label metrics + intervals (classes inferred)",
        times,
        floor,
        at_most=3.0,
        target="<= 3x",
        note=how,
    )
    given = np.arange(k)
    times = timed_pair(
        lambda: score(y, pred, metrics=LABEL_METRICS, classes=given),
        lambda: np.bincount(y * k + pred, minlength=k * k),
        rounds,
    )
    add(figures, "the same, classes= given", times, floor)
    times = timed_pair(readme, lambda: skm.classification_report(y, pred, output_dict=True), rounds)
    add(
        figures,
        f"{len(LABEL_METRICS)} label metrics + intervals, against a report without them",
        times,
        "sklearn classification_report, no intervals",
        at_most=0.02,
        target="<= 0.02x (>= 50x faster)",
        note=_faster(times),
    )
    draw = np.random.default_rng(1)

    def one_resample() -> None:  # y_true and y_pred resampled by the same row indices
        rows = draw.integers(0, n, n)
        skm.classification_report(y[rows], pred[rows], output_dict=True)

    times = timed_pair(readme, one_resample, rounds)
    anchor = f"sklearn classification_report on {RESAMPLES:,} resamples (same rows for y and p)"
    note = f"anchor scaled from 1 timed resample per round (x {RESAMPLES:,}); " + _faster(times, RESAMPLES)
    add(
        figures,
        f"{len(LABEL_METRICS)} label metrics + intervals, against resampling rows",
        times,
        anchor,
        note=note,
        scale=RESAMPLES,
    )


def _faster(times: dict[str, list[float]], scale: float = 1.0) -> str:
    """'flywheel is N x faster (low-high)': the inverse of small ratios, which print as 0.00x."""
    speedups = sorted(a * scale / o for o, a in zip(times["flywheel"], times["anchor"], strict=True))
    return f"flywheel {statistics.median(speedups):,.0f}x faster ({speedups[0]:,.0f}-{speedups[-1]:,.0f})"


def readme_call(figures: Figures, n: int, rounds: int) -> None:
    """The README's example call, as written: labels and scores, f1_macro and roc_auc, classes inferred."""
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 2, n)
    y_score = 1 / (1 + np.exp(-(y_true - 0.5 + rng.normal(size=n))))
    y_pred = (y_score > 0.5).astype(np.int64)
    print(f"\n# the README's call on {n:,} binary rows")

    def call() -> Scores:
        return score(y_true, y_pred, y_score, metrics=["f1_macro", "roc_auc"])

    def anchor() -> None:
        skm.f1_score(y_true, y_pred, average="macro")
        skm.roc_auc_score(y_true, y_score)

    times = timed_pair(call, anchor, rounds)
    add(
        figures,
        'score(y_true, y_pred, y_score, metrics=["f1_macro", "roc_auc"])',
        times,
        "sklearn f1_score + roc_auc_score, no intervals",
        note=caveats(call()),
    )


def accuracy_vs_scipy(figures: Figures, rounds: int) -> None:
    m = 100_000
    rng = np.random.default_rng(3)
    y = rng.integers(0, 10, m)
    pred = np.where(rng.random(m) < 0.8, y, rng.integers(0, 10, m))
    hits = (y == pred).astype(float)
    print(f"\n# accuracy on {m:,} rows with a {RESAMPLES:,}-resample percentile interval")

    def ours() -> Scores:
        return score(y, pred, metrics=["accuracy"], method="percentile")

    def theirs() -> None:
        stats.bootstrap((hits,), np.mean, n_resamples=RESAMPLES, method="percentile", rng=0)

    times = timed_pair(ours, theirs, rounds)
    add(
        figures,
        "accuracy + percentile interval",
        times,
        "scipy.stats.bootstrap (vectorised mean)",
        note=f"{caveats(ours())}; {_faster(times)}",
    )


def ranking(figures: Figures, n: int, rounds: int) -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, n)
    s = y * 0.5 + rng.normal(size=n)
    print(f"\n# ranking metrics on {n:,} binary rows, continuous scores")
    for name, fn, at_most in (
        ("roc_auc", skm.roc_auc_score, 1.0),
        ("average_precision", skm.average_precision_score, None),
    ):

        def ours(name: str = name) -> Scores:
            return score(y, None, s, [name])

        times = timed_pair(ours, lambda fn=fn: fn(y, s), rounds)
        add(
            figures,
            f"{name} + interval",
            times,
            f"sklearn {fn.__name__}, no interval",
            at_most=at_most,
            target=None if at_most is None else "<= 1x",
            note=caveats(ours()),
        )


def per_row(figures: Figures, n: int, rounds: int) -> None:
    """Every per-row metric with its interval against scikit-learn's value (target <= 2x)."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-(1.2 * (2 * y - 1) + 1.5 * rng.normal(size=n))))
    yr = rng.normal(3, 1, n)
    pr = yr + rng.normal(0, 0.5, n)
    print(f"\n# per-row metrics on {n:,} rows, with their intervals")
    cases: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [
        ("log_loss", skm.log_loss, {}),
        ("brier", skm.brier_score_loss, {}),
        ("mae", skm.mean_absolute_error, {}),
        ("mse", skm.mean_squared_error, {}),
        ("rmse", skm.root_mean_squared_error, {}),
        ("mape", skm.mean_absolute_percentage_error, {}),
        ("pinball[q=0.9]", skm.mean_pinball_loss, {"alpha": 0.9}),
        ("r2", skm.r2_score, {}),
        ("median_ae", skm.median_absolute_error, {}),
    ]
    for name, fn, kwargs in cases:
        classification = name in ("log_loss", "brier")
        truth, given = (y, p) if classification else (yr, pr)

        ours: Callable[[], Scores] = (
            partial(score, truth, None, given, [name])
            if classification
            else partial(score, truth, given, metrics=[name])
        )
        theirs = partial(fn, truth, given, **kwargs)
        times = timed_pair(ours, theirs, rounds)
        anchor = f"sklearn {fn.__name__}, no interval"
        add(figures, f"{name} + interval", times, anchor, at_most=2.0, target="<= 2x", note=caveats(ours()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the label-metric figures")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--score-rows", type=int, default=1_000_000, help="rows of the other figures")
    parser.add_argument("--rounds", type=int, default=5)
    Figures.add_arguments(parser)
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error(f"--rounds must be at least 3; got {args.rounds}")
    figures = Figures("metrics", args.json)
    with pinned(1):
        labels(figures, args.rows, args.classes, args.rounds)
        readme_call(figures, args.score_rows, args.rounds)
        accuracy_vs_scipy(figures, args.rounds)
        ranking(figures, args.score_rows, args.rounds)
        per_row(figures, args.score_rows, args.rounds)
    figures.write()


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main()
