"""The bootstrap behind ``score`` and ``compare``: how to resample, the interval, and its caveats.

How an interval is computed depends on how many cells the metric's rows fall
into (see :mod:`flywheel.metrics._cells`):

- few cells (≤ ``MULTINOMIAL_CELLS``; every label metric, whose cells are the
  K² confusion counts): resample the cell counts from a multinomial, which has
  exactly the distribution of resampling rows. Cost independent of the rows.
- many cells and at most ``max_rows`` rows: resample row indices in blocks
  (bounded memory) and aggregate them to cells. Exact, O(B·n).
- binary ROC AUC / average precision over many distinct scores: resample a
  grid of quantile bins of the scores and apply the resampled *deviations* to
  the exact estimate.
- a mean of per-row values (log loss, Brier, MAE, MSE, RMSE, MAPE, pinball)
  over more than ``max_rows`` rows and many distinct values: resample bins of
  the values as cells, the spread within them as a normal (:mod:`._means`):
  the bootstrap's own mean and variance, at the cost of a pass over the rows.
  R² likewise, over bins of its squared errors and targets (:mod:`._r2`).
- other metrics over more rows than ``max_rows``: bootstrap a random subsample
  of ``max_rows`` rows and shrink the deviations by sqrt(m/n) (the m-out-of-n
  bootstrap, valid for the smooth statistics used here), centred on the exact
  estimate.

Intervals are percentile intervals; BCa (bias-corrected and accelerated) is
used where its jackknife is cheap: exact cell resampling over few cells, where
the jackknife has one value per cell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from flywheel.metrics._cells import CellFn, Cells
from flywheel.metrics._statistics import Prepared

__all__ = [
    "DEFAULT_MAX_ROWS",
    "JACKKNIFE_CELLS",
    "MULTINOMIAL_CELLS",
    "RANKING_BINS",
    "ResamplePlan",
    "SMALL_N",
    "bootstrap_interval",
    "compressed",
    "interval_note",
    "jackknife_accelerations",
    "resample_plan",
    "resampled",
]

MULTINOMIAL_CELLS = 2048
RANKING_BINS = 512
JACKKNIFE_CELLS = 1024
DEFAULT_MAX_ROWS = 100_000
SMALL_N = 30
_BLOCK_ELEMENTS = 1 << 22  # resample rows in blocks of at most this many indices (32 MB)


def resampled(
    group: Sequence[Cells], n_resamples: int, rng: np.random.Generator, multi: CellFn | None = None
) -> np.ndarray:
    """Metrics on bootstrap resamples of the rows, shape (len(group), n_resamples).

    Every member of ``group`` shares the same cells (codes and counts), so one
    draw of cell weights serves them all.
    """
    cells = group[0]
    counts = cells.counts()
    n = int(counts.sum())
    out = np.empty((len(group), n_resamples))
    if compressed(cells, n):
        p = counts / n
        block = max(1, min(n_resamples, _BLOCK_ELEMENTS // max(cells.n_cells, 1)))
        for start in range(0, n_resamples, block):
            size = min(block, n_resamples - start)
            w = rng.multinomial(n, p, size=size).astype(float)
            if multi is not None:
                out[:, start : start + size] = multi(w)
                continue
            for i, member in enumerate(group):
                out[i, start : start + size] = member.fn(w)
        return out
    block = max(1, min(n_resamples, _BLOCK_ELEMENTS // n))
    for start in range(0, n_resamples, block):
        size = min(block, n_resamples - start)
        rows = rng.integers(0, n, size=(size, n))
        flat = cells.codes[rows] + (np.arange(size) * cells.n_cells)[:, None]
        w = np.bincount(flat.ravel(), minlength=size * cells.n_cells).reshape(size, cells.n_cells)
        for i, member in enumerate(group):
            out[i, start : start + size] = member.fn(w.astype(float))
    return out


def compressed(cells: Cells, n: int) -> bool:
    """Whether the cells are few enough to resample (and jackknife) as cells rather than rows."""
    return cells.n_cells <= MULTINOMIAL_CELLS and 4 * cells.n_cells <= n


def jackknife_accelerations(group: Sequence[Cells], multi: CellFn | None = None) -> list[float | None]:
    """BCa's acceleration from the jackknife, one leave-one-out value per occupied cell.

    Only where cheap: few cells (label metrics), or few rows. Members of a group
    share their cells, so the leave-one-out weights are built once for all.
    """
    cells = group[0]
    counts = cells.counts()
    occupied = np.flatnonzero(counts)
    if not (compressed(cells, int(counts.sum())) or len(occupied) <= JACKKNIFE_CELLS):
        return [None] * len(group)
    leave_one_out = np.repeat(counts[None, :], len(occupied), axis=0)
    leave_one_out[np.arange(len(occupied)), occupied] -= 1
    thetas = multi(leave_one_out) if multi is not None else [m.fn(leave_one_out) for m in group]
    weights = counts[occupied]
    out: list[float | None] = []
    for theta in thetas:
        if not np.all(np.isfinite(theta)):
            out.append(None)
            continue
        d = np.sum(weights * theta) / weights.sum() - theta
        denom = np.sum(weights * d**2) ** 1.5
        out.append(float(np.sum(weights * d**3) / (6 * denom)) if denom > 0 else 0.0)
    return out


def bootstrap_interval(
    point: float, draws: np.ndarray, confidence: float, acceleration: float | None
) -> tuple[float | None, float | None, str]:
    """The interval from resampled values: BCa when an acceleration is given and usable, else percentile.

    ``(None, None, "none")`` when the point or too many resamples are not finite.
    """
    finite = draws[np.isfinite(draws)]
    if len(finite) < 0.9 * len(draws) or not math.isfinite(point):
        return None, None, "none"
    alpha = 1 - confidence
    qs = np.array([alpha / 2, 1 - alpha / 2])
    method = "percentile"
    if acceleration is not None:
        below = np.mean(finite < point)
        if 0 < below < 1:
            z0 = ndtri(below)
            z = ndtri(qs)
            adjusted = ndtr(z0 + (z0 + z) / (1 - acceleration * (z0 + z)))
            if np.all(np.isfinite(adjusted)):
                qs, method = adjusted, "bca"
    low, high = np.percentile(finite, 100 * qs)
    return float(low), float(high), method


def interval_note(n: int, low: float | None, high: float | None, extra: str | None) -> str | None:
    """What a reader should know about an interval: ``extra``, too few rows, or no spread at all."""
    notes = [extra] if extra else []
    if n < SMALL_N:
        notes.append(f"only {n} rows: the interval is too wide or too unstable to be meaningful")
    elif low is not None and high is not None and low == high:
        notes.append(
            f"no resample changed the value at n={n} (e.g. no errors): the interval is not meaningful"
        )
    return "; ".join(notes) or None


@dataclass(frozen=True, eq=False)
class ResamplePlan:
    """What to resample for one metric, around which centre, and how to scale the deviations."""

    cells: Cells  # what is resampled
    center: float  # the statistic on those cells
    scale: float  # multiplier of resampled deviations
    exact: bool
    label: str


def resample_plan(
    build: Any,
    cells: Cells,
    p: Prepared,
    point: float,
    max_rows: int,
    rng: np.random.Generator,
    coarsen: bool,
) -> ResamplePlan:
    """Exact cells when few, score bins for a binary ranking metric, else rows (a subsample when many)."""
    if cells.n_cells <= MULTINOMIAL_CELLS:
        return ResamplePlan(cells, point, 1.0, True, "")
    if coarsen:
        coarse = build(p, RANKING_BINS)
        return ResamplePlan(coarse, coarse.value(), 1.0, False, f"resampled on {RANKING_BINS} score bins")
    if p.n <= max_rows:
        return ResamplePlan(cells, point, 1.0, False, "")
    rows = np.sort(rng.choice(p.n, size=max_rows, replace=False))
    sub = build(p.take(rows), None)
    return ResamplePlan(
        sub,
        sub.value(),
        math.sqrt(max_rows / p.n),
        False,
        f"m-out-of-n bootstrap on {max_rows} of {p.n} rows",
    )
