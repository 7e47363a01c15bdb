"""Out-of-core scoring: ``score`` over a Parquet data set, a Dask DataFrame or any stream of batches.

The rows are read in record batches of at most ``batch_rows`` rows, each reduced to the
statistics of :mod:`flywheel.metrics._stream`, and the estimates are computed from them the way
``score`` computes them from all the rows at once. On data that fits in memory the result equals
``score``'s:

- point values: exactly, except means of per-row values over more than ``KEY_CAP`` distinct values
  (log loss, Brier, MAE, MSE, RMSE, MAPE, pinball, R², ECE on continuous data) and average
  precision over spilled scores, which sum in another order (within about 1e-15 relative);
- intervals: the same resamples (label metrics: multinomial draws of the confusion cells; ranking
  metrics: of the exact or binned score cells; means of per-row values and R²: of their distinct
  values, or of the same bins of their rows; the median absolute error: of its distinct values, or
  the same order statistics, taken from the sorted runs; ECE: of its distinct values, or ``score``'s
  own subsample of ``max_rows`` rows, picked by row number), so the same interval up to the last
  bits of the point. Two cases are approximated and say so in the estimate's note: more
  than 45 classes (``score`` resamples rows there; here the cells, with the same distribution), and
  a stream of unknown length (a uniform subsample instead of ``score``'s).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from flywheel.metrics._bootstrap import (
    DEFAULT_MAX_ROWS,
    MULTINOMIAL_CELLS,
    RANKING_BINS,
    ResamplePlan,
    bootstrap_interval,
    compressed,
    interval_note,
    jackknife_accelerations,
    resampled,
)
from flywheel.metrics._cells import Cells, unique_rows
from flywheel.metrics._confusion import label_metric, label_metrics
from flywheel.metrics._engine import (
    Estimate,
    Method,
    Scores,
    _estimate_group,
    _uncollapsed,
    binned_mean,
    binned_r2,
    exact_median,
    score,
)
from flywheel.metrics._inputs import _infer_task, _known_classes, _resolve_metrics, _unique_sorted
from flywheel.metrics._means import is_mean
from flywheel.metrics._median import order_statistics
from flywheel.metrics._ranking import auc_from_cells, average_precision_from_cells
from flywheel.metrics._registry import MetricRef
from flywheel.metrics._statistics import Prepared, build_cells, confusion_spec
from flywheel.metrics._stream import Plan, Stream, counted, needs_sample, rank_summary

__all__ = [
    "score_batches",
    "score_dataset",
]

_WAVE = 8  # Dask partitions computed at a time: their statistics are merged as they arrive


@dataclass(frozen=True)
class _Options:
    """``score``'s options, checked once."""

    confidence: float
    n_resamples: int
    seed: int
    method: Method
    max_rows: int
    batch_rows: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must lie in (0, 1); got {self.confidence}")
        if self.n_resamples < 0:
            raise ValueError(f"n_resamples must be >= 0; got {self.n_resamples}")
        if self.method not in ("bca", "percentile"):
            raise ValueError(f"method must be 'bca' or 'percentile'; got {self.method!r}")
        for name in ("max_rows", "batch_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")


def _refs(metrics: Sequence[str]) -> tuple[list[MetricRef], str]:
    if isinstance(metrics, str) or not metrics:
        raise ValueError(f"metrics must be a non-empty list of metric names; got {metrics!r}")
    refs = _resolve_metrics(list(metrics))
    return refs, _infer_task(refs, np.empty(0))


def _plan(refs: list[MetricRef], task: str, classes: Any, n_rows: int | None, o: _Options) -> Plan:
    cls = None
    if task == "classification":
        if classes is None:
            raise ValueError("classes is required for classification metrics; got None")
        cls = _known_classes(np.empty(0), classes)[0]
    # Up to this many rows score()'s resampling may need the rows themselves: they are kept.
    keep_rows = max(o.max_rows, 4 * MULTINOMIAL_CELLS)
    wanted: dict[int, np.ndarray | None] = {}
    for i, ref in enumerate(refs):
        if o.n_resamples > 0 and needs_sample(ref, 0 if cls is None else len(cls)):
            wanted[i] = None if n_rows is None else np.empty(0, dtype=np.int64)
            if n_rows is not None and n_rows > keep_rows:  # score()'s own subsample, as it will draw it
                rng = np.random.default_rng([o.seed, i + 1])
                wanted[i] = np.sort(rng.choice(n_rows, size=o.max_rows, replace=False))
    return Plan(refs, cls, keep_rows, wanted, o.max_rows, o.seed)


def score_batches(
    batches: Iterable[Sequence[Any]],
    metrics: Sequence[str],
    *,
    classes: Any = None,
    n_rows: int | None = None,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    method: Method = "bca",
    max_rows: int = DEFAULT_MAX_ROWS,
) -> Scores:
    """``score`` over rows that arrive in batches, in memory bounded by the batch.

    Parameters
    ----------
    batches
        ``(y_true, y_pred, y_score)`` tuples (``y_pred``, ``y_score`` may be None or left out),
        each as ``score`` takes them; read once.
    metrics
        Metric names from the registry.
    classes
        Every class label (required for classification: a batch may lack some).
    n_rows
        The number of rows the batches hold, when known. With it, ECE over many distinct values
        and multiclass ranking metrics are bootstrapped on ``score``'s own subsample; without it,
        on a uniform subsample of as many rows, as their note says.
    confidence, n_resamples, seed, method, max_rows
        As for :func:`flywheel.metrics.score`.

    Returns
    -------
    Scores
        What ``score`` returns on all the rows at once (see this module's notes on exactness).

    Examples
    --------
    >>> batches = [([0, 1, 1], [0, 1, 0]), ([1, 0], [1, 0])]
    >>> score_batches(batches, ["accuracy"], classes=[0, 1], n_resamples=0)["accuracy"].value
    0.8
    """
    options = _Options(confidence, n_resamples, seed, method, max_rows)
    refs, task = _refs(metrics)
    stream = Stream(_plan(refs, task, classes, n_rows, options))
    for batch in batches:
        stream.update(*(*batch, None, None)[:3])
    if n_rows is not None and n_rows != stream.n:
        raise ValueError(f"n_rows is {n_rows} but the batches hold {stream.n} rows; they must match")
    return estimates(stream, options)


def estimates(stream: Stream, o: _Options) -> Scores:
    """The estimates ``score`` gives on the rows a stream has seen (its spill files then removed)."""
    try:
        return _estimates(stream, o)
    finally:
        stream.close()


def _estimates(stream: Stream, o: _Options) -> Scores:
    if stream.n == 0:
        raise ValueError("the data hold no rows; need at least one")
    if stream.buffer is not None:  # few rows: they were kept, and score() itself scores them
        y_true, y_pred, y_score = stream.rows()
        kwargs = {k: v for k, v in asdict(o).items() if k != "batch_rows"}
        return score(y_true, y_pred, y_score, stream.names, classes=stream.classes, **kwargs)
    stream.check_whole()
    p = Prepared("regression" if stream.classes is None else "classification", stream.n, stream.classes)
    out: dict[str, Estimate] = {}
    label_refs = [r for r in stream.refs if r.metric.family == "confusion"]
    if label_refs and o.n_resamples > 0:
        out.update((e.name, e) for e in _label_group(stream, label_refs, p, o))
    summaries: _Summaries = {}
    for i, ref in enumerate(stream.refs):
        if ref.name not in out:
            out[ref.name] = _one(stream, i, ref, p, _cells(stream, i, ref, p, summaries), o)
    return Scores({r.name: _uncollapsed(out[r.name]) for r in stream.refs})


def _label_group(stream: Stream, refs: list[MetricRef], p: Prepared, o: _Options) -> list[Estimate]:
    """Label metrics share one multinomial draw of the confusion cells, as in ``score``."""
    assert stream.confusion is not None
    k = p.k
    specs = [confusion_spec(r, p) for r in refs]

    def multi(w: np.ndarray) -> np.ndarray:
        return label_metrics(specs, w.reshape(-1, k, k))

    fns = [lambda w, s=s: label_metric(s[0], w.reshape(-1, k, k), s[1]) for s in specs]
    group = [counted(k * k, fn, stream.confusion) for fn in fns]
    rng = np.random.default_rng([o.seed, 0])
    if compressed(group[0], p.n):
        return _estimate_group(refs, group, p, o.confidence, o.n_resamples, rng, o.method, multi)
    # Over 45 classes score() resamples rows, gone out of core: multinomial cell draws, same distribution.
    counts = group[0].counts()
    block = max(1, min(o.n_resamples, (1 << 22) // (k * k)))
    sizes = [min(block, o.n_resamples - start) for start in range(0, o.n_resamples, block)]
    draws = np.hstack([multi(rng.multinomial(p.n, counts / p.n, size=b).astype(float)) for b in sizes])
    accels = jackknife_accelerations(group, multi) if o.method == "bca" else [None] * len(refs)
    note = f"resampled as multinomial draws of the {k * k} confusion cells (score() resamples rows)"
    out = []
    for ref, point, row, accel in zip(refs, multi(counts[None, :])[:, 0], draws, accels, strict=True):
        low, high, used = bootstrap_interval(float(point), row, o.confidence, accel)
        note_ = interval_note(p.n, low, high, note)
        out.append(Estimate(ref.name, float(point), low, high, p.n, o.confidence, used, note_))
    return out


_Found = tuple[Cells | None, float, Cells | None]  # score()'s few cells (or None), the value, binned cells
_Summaries = dict[int, dict[str, Any]]  # rank_summary by class column


def _cells(stream: Stream, i: int, ref: MetricRef, p: Prepared, summaries: _Summaries) -> _Found:
    """A metric's cells when few enough to be ``score``'s, its value, and binary ranking's binned cells."""
    family = ref.metric.family
    if family == "confusion":
        assert stream.confusion is not None
        name, index = confusion_spec(ref, p)
        k = p.k
        full = counted(k * k, lambda w: label_metric(name, w.reshape(-1, k, k), index), stream.confusion)
        return full, full.value(), None
    if family == "ranking":
        return _ranking_cells(stream, ref, p, summaries)
    keyed = stream.keyed[i]
    hist = keyed.histogram()
    if hist is None:
        return None, keyed.point(p.n), None
    assert keyed.make_fn is not None
    full = counted(len(hist[0]), keyed.make_fn(hist[0]), hist[1])
    return full, full.value(), None


def _ranking_cells(stream: Stream, ref: MetricRef, p: Prepared, summaries: _Summaries) -> _Found:
    name = ref.metric.name
    from_cells = auc_from_cells if name == "roc_auc" else average_precision_from_cells
    if p.k > 2 and stream.joint is not None:  # few distinct rows: score()'s joint cells, from them
        rows, counts = stream.joint[0]
        true = rows[:, 0].astype(np.int64)
        cells = build_cells(ref, Prepared("classification", len(rows), p.classes, true, None, rows[:, 1:]))
        full = Cells(cells.codes, cells.n_cells, cells.fn, np.bincount(cells.codes, counts, cells.n_cells))
        return full, full.value(), None
    for j in stream.ranks:
        if j not in summaries:
            positives = float(stream.class_counts[j])
            summaries[j] = rank_summary(stream.ranks[j], positives, stream.n - positives, RANKING_BINS)
    if p.k > 2:  # the mean over classes, taken as score() takes it
        values = np.stack([np.array([summaries[j][name]]) for j in range(p.k)])
        return None, float(np.mean(values, axis=0)[0]), None
    summary, d = summaries[1], summaries[1]["d"]
    if summary["counts"] is not None and 2 * d <= MULTINOMIAL_CELLS:
        full = counted(2 * d, lambda w: from_cells(w.reshape(-1, d, 2)), summary["counts"])
        return full, full.value(), None
    bins = RANKING_BINS
    coarse = counted(2 * bins, lambda w: from_cells(w.reshape(-1, bins, 2)), summary["coarse"])
    return None, float(summary[name]), coarse


def _one(stream: Stream, i: int, ref: MetricRef, p: Prepared, found: _Found, o: _Options) -> Estimate:
    """One metric's estimate, along ``score``'s path for it (``_engine._estimate_one``)."""
    full, point, coarse = found
    if ref.metric.name == "max_error":
        note = "bootstrap intervals are not valid for a maximum"
        return Estimate(ref.name, point, None, None, p.n, o.confidence, "none", note)
    if o.n_resamples == 0:
        return Estimate(ref.name, point, None, None, p.n, o.confidence, "none")
    rng = np.random.default_rng([o.seed, i + 1])
    if full is not None and compressed(full, p.n):
        return _estimate_group([ref], [full], p, o.confidence, o.n_resamples, rng, o.method)[0]
    if is_mean(ref):  # score()'s bins of the values, merged batch by batch
        return binned_mean(ref, stream.keyed[i].mean_bins(), o.confidence, o.n_resamples, rng)
    if ref.metric.name == "r2":  # score()'s bins of the squared errors and targets, merged likewise
        return binned_r2(ref, stream.keyed[i].r2_bins(), o.confidence, o.n_resamples, rng)
    if ref.metric.name == "median_ae":  # score()'s order statistics, from the sorted runs
        order = partial(order_statistics, stream.keyed[i].runs.chunks)
        return exact_median(ref, p.n, order, o.confidence, o.n_resamples)
    if coarse is not None:
        plan = ResamplePlan(coarse, coarse.value(), 1.0, False, f"resampled on {RANKING_BINS} score bins")
    else:
        plan = _subsample(stream, i, ref, p, rng)
    draws = point + plan.scale * (resampled([plan.cells], o.n_resamples, rng)[0] - plan.center)
    low, high, used = bootstrap_interval(point, draws, o.confidence, None)
    caveat = interval_note(p.n, low, high, plan.label)
    return Estimate(ref.name, point, low, high, p.n, o.confidence, used, caveat)


def _subsample(stream: Stream, i: int, ref: MetricRef, p: Prepared, rng: np.random.Generator) -> ResamplePlan:
    """``score``'s m-out-of-n plan, on the rows the stream kept for this metric."""
    sample = stream.samples[i]
    rows = np.sort(rng.choice(p.n, size=sample.size, replace=False))  # as score() draws it (moving rng on)
    assert sample.payload is not None
    if ref.metric.family == "ranking":
        true, proba = sample.payload
        cells = build_cells(ref, Prepared("classification", len(true), p.classes, true, None, proba))
    else:
        make_fn = stream.keyed[i].make_fn
        assert make_fn is not None
        distinct, codes = unique_rows(sample.payload[0])
        cells = Cells(codes, len(distinct), make_fn(distinct))
    label = f"m-out-of-n bootstrap on {sample.size} of {p.n} rows"
    if not np.array_equal(sample.index, rows):
        label += " (a uniform subsample, not score()'s: the row count was not known in advance)"
    return ResamplePlan(cells, cells.value(), math.sqrt(sample.size / p.n), False, label)


@dataclass(frozen=True)
class _Columns:
    """Which columns hold the labels, the predictions and the scores."""

    label: str
    prediction: str | None
    scores: tuple[str, ...]

    @property
    def roles(self) -> list[tuple[str, str]]:
        """(role, column) of every column to read."""
        pairs = [("label", self.label)] + ([("prediction", self.prediction)] if self.prediction else [])
        return pairs + [("scores", s) for s in self.scores]

    @property
    def names(self) -> list[str]:
        """Every column to read, each once."""
        return list(dict.fromkeys(c for _, c in self.roles))

    def check(self, present: Sequence[str], where: str) -> None:
        """One line naming a column that is not there, and those that are."""
        for role, column in self.roles:
            if column not in present:
                shown = ", ".join(map(str, list(present)[:20])) or "none"
                raise ValueError(f"{role}: no column {column!r} in {where}; its columns are {shown}")

    def update(self, stream: Stream, table: Any, where: str) -> None:
        """Add a pyarrow record batch or a pandas DataFrame; an error names the column, not the argument."""
        try:
            first = stream.start + stream.n
            y_pred = None if self.prediction is None else _values(table, self.prediction, first)
            y_score = _scores([_values(table, s, first) for s in self.scores])
            stream.update(_values(table, self.label, first), y_pred, y_score)
        except ValueError as exc:
            message = str(exc).replace("y_true", f"label column {self.label!r}")
            message = message.replace("y_pred", f"prediction column {self.prediction!r}")
            message = message.replace("y_score", "score columns " + ", ".join(map(repr, self.scores)))
            raise ValueError(f"{where}: {message}") from None


def _scores(columns: list[np.ndarray]) -> np.ndarray | None:
    return None if not columns else columns[0] if len(columns) == 1 else np.column_stack(columns)


def _values(table: Any, column: str, first: int) -> np.ndarray:
    arrow = hasattr(table, "schema")
    values = table.column(column) if arrow else table[column]
    if missing := values.null_count if arrow else int(values.isna().sum()):
        rows = f"rows {first:,}–{first + len(values) - 1:,}"
        raise ValueError(f"column {column!r} has {missing} missing values in {rows}; every row needs one")
    return values.to_numpy(zero_copy_only=False) if arrow else values.to_numpy()


def score_dataset(
    source: Any,
    *,
    label: str,
    metrics: Sequence[str],
    prediction: str | None = None,
    scores: str | Sequence[str] | None = None,
    classes: Any = None,
    batch_rows: int = 1_000_000,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    method: Method = "bca",
    max_rows: int = DEFAULT_MAX_ROWS,
) -> Scores:
    """``score`` over a Parquet data set larger than memory, read in batches of ``batch_rows`` rows.

    Parameters
    ----------
    source
        A Parquet file, a folder of them, a ``pyarrow.dataset.Dataset``, or a Dask DataFrame (its
        partitions reduced where they lie, a few at a time, their statistics merged here).
    label, prediction, scores
        Column names: true labels (or values), predicted labels (or values), and class scores:
        one column, the positive class's, for a binary task, else one per class, in the sorted
        order of the classes.
    metrics
        Metric names from the registry.
    classes
        Every class label. When not given for classification, a first pass reads the label
        column alone and takes the labels in it (as ``score`` takes them from ``y_true``).
    batch_rows
        The most rows read at a time. Memory holds a batch, bounded statistics (ranking metrics
        spill distinct scores to temporary files) and at most ``max(max_rows, 8192)`` rows.
    confidence, n_resamples, seed, method, max_rows
        As for :func:`flywheel.metrics.score`.

    Returns
    -------
    Scores
        What ``score`` returns on all the rows at once (see this module's notes on exactness).

    Raises
    ------
    ValueError
        One line, naming what was given and what is allowed (a missing file or column, a label
        outside ``classes``, a missing value).
    """
    options = _Options(confidence, n_resamples, seed, method, max_rows, batch_rows)
    refs, task = _refs(metrics)
    columns = _Columns(label, prediction, (scores,) if isinstance(scores, str) else tuple(scores or ()))
    if type(source).__module__.partition(".")[0] in ("dask", "dask_expr") and hasattr(source, "to_delayed"):
        return _score_dask(source, refs, task, columns, classes, options)
    dataset, where = _open(source)
    columns.check(dataset.schema.names, where)
    if (n_rows := dataset.count_rows()) == 0:
        raise ValueError(f"{where} holds no rows; need at least one")
    if task == "classification" and classes is None:
        classes = _infer_classes(_scan(dataset, [label], batch_rows), label, where)
    stream = Stream(_plan(refs, task, classes, n_rows, options))
    for batch in _scan(dataset, columns.names, batch_rows):
        columns.update(stream, batch, where)
    return estimates(stream, options)


def _open(source: Any) -> tuple[Any, str]:
    import pyarrow as pa
    import pyarrow.dataset as pads

    if isinstance(source, pads.Dataset):
        return source, "the dataset"
    if not isinstance(source, str | Path):
        kinds = "a Parquet file or folder, a pyarrow dataset or a Dask DataFrame"
        raise ValueError(f"source must be {kinds}; got {type(source).__name__}")
    path = Path(source)
    if not path.exists():
        raise ValueError(f"source: no such file or folder {str(path)!r}; give a Parquet file or a folder")
    try:
        return pads.dataset(path, format="parquet"), str(path)
    except (pa.ArrowInvalid, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"source: {str(path)!r} is not a Parquet data set ({reason})") from None


def _scan(dataset: Any, columns: list[str], batch_rows: int) -> Iterator[Any]:
    """Record batches of at most ``batch_rows`` rows: file by file, a row group at a time, where it
    can (the dataset scanner reads further ahead than asked: hundreds of MB for a slow reader)."""
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    keys = [] if getattr(dataset, "partitioning", None) is None else dataset.partitioning.schema.names
    if not isinstance(dataset, pads.FileSystemDataset) or set(columns) & set(keys):  # not all in the files
        yield from dataset.to_batches(columns=columns, batch_size=batch_rows, use_threads=False)
        return
    for path in dataset.files:
        with pq.ParquetFile(dataset.filesystem.open_input_file(path)) as file:
            yield from file.iter_batches(batch_size=batch_rows, columns=columns)


def _infer_classes(batches: Iterable[Any], label: str, where: str) -> np.ndarray:
    """The distinct labels of the label column (the first pass, reading that column alone)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    seen, missing = [], 0
    for batch in batches:
        seen.append(pc.unique(batch.column(0)))
        missing += batch.column(0).null_count
    if missing:
        raise ValueError(f"column {label!r} has {missing} missing values in {where}; every row needs one")
    return _unique_sorted(np.asarray(pc.unique(pa.chunked_array(seen)).to_numpy(zero_copy_only=False)))


def _score_dask(
    frame: Any, refs: list[MetricRef], task: str, columns: _Columns, classes: Any, o: _Options
) -> Scores:
    """Each partition reduced to a stream where it lies, ``_WAVE`` at a time, merged here in order."""
    import dask

    columns.check(list(frame.columns), "the Dask DataFrame")
    if task == "classification" and classes is None:
        classes = _unique_sorted(np.asarray(frame[columns.label].drop_duplicates().compute()))
    starts = np.cumsum([0, *frame.map_partitions(len).compute()]).tolist()
    plan = _plan(refs, task, classes, starts[-1], o)
    stream = Stream(plan)
    parts = frame[columns.names].to_delayed()
    for first in range(0, len(parts), _WAVE):
        wave = range(first, min(first + _WAVE, len(parts)))
        tasks = [dask.delayed(_partition)(parts[i], starts[i], plan, columns, o.batch_rows) for i in wave]
        for part in dask.compute(*tasks):
            stream.merge(part)
    return estimates(stream, o)


def _partition(frame: Any, start: int, plan: Plan, columns: _Columns, batch_rows: int) -> Stream:
    """A Dask partition's stream (in memory, not spilled: it travels back to be merged)."""
    stream = Stream(plan, start, spill=False)
    for lo in range(0, len(frame), batch_rows):
        columns.update(stream, frame.iloc[lo : lo + batch_rows], "the Dask DataFrame")
    return stream
