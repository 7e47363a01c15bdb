"""The bootstrap of a mean of per-row values (log loss, Brier, MAE, MSE, RMSE, MAPE, pinball) over many rows.

Resampling a million rows a thousand times costs a billion draws; but a resampled mean only
needs how many rows each resample takes from each group of similar values, and how spread
those values are. The rows are split into bins: one *bulk* bin for every value below
``2 ** (e + 4)``, where ``2 ** e <= mean < 2 ** (e + 1)`` (below 8 to 16 times the mean), and one
bin per octave (power of two, read off the float's exponent bits) above it, where a skewed
tail lives. A resample draws its bin counts from the multinomial that resampling rows induces
(the same draw as every other cell-resampled metric), and the spread of the rows within the
bins as one normal of their pooled within-bin variance. Given the data, the resampled mean then
has exactly the bootstrap's expectation and variance (the law of total variance), and the tail
bins carry the skew of a heavy tail; what is approximated is the skew from within the bins,
which over the rows this is used for (more than ``max_rows``, 100,000 by default) shifts an interval by a few
thousandths of a standard error, far below the Monte Carlo error of 1,000 resamples (about a
tenth of one). When the values have few distinct values, ``score`` resamples them exactly
instead (see ``_bootstrap``).

The bins depend only on each value and on the mean, so the out-of-core scorer keeps per-octave
counts and sums batch by batch and merges them into the same bins (``MeanStats``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from flywheel.metrics._bootstrap import MULTINOMIAL_CELLS, resampled
from flywheel.metrics._cells import Cells
from flywheel.metrics._registry import MetricRef

__all__ = [
    "MEAN_METRICS",
    "MeanBins",
    "MeanStats",
    "is_mean",
    "maybe_few",
    "mean_bins",
]

MEAN_METRICS = frozenset({"brier", "log_loss", "mae", "mape", "mse", "pinball", "rmse"})
_OCTAVES = 4096  # sign bit and exponent bits of a float64
_PROBE = 4 * MULTINOMIAL_CELLS  # rows looked at to rule out few distinct values


def is_mean(ref: MetricRef) -> bool:
    """Whether the metric is a mean of per-row values (its square root, for RMSE)."""
    return ref.metric.name in MEAN_METRICS


def maybe_few(values: np.ndarray) -> bool:
    """Whether the values may have few enough distinct values to be resampled exactly as cells.

    A spread sample of them with more distinct values than that rules it out without a sort of
    every row; otherwise the caller counts the distinct values themselves.
    """
    step = max(1, len(values) // _PROBE)
    return len(np.unique(values[::step][:_PROBE])) <= MULTINOMIAL_CELLS


def _octaves(values: np.ndarray) -> np.ndarray:
    """Each value's octave: its sign and exponent bits, 0..4095 (non-negative values: 0..2047, ascending)."""
    codes = np.ascontiguousarray(values, dtype=np.float64).view(np.int64) >> 52
    codes &= _OCTAVES - 1
    return codes


_NO_TAIL = 2047  # the exponent bits of infinity: no finite value is in this octave


def _cut(mean: float) -> int:
    """The first octave above the bulk bin (its exponent bits): ``2 ** (e + 4)``'s, for ``2 ** e <= mean``.

    The bulk ends well past the mean, so that only a tail (about a percent of the rows or
    fewer) is looked at value by value.
    """
    if not 0 < mean < math.inf:
        return _NO_TAIL  # every value is in the bulk
    return min(math.frexp(mean)[1] + 1026, _NO_TAIL)  # frexp: mean = m * 2 ** (e + 1), 0.5 <= m < 1


@dataclass(frozen=True)
class MeanBins:
    """The bins of the per-row values: rows and sum in each (bulk first, then octaves ascending),
    with the row count, the total, and the sum of squared deviations from the mean."""

    n: int
    total: float
    squares: float  # sum over rows of (value - mean) ** 2
    counts: np.ndarray
    sums: np.ndarray

    @property
    def mean(self) -> float:
        """The mean of the values."""
        return self.total / self.n

    @property
    def label(self) -> str:
        """The approximation, as an estimate's note says it."""
        bins = int(np.count_nonzero(self.counts))
        return (
            f"binned bootstrap of the mean ({bins} bin{'s' if bins != 1 else ''} of the per-row values, "
            "the spread within a bin drawn as a normal)"
        )

    def value(self, root: bool) -> float:
        """The metric: the mean, or its square root."""
        return math.sqrt(self.mean) if root else self.mean

    def finite(self) -> bool:
        """Whether every value was finite (else there is no interval)."""
        return math.isfinite(self.total) and math.isfinite(self.squares)

    def draws(self, n_resamples: int, rng: np.random.Generator, root: bool) -> np.ndarray:
        """The metric on ``n_resamples`` bootstrap resamples of the rows."""
        occupied = self.counts > 0
        counts, means = self.counts[occupied], self.sums[occupied] / self.counts[occupied]
        if 4 * len(counts) > self.n:  # too few rows to resample the bins as cells: one bin
            counts, means = np.array([float(self.n)]), np.array([self.mean])
        between = float(counts @ (means - self.mean) ** 2)
        within = max(self.squares - between, 0.0)

        def fn(w: np.ndarray) -> np.ndarray:
            return np.asarray(w @ means) / self.n

        cells = Cells(_no_rows, len(counts), fn, counts.astype(float))
        out = resampled([cells], n_resamples, rng)[0]
        out += math.sqrt(within) / self.n * rng.standard_normal(n_resamples)
        return np.sqrt(np.maximum(out, 0.0)) if root else out


def _no_rows() -> np.ndarray:
    raise RuntimeError("binned means are resampled as cells, never as rows")


def mean_bins(values: np.ndarray) -> MeanBins:
    """The bins of every row's value at once (``score``); ``values`` is overwritten."""
    n = len(values)
    total = float(values.sum())
    mean = total / n
    cut = _cut(mean)
    tail = values[values >= math.ldexp(1.0, cut - 1023)] if cut < _NO_TAIL else values[:0]
    codes = _octaves(tail) - cut
    width = int(codes.max()) + 1 if len(codes) else 0
    counts = np.concatenate([[n - len(tail)], np.bincount(codes, minlength=width)]).astype(float)
    sums = np.concatenate([[0.0], np.bincount(codes, weights=tail, minlength=width)])
    sums[0] = total - sums[1:].sum()
    if not math.isfinite(mean):  # an infinite loss: no spread to speak of, and no interval
        return MeanBins(n, total, math.nan, counts, sums)
    values -= mean
    return MeanBins(n, total, float(values @ values), counts, sums)


class MeanStats:
    """A mean's bins gathered batch by batch: per-octave rows and sums, and the running mean and
    squared deviations (merged as Chan et al.'s parallel variance), merged into ``mean_bins``'s bins."""

    def __init__(self) -> None:
        self.n, self.mean, self.squares = 0, 0.0, 0.0
        self.counts = np.zeros(_OCTAVES, dtype=np.int64)
        self.sums = np.zeros(_OCTAVES)

    def add(self, values: np.ndarray) -> None:
        """Add a batch's per-row values."""
        if len(values) == 0:
            return
        codes = _octaves(values)
        self.counts += np.bincount(codes, minlength=_OCTAVES)
        self.sums += np.bincount(codes, weights=values, minlength=_OCTAVES)
        mean = float(values.mean())
        if not math.isfinite(mean):  # an infinite loss: as in mean_bins, no interval
            self._join(len(values), mean, math.nan)
            return
        deviations = values - mean
        self._join(len(values), mean, float(deviations @ deviations))

    def merge(self, other: MeanStats) -> None:
        """Add another's statistics."""
        self.counts += other.counts
        self.sums += other.sums
        if other.n:
            self._join(other.n, other.mean, other.squares)

    def _join(self, n: int, mean: float, squares: float) -> None:
        total = self.n + n
        delta = mean - self.mean
        self.squares += squares + delta * delta * self.n * n / total
        self.mean += delta * n / total
        self.n = total

    def bins(self, total: float) -> MeanBins:
        """``mean_bins``'s bins of every row added; ``total`` is the values' sum, as summed elsewhere."""
        octave = np.arange(_OCTAVES)
        tail = (octave >= _cut(total / self.n)) & (octave < _NO_TAIL)  # negative values: in the bulk
        occupied = np.flatnonzero(self.counts[tail])
        last = int(occupied[-1]) + 1 if len(occupied) else 0
        counts = np.concatenate([[self.counts[~tail].sum()], self.counts[tail][:last]]).astype(float)
        sums = np.concatenate([[0.0], self.sums[tail][:last]])
        sums[0] = total - sums[1:].sum()
        return MeanBins(self.n, total, self.squares, counts, sums)
