"""Rows collapsed into cells: the one representation every metric is computed from.

A metric here is a function of *cell weights*. Rows that no metric can tell
apart (same truth and prediction for a label metric; same distinct score and
label for AUC; same values for a mean of per-row losses) share a cell, and
the metric only sees how much weight each cell carries. Then:

- the point estimate is the metric of the cell counts;
- a bootstrap resample of rows is a multinomial draw of cell weights, so
  resampling costs nothing per row when cells are few (confusion counts:
  K², whatever the number of rows);
- two models scored on the same rows share their resamples by resampling the
  joint cells and aggregating them to each model's cells;
- accumulators merge by adding cell counts.

Hand-written rather than borrowed: no library computes metrics from weighted
cells, and doing so is what makes exact metrics with intervals cost about one
pass over the data (see DESIGN.md, "the metric engine is such a case").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

__all__ = [
    "Cells",
    "joint_cells",
    "unique_rows",
]

# fn maps cell weights of shape (B, C) to metric values of shape (B,).
CellFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class Cells:
    """Each row's cell code, the number of cells, and the metric as a function of cell weights.

    ``source`` is the codes array, or a function that makes it: when the counts
    were collected otherwise (in one chunked pass), the per-row codes are only
    built if a row-level resample or a joint comparison needs them.
    """

    source: np.ndarray | Callable[[], np.ndarray]
    n_cells: int
    fn: CellFn
    cell_counts: np.ndarray | None = None  # rows per cell, when already counted

    def __post_init__(self) -> None:
        if self.cell_counts is None:
            counted = np.bincount(self.codes, minlength=self.n_cells).astype(float)
            object.__setattr__(self, "cell_counts", counted)

    @property
    def codes(self) -> np.ndarray:
        """Each row's cell code."""
        if callable(self.source):
            object.__setattr__(self, "source", self.source())
        assert isinstance(self.source, np.ndarray)
        return self.source

    def counts(self) -> np.ndarray:
        """Rows per cell."""
        assert self.cell_counts is not None
        return self.cell_counts

    def with_fn(self, fn: CellFn) -> Cells:
        """The same cells (codes and counts shared) with another metric function."""
        return Cells(self.source, self.n_cells, fn, self.cell_counts)

    def value(self) -> float:
        """The metric on the observed rows."""
        return float(self.fn(self.counts()[None, :])[0])


def unique_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows, code of each row): identical rows share a cell."""
    if values.ndim == 1:
        distinct, codes = np.unique(values, return_inverse=True)
        return distinct, codes.astype(np.int64)
    distinct, codes = np.unique(values, axis=0, return_inverse=True)
    return distinct, codes.reshape(-1).astype(np.int64)


def _aggregator(joint_to_part: np.ndarray, n_part: int) -> sparse.csr_matrix:
    ones = np.ones(len(joint_to_part))
    return sparse.csr_matrix(
        (ones, (np.arange(len(joint_to_part)), joint_to_part)), shape=(len(joint_to_part), n_part)
    )


def joint_cells(parts: list[Cells], combine: Callable[[list[np.ndarray]], np.ndarray]) -> Cells:
    """Cells over several statistics of the same rows (e.g. model A and model B).

    Each joint cell maps to one cell of each part; a joint weight vector is
    aggregated to each part's cells, each part's metric is computed, and
    ``combine`` turns the per-part values into one (e.g. their difference).
    """
    stacked = np.stack([p.codes for p in parts], axis=1)
    distinct, codes = unique_rows(stacked)
    aggregators = [_aggregator(distinct[:, i], p.n_cells) for i, p in enumerate(parts)]

    def fn(w: np.ndarray) -> np.ndarray:
        return combine([p.fn(np.asarray(w @ agg)) for p, agg in zip(parts, aggregators, strict=True)])

    return Cells(codes, len(distinct), fn)
