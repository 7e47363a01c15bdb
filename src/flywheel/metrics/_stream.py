"""Out-of-core statistics: the cells ``score`` computes from, gathered batch by batch and merged.

A :class:`Stream` keeps, in memory bounded by the batch and the constants below: the confusion
counts; each class column's distinct scores with negative and positive counts (exact AUC needs
them all), spilled past ``RUN_CAP`` to sorted run files a k-way merge reads back; a per-row
metric's distinct keys and counts while at most ``KEY_CAP``, then its sums (median: spilled runs;
a mean also its bins, ``_means``; R² its bins, ``_r2``, for sums); and the rows ``score`` would
bootstrap (all while few, else its own subsample, by row number).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flywheel.metrics._bootstrap import MULTINOMIAL_CELLS
from flywheel.metrics._cells import CellFn, Cells, unique_rows
from flywheel.metrics._confusion import confusion_counts
from flywheel.metrics._inputs import _show, prepare
from flywheel.metrics._means import MeanBins, MeanStats, is_mean
from flywheel.metrics._median import order_statistics
from flywheel.metrics._r2 import R2Bins, R2Stats
from flywheel.metrics._ranking import auc_from_cells, average_precision_from_cells
from flywheel.metrics._registry import MetricRef
from flywheel.metrics._statistics import ECE_BINS, Prepared, row_keys

__all__ = [
    "KEY_CAP",
    "RUN_CAP",
    "Plan",
    "Runs",
    "Stream",
    "counted",
    "needs_sample",
    "rank_summary",
]

RUN_CAP = 1 << 21  # distinct (score, counts) entries held in memory per class column before a spill
KEY_CAP = 1 << 16  # distinct per-row keys kept exactly; past it a metric keeps its sums
_STEP = 1 << 21  # records the k-way merge holds, over all its run files
_FOLD = 4096  # per-batch partial sums kept before folding them into one
Hist = tuple[np.ndarray, np.ndarray]  # distinct keys (ascending), counts


def merged(parts: list[Hist]) -> Hist:
    """Distinct keys, ascending (2-D keys: rows in lexicographic order), with their summed counts."""
    keys, counts = np.concatenate([k for k, _ in parts]), np.concatenate([c for _, c in parts])
    if len(keys) == 0:
        return keys, counts
    # The parts are sorted runs (a batch's, or merged ones): a stable sort (timsort) merges them.
    order = np.argsort(keys, kind="stable") if keys.ndim == 1 else np.lexsort(keys.T[::-1])
    keys = keys[order]
    starts = _starts(keys)
    if counts.ndim == 1:
        return keys[starts], np.add.reduceat(counts[order], starts)
    # Column by column: reduceat along the rows of a 2-D array is several times slower.
    return keys[starts], np.column_stack([np.add.reduceat(c[order], starts) for c in counts.T])


def _starts(keys: np.ndarray) -> np.ndarray:
    """Where each run of equal sorted keys (rows) starts."""
    differ = keys[1:] != keys[:-1]
    return np.flatnonzero(np.concatenate([[len(keys) > 0], differ if keys.ndim == 1 else differ.any(axis=1)]))


def _ones(keys: np.ndarray) -> Hist:
    """Distinct keys of a batch with their counts (a sort of values: faster than one of indices)."""
    if keys.ndim > 1:
        return merged([(keys, np.ones(len(keys), dtype=np.int64))])
    keys = np.sort(keys)
    starts = _starts(keys)
    return keys[starts], np.diff(np.append(starts, len(keys)))


def _rank_hist(scores: np.ndarray, positive: np.ndarray) -> Hist:
    """A batch's distinct scores with their (negative, positive) counts."""
    keys, total = _ones(scores)
    pos_keys, pos_counts = _ones(scores[positive])
    pos = np.zeros(len(keys), dtype=np.int64)
    pos[np.searchsorted(keys, pos_keys)] = pos_counts
    return keys, np.column_stack([total - pos, pos])


class Runs:
    """Distinct 1-D keys with ``width`` count columns; sorted runs on disk past ``RUN_CAP`` entries."""

    def __init__(self, width: int, *, spill: bool = True) -> None:
        self.width, self.spill = width, spill
        self.parts: list[Hist] = []
        self.held = 0
        self.files: list[Path] = []
        self.folder: Path | None = None
        self.removers: list[weakref.finalize] = []  # each removes a spill folder: at close, or when garbage
        self.dtype = np.dtype([("k", np.float64), ("c", np.int64, (width,))])

    def add(self, keys: np.ndarray, counts: np.ndarray) -> None:
        """Add distinct keys with their counts (a batch's, or another stream's)."""
        if len(keys):
            self.parts.append((keys, counts.reshape(len(keys), self.width)))
            self.held += len(keys)
        if self.held <= RUN_CAP:
            return
        keys, counts = merged(self.parts)
        self.parts, self.held = [(keys, counts)], len(keys)
        if self.spill and len(keys) > RUN_CAP // 2:
            self.files.append(self.spill_path(f"run{len(self.files)}.bin"))
            self._records((keys, counts)).tofile(self.files[-1])
            self.parts, self.held = [], 0

    def spill_path(self, name: str) -> Path:
        """A file in this stream's spill folder (made on first use, removed at close or when garbage)."""
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="flywheel-runs-"))
            self.removers.append(weakref.finalize(self, shutil.rmtree, self.folder, True))
        return self.folder / name

    def _records(self, hist: Hist) -> np.ndarray:
        records = np.empty(len(hist[0]), self.dtype)
        records["k"], records["c"] = hist
        return records

    def merge(self, other: Runs) -> None:
        """Add another's entries (its run files stay where they are)."""
        self.files += other.files
        for remover in other.removers:  # the files are ours now: so is their removal
            if (detached := remover.detach()) is not None:
                self.removers.append(weakref.finalize(self, detached[1], *detached[2]))
        for keys, counts in other.parts:
            self.add(keys, counts)

    def close(self) -> None:
        """Remove the spill files now."""
        for remover in self.removers:
            remover()

    def whole(self) -> Hist | None:
        """Every entry, when none was spilled."""
        if self.files:
            return None
        return merged(self.parts) if self.parts else (np.empty(0), np.empty((0, self.width), dtype=np.int64))

    def chunks(self) -> Iterator[Hist]:
        """Every distinct key once, ascending, in chunks: a k-way merge of the runs by key bounds."""
        step = max(1 << 12, _STEP // (len(self.files) + 1))
        sources = [_read(p, self.dtype, step) for p in self.files]
        if self.parts:
            records = self._records(merged(self.parts))
            sources.append(iter([records[i : i + step] for i in range(0, len(records), step)]))
        heads = [next(s, None) for s in sources]
        while any(h is not None for h in heads):
            # Every entry up to the smallest of the heads' last keys is in the heads: take those.
            bound = min(h["k"][-1] for h in heads if h is not None)
            taken = []
            for i, head in enumerate(heads):
                if head is not None:
                    cut = int(np.searchsorted(head["k"], bound, side="right"))
                    taken.append(head[:cut])
                    heads[i] = head[cut:] if cut < len(head) else next(sources[i], None)
            records = np.concatenate(taken)
            yield merged([(records["k"], records["c"])])


def _read(path: Path, dtype: np.dtype, step: int) -> Iterator[np.ndarray]:
    """A run file's records in chunks, read (not memory-mapped: mapped pages would count as ours)."""
    with path.open("rb") as f:
        while len(records := np.fromfile(f, dtype=dtype, count=step)):
            yield records


def rank_summary(runs: Runs, positives: float, negatives: float, bins: int) -> dict[str, Any]:
    """ROC AUC, average precision, the number ``d`` of distinct scores, and the cells ``score``
    resamples: ``counts`` (distinct scores × negatives, positives; None when spilled) and
    ``coarse``, the counts over ``bins`` bins of the distinct scores' ranks."""
    whole = runs.whole()
    if whole is not None:
        w = whole[1].astype(float)[None]
        auc, ap = float(auc_from_cells(w)[0]), float(average_precision_from_cells(w)[0])
        d, counts = len(whole[0]), whole[1]
        coarse = _coarse(counts, 0, d, bins)
        return {"d": d, "roc_auc": auc, "average_precision": ap, "counts": counts, "coarse": coarse}
    num, neg_seen, pos_seen, d, ap_parts = 0.0, 0.0, 0.0, 0, []
    path = runs.spill_path("counts.bin")
    with path.open("wb") as out:  # the counts in rank order, binned once d is known
        for keys, counts in runs.chunks():
            neg, pos = counts[:, 0].astype(float), counts[:, 1].astype(float)
            neg_below, pos_below = neg_seen + (np.cumsum(neg) - neg), pos_seen + (np.cumsum(pos) - pos)
            num += float((pos * (neg_below + 0.5 * neg)).sum())  # multiples of 0.5: exact below 2**52
            tp, fp = positives - pos_below, negatives - neg_below
            ap_parts.append(float((pos * (tp / (tp + fp))).sum()))
            neg_seen, pos_seen, d = neg_seen + neg.sum(), pos_seen + pos.sum(), d + len(keys)
            np.ascontiguousarray(counts, dtype=np.int64).tofile(out)
    coarse, start = np.zeros((bins, 2)), 0
    for block in _read(path, np.dtype((np.int64, (2,))), 1 << 20):
        coarse += _coarse(block, start, d, bins)
        start += len(block)
    path.unlink()
    auc = num / (positives * negatives) if positives * negatives > 0 else math.nan
    ap = math.fsum(ap_parts) / positives if positives > 0 else math.nan
    return {"d": d, "roc_auc": auc, "average_precision": ap, "counts": None, "coarse": coarse}


def _coarse(counts: np.ndarray, start: int, d: int, bins: int) -> np.ndarray:
    """Counts summed over bins of rank (``score``'s coarsening); ``start`` is the first row's rank."""
    b = (start + np.arange(len(counts))) * bins // max(d, 1)
    return np.column_stack([np.bincount(b, counts[:, c], bins) for c in (0, 1)])


# What each of row_keys's functions of the distinct keys is computed from when the keys are many.
_KIND = {"_mean": "mean", "_root_mean": "mean", "_r2_fn": "r2", "_ece_fn": "ece", "_median_fn": "median"}
_KIND["_max_fn"] = "max"


class Keyed:
    """A per-row metric's statistics: distinct keys while few, else sums (median: runs; max: the max)."""

    def __init__(self, spill: bool) -> None:
        self.make_fn: Callable[[np.ndarray], Any] | None = None
        self.kind, self.held, self.top = "", 0, -math.inf
        self.parts: list[Hist] | None = []
        self.partials: list[np.ndarray] = []
        self.runs = Runs(1, spill=spill)
        self.stats: MeanStats | None = None  # a mean's bins, for its bootstrap (see _means)
        self.r2: R2Stats | None = None  # R²'s (see _r2)

    def add(self, keys: np.ndarray, make_fn: Callable[[np.ndarray], Any]) -> None:
        """Add a batch's per-row keys."""
        self.make_fn, self.kind = make_fn, _KIND[make_fn.__name__]
        kind = self.kind
        hist = _ones(keys) if self.parts is not None or kind == "median" else None
        if self.parts is not None:
            self._keep([hist])  # type: ignore[list-item]
        if kind == "mean":
            self._sum(np.array([keys.sum()]))
            self.stats = self.stats or MeanStats()
            self.stats.add(keys)
        elif kind == "r2":
            self.r2 = self.r2 or R2Stats()
            self.r2.add(keys[:, 0], keys[:, 1])
        elif kind == "ece":
            b = np.minimum((keys[:, 0] * ECE_BINS).astype(np.int64), ECE_BINS - 1)
            self._sum(np.concatenate([np.bincount(b, keys[:, c], ECE_BINS) for c in (0, 1)]))
        elif kind == "max":
            self.top = max(self.top, float(keys.max()))
        else:
            self.runs.add(*hist)  # type: ignore[misc]

    def _keep(self, parts: list[Hist]) -> None:
        if self.parts is None:
            return
        self.parts += parts
        self.held += sum(len(k) for k, _ in parts)
        if self.held > KEY_CAP:
            keys, counts = merged(self.parts)
            self.parts, self.held = ([(keys, counts)], len(keys)) if len(keys) <= KEY_CAP else (None, 0)

    def _sum(self, values: np.ndarray) -> None:
        self.partials.append(values)
        if len(self.partials) > _FOLD:
            self.partials = [self._total()]

    def _total(self) -> np.ndarray:
        return np.array([math.fsum(column) for column in zip(*self.partials, strict=True)])

    def merge(self, other: Keyed) -> None:
        """Add another's statistics."""
        self.make_fn, self.kind = self.make_fn or other.make_fn, self.kind or other.kind
        if other.parts is None:
            self.parts = None
        self._keep(other.parts or [])
        self.partials += other.partials
        self.top = max(self.top, other.top)
        self.runs.merge(other.runs)
        if other.stats is not None:
            self.stats = self.stats or MeanStats()
            self.stats.merge(other.stats)
        if other.r2 is not None:
            self.r2 = self.r2 or R2Stats()
            self.r2.merge(other.r2)

    def mean_bins(self) -> MeanBins:
        """A mean's bins, as ``score`` makes them from all the rows at once."""
        assert self.stats is not None
        return self.stats.bins(float(self._total()[0]))

    def r2_bins(self) -> R2Bins:
        """R²'s bins, as ``score`` makes them from all the rows at once."""
        assert self.r2 is not None
        return self.r2.bins()

    def histogram(self) -> Hist | None:
        """The distinct keys (in ``score``'s order) and their counts, when still kept."""
        if self.parts is None:
            return None
        keys, counts = merged(self.parts)
        distinct, codes = unique_rows(keys)
        return distinct, np.bincount(codes, counts, len(distinct))

    def point(self, n: int) -> float:
        """The metric's value from the sums (the keys being too many to keep)."""
        kind = self.kind
        if kind in ("max", "median"):
            return self.top if kind == "max" else _median(self.runs, n)
        if kind == "r2":
            assert self.r2 is not None
            return self.r2.point()
        s = self._total()
        if kind == "ece":
            return float(np.abs(s[ECE_BINS:] - s[:ECE_BINS]).sum() / n)
        return math.sqrt(s[0] / n) if self.make_fn.__name__ == "_root_mean" else s[0] / n  # type: ignore[union-attr]


def _median(runs: Runs, n: int) -> float:
    """``score``'s median of the keys (the mean of the two middle ones for an even count)."""
    found = order_statistics(runs.chunks, [(n - 1) // 2, n // 2])
    return float(found[0] + found[1]) / 2


def _no_rows() -> np.ndarray:
    raise RuntimeError("out-of-core cells are counts without per-row codes")


def counted(n_cells: int, fn: CellFn, counts: np.ndarray) -> Cells:
    """Cells known by their counts alone (the rows they came from are gone)."""
    return Cells(_no_rows, n_cells, fn, np.asarray(counts, dtype=float).ravel())


def needs_sample(ref: MetricRef, k: int) -> bool:
    """Whether ``score`` may bootstrap this metric on a subsample of rows (not on merged cells)."""
    family, name = ref.metric.family, ref.metric.name
    if is_mean(ref) or name in ("median_ae", "r2"):  # bins of its rows, or its order statistics: they merge
        return False
    return (family in ("proba", "regression") and name != "max_error") or (family == "ranking" and k > 2)


class Sample:
    """The rows ``score`` bootstraps one metric on: its subsample by row number (``wanted``), or,
    when the row count is not known in advance, a uniform one of ``size`` rows (random priorities)."""

    def __init__(self, wanted: np.ndarray | None, size: int, key: list[int]) -> None:
        self.wanted, self.size, self.rng = wanted, size, np.random.default_rng(key)
        self.index, self.priority, self.cut = np.empty(0, dtype=np.int64), np.empty(0), math.inf
        self.payload: tuple[np.ndarray, ...] | None = None

    def take(self, start: int, n: int, arrays: tuple[np.ndarray, ...]) -> None:
        """Keep the wanted rows of a batch whose first row is row ``start``."""
        if self.wanted is not None:
            lo, hi = np.searchsorted(self.wanted, [start, start + n])
            rows, priority = self.wanted[lo:hi] - start, np.zeros(hi - lo)
        else:
            drawn = self.rng.random(n)
            rows = np.flatnonzero(drawn < self.cut)
            priority = drawn[rows]
        self._add(rows + start, priority, tuple(a[rows] for a in arrays))

    def _add(self, index: np.ndarray, priority: np.ndarray, payload: tuple[np.ndarray, ...]) -> None:
        self.index = np.concatenate([self.index, index])
        self.priority = np.concatenate([self.priority, priority])
        old = self.payload
        self.payload = (
            payload if old is None else tuple(np.concatenate(p) for p in zip(old, payload, strict=True))
        )
        if self.wanted is None and len(self.index) > self.size:
            keep = np.sort(np.argpartition(self.priority, self.size - 1)[: self.size])
            self.index, self.priority = self.index[keep], self.priority[keep]
            self.payload = tuple(p[keep] for p in self.payload)
            self.cut = float(self.priority.max())

    def merge(self, other: Sample) -> None:
        """Add the rows another kept (rows after this one's)."""
        if other.payload is not None:
            self._add(other.index, other.priority, other.payload)


@dataclass(frozen=True)
class Plan:
    """What every stream of one scoring shares: metrics, classes, and which rows to keep."""

    refs: list[MetricRef]
    classes: np.ndarray | None
    keep_rows: int  # up to this many rows, the rows themselves are kept
    wanted: dict[int, np.ndarray | None]  # by metric index: score()'s subsample (None: unknown)
    sample_size: int
    seed: int


class Stream:
    """What ``score`` needs from rows seen batch by batch; a stream over the rows right after
    another's merges into it (``merge``), so Dask partitions or files can be gathered apart."""

    def __init__(self, plan: Plan, start: int = 0, *, spill: bool = True) -> None:
        self.plan, self.refs, self.classes = plan, plan.refs, plan.classes
        self.names = [r.name for r in plan.refs]
        self.start, self.n = start, 0
        self.buffer: list[tuple[Any, ...]] | None = []  # the rows themselves, while few
        k = 0 if plan.classes is None else len(plan.classes)
        self.class_counts = np.zeros(k, dtype=np.int64)
        self.confusion: np.ndarray | None = None
        ranking = any(r.metric.family == "ranking" for r in plan.refs)
        self.ranks = {j: Runs(2, spill=spill) for j in ([1] if k == 2 else range(k))} if ranking else {}
        # Multiclass ranking: the distinct (label, scores) rows while few enough to be score()'s cells.
        self.joint: list[Hist] | None = [] if ranking and k > 2 else None
        families = ("proba", "regression")
        self.keyed = {i: Keyed(spill) for i, r in enumerate(plan.refs) if r.metric.family in families}
        self.samples = {i: Sample(w, plan.sample_size, [plan.seed, i + 1, 1]) for i, w in plan.wanted.items()}
        self.forms: set[bool] = set()  # one-column binary scores: batches within [0, 1], batches outside
        self.derived = False  # predictions taken from the scores

    def update(self, y_true: Any, y_pred: Any = None, y_score: Any = None) -> None:
        """Add a batch of rows (the arguments of ``score``)."""
        if len(y_true) == 0:
            return
        p, _ = prepare(y_true, y_pred, y_score, self.names, self.classes, partial=True)
        if self.buffer is not None and self.n + p.n <= self.plan.keep_rows:
            self.buffer.append(tuple(None if a is None else np.array(a) for a in (y_true, y_pred, y_score)))
        else:
            self.buffer = None
        start = self.start + self.n
        self.n += p.n
        if p.task == "classification":
            self._classification(p, y_pred is None, y_score)
        for i, keyed in self.keyed.items():
            keys, make_fn = row_keys(self.refs[i], p)
            keyed.add(keys, make_fn)
            if i in self.samples:
                self.samples[i].take(start, p.n, (keys,))
        for i, sample in self.samples.items():
            if i not in self.keyed:
                sample.take(start, p.n, (p.true, p.proba))  # type: ignore[arg-type]

    def _classification(self, p: Prepared, derived: bool, y_score: Any) -> None:
        assert p.true is not None and p.pred is not None
        if any(r.metric.family == "confusion" for r in self.refs):
            counted = confusion_counts(p.true, p.pred, p.k, check="unchecked" in p.cache)
            if counted is None:
                p.cache["unchecked"]()  # raises the one-line error naming the label
            self.confusion = counted if self.confusion is None else self.confusion + counted
        self.class_counts += np.bincount(p.true, minlength=p.k)
        if y_score is not None and np.ndim(y_score) == 1:
            self.forms.add(bool(np.min(y_score) >= 0 and np.max(y_score) <= 1))
        self.derived |= derived
        for j, runs in self.ranks.items():
            assert p.proba is not None
            keys, counts = _rank_hist(p.proba[:, j], p.true == j)
            runs.add(keys, counts)
            if len(keys) > MULTINOMIAL_CELLS:  # so many distinct scores: more joint cells than that
                self.joint = None
        if self.joint is not None:
            self._joint([_ones(np.column_stack([p.true, p.proba]))])  # type: ignore[list-item]

    def _joint(self, parts: list[Hist] | None) -> None:
        if self.joint is None or parts is None:
            self.joint = None
            return
        rows, counts = merged(self.joint + parts)
        self.joint = [(rows, counts)] if len(rows) <= MULTINOMIAL_CELLS else None

    def merge(self, other: Stream) -> Stream:
        """Add the statistics of a stream over the rows right after this one's; returns self."""
        if other.start != self.start + self.n:
            raise ValueError(
                f"streams merge in row order: expected row {self.start + self.n}; got {other.start}"
            )
        fits = (
            self.buffer is not None and other.buffer is not None and self.n + other.n <= self.plan.keep_rows
        )
        self.buffer = self.buffer + other.buffer if fits else None  # type: ignore[operator]
        self.n += other.n
        self.class_counts += other.class_counts
        if other.confusion is not None:
            self.confusion = other.confusion if self.confusion is None else self.confusion + other.confusion
        for j, runs in self.ranks.items():
            runs.merge(other.ranks[j])
        if self.joint is not None:
            self._joint(other.joint)
        for i, keyed in self.keyed.items():
            keyed.merge(other.keyed[i])
        for i, sample in self.samples.items():
            sample.merge(other.samples[i])
        self.forms |= other.forms
        self.derived |= other.derived
        return self

    def rows(self) -> tuple[Any, Any, Any]:
        """The rows kept (all of them, while few): y_true, y_pred and y_score, joined."""
        columns = [[row[c] for row in self.buffer or []] for c in range(3)]
        return tuple(None if part[0] is None else np.concatenate(part) for part in columns)  # type: ignore[return-value]

    def check_whole(self) -> None:
        """The checks ``score`` makes on all the rows, that no batch alone can make."""
        present = self.class_counts
        for ref in self.refs:
            if ref.metric.family == "ranking" and len(present) == 2 and present.min() == 0:
                only = _show(self.classes[int(np.argmax(present))])  # type: ignore[index]
                raise ValueError(f"{ref.name} needs both classes in y_true; got only {only}")
            if ref.metric.family == "ranking" and (present == 0).any():
                missing = _show(self.classes[present == 0][0])  # type: ignore[index]
                raise ValueError(
                    f"{ref.name} (one-vs-rest) needs every class in y_true; class {missing} has no rows"
                )
        if len(self.forms) == 2 and self.derived and any(r.metric.family == "confusion" for r in self.refs):
            raise ValueError(
                "y_score is one column of probabilities in some batches and of other scores in others, so "
                "labels taken from it would depend on the batches; give y_pred (the predicted labels)"
            )

    def close(self) -> None:
        """Remove the spill files now (they would go with the stream anyway)."""
        for runs in [*self.ranks.values(), *(k.runs for k in self.keyed.values())]:
            runs.close()
