"""``score`` and ``compare``: exact metrics with bootstrap intervals and paired differences.

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
- more rows than ``max_rows``: bootstrap a random subsample of ``max_rows``
  rows and shrink the deviations by sqrt(m/n) (the m-out-of-n bootstrap,
  valid for the smooth statistics used here), centred on the exact estimate.

Intervals are percentile intervals; BCa (bias-corrected and accelerated) is
used where its jackknife is cheap: exact cell resampling over few cells, where
the jackknife has one value per cell.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from flywheel.metrics._cells import CellFn, Cells, joint_cells
from flywheel.metrics._confusion import label_metrics
from flywheel.metrics._registry import METRICS, MetricRef, parse_metric
from flywheel.metrics._statistics import Prepared, build_cells, confusion_spec

__all__ = [
    "Comparison",
    "Estimate",
    "MULTINOMIAL_CELLS",
    "Scores",
    "compare",
    "prepare",
    "score",
]

MULTINOMIAL_CELLS = 2048
RANKING_BINS = 512
JACKKNIFE_CELLS = 1024
DEFAULT_MAX_ROWS = 100_000
SMALL_N = 30
_BLOCK_ELEMENTS = 1 << 22  # resample rows in blocks of at most this many indices (32 MB)
Method = Literal["bca", "percentile"]


@dataclass(frozen=True)
class Estimate:
    """A metric's value on the rows given, with its bootstrap interval."""

    name: str
    value: float
    low: float | None
    high: float | None
    n: int
    confidence: float
    method: str
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "confidence": self.confidence,
            "method": self.method,
            "note": self.note,
        }


@dataclass(frozen=True)
class Scores(Mapping[str, Estimate]):
    """Estimates by metric name, in the order asked for."""

    estimates: dict[str, Estimate] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Estimate:
        return self.estimates[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.estimates)

    def __len__(self) -> int:
        return len(self.estimates)

    def values_only(self) -> dict[str, float]:
        """Point values by name."""
        return {k: e.value for k, e in self.estimates.items()}


@dataclass(frozen=True)
class Comparison:
    """Model A against model B on the same rows, for one metric.

    ``difference`` is A - B in the metric's units; ``improvement`` is the same
    difference oriented so that positive means A is better (it is B - A for a
    lower-is-better metric). ``low``/``high`` bound the improvement; ``margin``
    is in improvement units: positive asks for superiority by at least that much,
    negative for non-inferiority within that much.
    """

    metric: str
    a: float
    b: float
    difference: float
    improvement: float
    low: float
    high: float
    p_value: float
    margin: float
    verdict: Literal["better", "worse", "inconclusive"]
    n: int
    confidence: float
    method: str
    min_detectable_effect: float
    more_rows_needed: int | None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


# --- input validation --------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A label as the user wrote it: ``2`` or ``'cat'``, not ``np.int64(2)``."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _as_1d(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {arr.shape}")
    return arr


def _check_length(name: str, arr: np.ndarray, n: int) -> None:
    if len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} rows but y_true has {n}; they must match")


def _check_finite(name: str, arr: np.ndarray) -> np.ndarray:
    try:
        out = np.asarray(arr, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers; got values such as {arr.ravel()[:1].tolist()}") from None
    bad = int(np.count_nonzero(~np.isfinite(out)))
    if bad:
        raise ValueError(f"{name} has {bad} NaN or infinite values; it must be finite")
    return out


def _unknown_label(label: Any, origin: str) -> str:
    if origin == "classes":
        return f"a label that is not among classes: {_show(label)}; add it to classes"
    return f"labels never seen in y_true: {_show(label)}; pass classes= to allow them"


def _class_codes(
    name: str, labels: np.ndarray, classes: np.ndarray, origin: str, *, defer: bool = False
) -> np.ndarray:
    """Codes 0..K-1 of ``labels`` in ``classes``; the fast path avoids sorting integer labels.

    With ``defer``, integer labels that already are codes are returned unchecked:
    the confusion pass checks their range while it reads them anyway.
    """
    k = len(classes)
    if labels.dtype.kind in "iub" and classes.dtype.kind in "iub":
        if np.array_equal(classes, np.arange(k)) and labels.dtype.kind in "iu":
            if defer and len(labels):
                return labels.astype(np.int64, copy=False)
            # One reduction checks 0 <= label < k: negatives wrap to huge unsigned values.
            unsigned = labels.view(np.dtype(f"u{labels.dtype.itemsize}"))
            if len(labels) and int(unsigned.max()) < k:
                return labels.astype(np.int64, copy=False)
        else:
            lo, hi = int(labels.min()), int(labels.max())
            c_lo = int(classes.min())
            span = max(hi, int(classes.max())) - min(lo, c_lo) + 1
            if span <= 16 * k + 1024:
                base = min(lo, c_lo)
                lut = np.full(span, -1, dtype=np.int64)
                lut[classes.astype(np.int64) - base] = np.arange(k)
                codes = lut[labels.astype(np.int64) - base]
                if (codes >= 0).all():
                    return codes
                unknown = labels[codes < 0][0]
                raise ValueError(f"{name} has {_unknown_label(unknown, origin)}")
    codes = np.asarray(pd.Index(classes).get_indexer(labels), dtype=np.int64)
    if (codes < 0).any():
        unknown = labels[codes < 0][0]
        raise ValueError(f"{name} has {_unknown_label(unknown, origin)}")
    return codes


def _unique_sorted(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "iu" and len(values):
        lo, hi = int(values.min()), int(values.max())
        if hi - lo <= 4 * len(values) + 1024:  # one bincount pass instead of a sort
            present = np.flatnonzero(np.bincount(values - lo if lo else values, minlength=hi - lo + 1))
            return (present + lo).astype(values.dtype)
    try:
        return np.unique(values)
    except TypeError:  # mixed types: order by their text
        return np.asarray(sorted(pd.unique(values).tolist(), key=str), dtype=object)


def _infer_task(refs: Sequence[MetricRef], y_true: np.ndarray) -> str:
    kinds = {"regression" if "regression" in r.metric.tasks else "classification" for r in refs}
    if len(kinds) > 1:
        raise ValueError("metrics mixes classification and regression metrics; score them separately")
    return kinds.pop()


def _default_metrics(y_true: np.ndarray, y_score: Any, classes: Any) -> list[str]:
    regression = classes is None and y_true.dtype.kind == "f" and not np.all(y_true == np.round(y_true))
    if regression:
        return ["mae", "rmse", "r2", "median_ae"]
    names = ["accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "mcc"]
    return names + (["roc_auc", "log_loss"] if y_score is not None else [])


def _scores_matrix(y_score: Any, n: int, k: int, classes: np.ndarray) -> np.ndarray:
    raw = np.asarray(y_score)
    if raw.ndim == 1:
        if k != 2:
            raise ValueError(
                f"y_score is one-dimensional but there are {k} classes; pass one column per "
                f"class ({', '.join(map(str, classes[:5].tolist()))})"
            )
        _check_length("y_score", raw, n)
        s = _check_finite("y_score", raw)
        return np.column_stack([1 - s, s]) if s.min() >= 0 and s.max() <= 1 else np.column_stack([-s, s])
    if raw.ndim != 2 or raw.shape[1] != k:
        raise ValueError(
            f"y_score has shape {raw.shape}; expected ({n}, {k}): one column per class "
            f"({', '.join(map(str, classes[:5].tolist()))})"
        )
    _check_length("y_score", raw, n)
    return _check_finite("y_score", raw)


def prepare(
    y_true: Any,
    y_pred: Any = None,
    y_score: Any = None,
    metrics: Sequence[str] | None = None,
    classes: Any = None,
    *,
    partial: bool = False,
) -> tuple[Prepared, list[MetricRef]]:
    """Validate the inputs once, encode labels as class codes, and resolve the metric names.

    ``partial`` is for a chunk of a larger set (an accumulator's update): checks
    that need the whole set, such as every class having rows, are skipped.
    """
    yt = _as_1d("y_true", y_true)
    if len(yt) == 0:
        raise ValueError("y_true is empty; need at least one row")
    names = list(metrics) if metrics is not None else _default_metrics(yt, y_score, classes)
    refs = []
    for name in names:
        try:
            refs.append(parse_metric(name))
        except ValueError as exc:
            raise ValueError(f"metrics: {exc}; allowed: {', '.join(sorted(METRICS))}") from None
    task = _infer_task(refs, yt)
    n = len(yt)
    if task == "regression":
        if y_pred is None:
            raise ValueError("y_pred is required for regression metrics; got None")
        values = _as_1d("y_pred", y_pred)
        _check_length("y_pred", values, n)
        return Prepared(
            "regression", n, None, _check_finite("y_true", yt), _check_finite("y_pred", values)
        ), refs
    if classes is None:
        cls = _unique_sorted(yt)
        origin = "y_true"
    else:
        cls = _unique_sorted(_as_1d("classes", classes))
        origin = "classes"
        if len(cls) != len(_as_1d("classes", classes)):
            raise ValueError("classes has repeated labels; each class must appear once")
    if len(cls) < 2:
        raise ValueError(
            f"y_true has a single class ({_show(cls[0])}); classification metrics need two; pass "
            "classes= to name the others"
        )
    # Label metrics alone: the range check of integer codes happens in the confusion pass.
    defer = y_score is None and all(r.metric.family == "confusion" for r in refs)
    true = _class_codes("y_true", yt, cls, origin, defer=defer)
    proba = _scores_matrix(y_score, n, len(cls), cls) if y_score is not None else None
    yp: np.ndarray | None = None
    if y_pred is not None:
        yp = _as_1d("y_pred", y_pred)
        _check_length("y_pred", yp, n)
        pred = _class_codes("y_pred", yp, cls, origin, defer=defer)
    elif proba is not None:
        pred = proba.argmax(axis=1)
    else:
        raise ValueError("give y_pred (labels) or y_score (class scores); got neither")
    prepared = Prepared("classification", n, cls, true, pred, proba)
    if defer:

        def check() -> None:
            _class_codes("y_true", yt, cls, origin)
            if yp is not None:
                _class_codes("y_pred", yp, cls, origin)

        prepared.cache["unchecked"] = check
    for ref in refs:
        _check_ref(ref, prepared, partial)
    return prepared, refs


def _check_ref(ref: MetricRef, p: Prepared, partial: bool = False) -> None:
    metric = ref.metric
    assert p.classes is not None and p.true is not None
    if ref.class_label is not None and ref.class_label not in [str(c) for c in p.classes.tolist()]:
        raise ValueError(
            f"{ref.name}: class {ref.class_label!r} is not among the classes "
            f"({', '.join(map(str, p.classes[:10].tolist()))})"
        )
    if metric.name in ("precision", "recall", "f1") and ref.class_label is None and p.k != 2:
        raise ValueError(
            f"{ref.name} is for binary targets; with {p.k} classes use {ref.name}_macro or "
            f"{ref.name}[class=...]"
        )
    if metric.needs == "scores" and p.proba is None:
        raise ValueError(f"{ref.name} needs y_score (class scores); got only y_pred")
    if metric.family == "proba" and p.proba is not None and (p.proba.min() < 0 or p.proba.max() > 1):
        raise ValueError(
            f"{ref.name} needs probabilities in [0, 1]; y_score has values in "
            f"[{p.proba.min():.3g}, {p.proba.max():.3g}]"
        )
    if metric.family == "ranking" and not partial:
        present = np.bincount(p.true, minlength=p.k)
        if p.k == 2 and present.min() == 0:
            only = p.classes[int(np.argmax(present))]
            raise ValueError(f"{ref.name} needs both classes in y_true; got only {_show(only)}")
        if p.k > 2 and (present == 0).any():
            missing = p.classes[present == 0][0]
            raise ValueError(
                f"{ref.name} (one-vs-rest) needs every class in y_true; class {_show(missing)} has no rows"
            )


# --- resampling ---------------------------------------------------------------------------------


def _resampled(
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
    if _compressed(cells, n):
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


def _compressed(cells: Cells, n: int) -> bool:
    """Whether the cells are few enough to resample (and jackknife) as cells rather than rows."""
    return cells.n_cells <= MULTINOMIAL_CELLS and 4 * cells.n_cells <= n


def _jackknife_accelerations(group: Sequence[Cells], multi: CellFn | None = None) -> list[float | None]:
    """BCa's acceleration from the jackknife, one leave-one-out value per occupied cell.

    Only where cheap: few cells (label metrics), or few rows. Members of a group
    share their cells, so the leave-one-out weights are built once for all.
    """
    cells = group[0]
    counts = cells.counts()
    occupied = np.flatnonzero(counts)
    if not (_compressed(cells, int(counts.sum())) or len(occupied) <= JACKKNIFE_CELLS):
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


def _interval(
    point: float, draws: np.ndarray, confidence: float, acceleration: float | None
) -> tuple[float | None, float | None, str]:
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


def _note(n: int, low: float | None, high: float | None, extra: str | None) -> str | None:
    notes = [extra] if extra else []
    if n < SMALL_N:
        notes.append(f"only {n} rows: the interval is too wide or too unstable to be meaningful")
    elif low is not None and high is not None and low == high:
        notes.append(
            f"no resample changed the value at n={n} (e.g. no errors): the interval is not meaningful"
        )
    return "; ".join(notes) or None


@dataclass(frozen=True, eq=False)
class _Plan:
    cells: Cells  # what is resampled
    center: float  # the statistic on those cells
    scale: float  # multiplier of resampled deviations
    exact: bool
    label: str


def _plan(
    build: Any,
    cells: Cells,
    p: Prepared,
    point: float,
    max_rows: int,
    rng: np.random.Generator,
    coarsen: bool,
) -> _Plan:
    if cells.n_cells <= MULTINOMIAL_CELLS:
        return _Plan(cells, point, 1.0, True, "")
    if coarsen:
        coarse = build(p, RANKING_BINS)
        return _Plan(coarse, coarse.value(), 1.0, False, f"resampled on {RANKING_BINS} score bins")
    if p.n <= max_rows:
        return _Plan(cells, point, 1.0, False, "")
    rows = np.sort(rng.choice(p.n, size=max_rows, replace=False))
    sub = build(p.take(rows), None)
    return _Plan(
        sub,
        sub.value(),
        math.sqrt(max_rows / p.n),
        False,
        f"m-out-of-n bootstrap on {max_rows} of {p.n} rows",
    )


def _estimate_group(
    refs: Sequence[MetricRef],
    group: Sequence[Cells],
    p: Prepared,
    confidence: float,
    n_resamples: int,
    rng: np.random.Generator,
    method: Method,
    multi: CellFn | None = None,
) -> list[Estimate]:
    """Estimates for metrics that share exactly-resampled cells (one draw serves all)."""
    counts = group[0].counts()[None, :]
    points = [float(v[0]) for v in multi(counts)] if multi is not None else [c.value() for c in group]
    draws = _resampled(group, n_resamples, rng, multi)
    accels = _jackknife_accelerations(group, multi) if method == "bca" else [None] * len(group)
    out = []
    for ref, point, row, accel in zip(refs, points, draws, accels, strict=True):
        low, high, used = _interval(point, row, confidence, accel)
        out.append(Estimate(ref.name, point, low, high, p.n, confidence, used, _note(p.n, low, high, None)))
    return out


def _estimate_one(
    ref: MetricRef,
    p: Prepared,
    confidence: float,
    n_resamples: int,
    rng: np.random.Generator,
    method: Method,
    max_rows: int,
) -> Estimate:
    def build(prep: Prepared, bins: int | None) -> Cells:
        return build_cells(ref, prep, bins=bins)

    full = build(p, None)
    point = full.value()
    if ref.metric.name == "max_error":
        return Estimate(
            ref.name,
            point,
            None,
            None,
            p.n,
            confidence,
            "none",
            "bootstrap intervals are not valid for a maximum",
        )
    if n_resamples == 0:
        return Estimate(ref.name, point, None, None, p.n, confidence, "none")
    if _compressed(full, p.n):
        return _estimate_group([ref], [full], p, confidence, n_resamples, rng, method)[0]
    coarsen = ref.metric.family == "ranking" and p.k == 2
    plan = _plan(build, full, p, point, max_rows, rng, coarsen)
    draws = point + plan.scale * (_resampled([plan.cells], n_resamples, rng)[0] - plan.center)
    accel = _jackknife_accelerations([plan.cells])[0] if method == "bca" and plan.exact else None
    low, high, used = _interval(point, draws, confidence, accel)
    return Estimate(
        ref.name, point, low, high, p.n, confidence, used, _note(p.n, low, high, plan.label or None)
    )


def score(
    y_true: Any,
    y_pred: Any = None,
    y_score: Any = None,
    metrics: Sequence[str] | None = None,
    *,
    classes: Any = None,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    method: Method = "bca",
    max_rows: int = DEFAULT_MAX_ROWS,
) -> Scores:
    """Exact metrics with bootstrap confidence intervals.

    Parameters
    ----------
    y_true
        True labels (classification) or values (regression).
    y_pred
        Predicted labels or values. For classification it may be omitted when
        ``y_score`` is given (the highest-scoring class is predicted).
    y_score
        Class scores: shape (n, K) with columns in the sorted order of the
        classes, or shape (n,) with the positive class's score for a binary task.
    metrics
        Metric names from the registry (``recall[class=7]``, ``pinball[q=0.9]``
        included); by default a standard set for the task.
    classes
        All class labels, when some may be absent from ``y_true``.
    confidence, n_resamples, seed
        Interval level, bootstrap resamples (0 for none) and the seed.
    method
        ``"bca"`` (where cheap, else percentile) or ``"percentile"``.
    max_rows
        Above this many rows, metrics over many cells use the m-out-of-n bootstrap.

    Raises
    ------
    ValueError
        Naming the argument, what is allowed and what was given.

    Examples
    --------
    >>> s = score([0, 1, 1, 0, 1], [0, 1, 0, 0, 1], metrics=["accuracy"], n_resamples=200)
    >>> s["accuracy"].value
    0.8
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence}")
    if n_resamples < 0:
        raise ValueError(f"n_resamples must be >= 0; got {n_resamples}")
    if method not in ("bca", "percentile"):
        raise ValueError(f"method must be 'bca' or 'percentile'; got {method!r}")
    prepared, refs = prepare(y_true, y_pred, y_score, metrics, classes)
    out: dict[str, Estimate] = {}
    label_refs = [r for r in refs if r.metric.family == "confusion"]
    if label_refs and n_resamples > 0:
        # Every label metric shares the confusion cells: one multinomial draw serves them all.
        group = [build_cells(r, prepared) for r in label_refs]
        specs = [confusion_spec(r, prepared) for r in label_refs]
        k = prepared.k

        def multi(w: np.ndarray) -> np.ndarray:
            return label_metrics(specs, w.reshape(-1, k, k))

        rng = np.random.default_rng([seed, 0])
        estimates = _estimate_group(label_refs, group, prepared, confidence, n_resamples, rng, method, multi)
        for est in estimates:
            out[est.name] = est
    for i, ref in enumerate(refs):
        if ref.name not in out:
            rng = np.random.default_rng([seed, i + 1])
            out[ref.name] = _estimate_one(ref, prepared, confidence, n_resamples, rng, method, max_rows)
    return Scores({r.name: out[r.name] for r in refs})


# --- paired comparison ----------------------------------------------------------------------------

_Z_POWER = ndtri(0.8)


def compare(
    y_true: Any,
    a: Any,
    b: Any,
    metric: str,
    margin: float = 0.0,
    *,
    classes: Any = None,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> Comparison:
    """Compare model A with model B on the same rows, sharing every resample.

    ``a`` and ``b`` are predicted labels or values, or class scores when the
    metric needs scores. The verdict is ``better`` when the interval of A's
    improvement over B lies above ``margin``, ``worse`` when it lies below,
    else ``inconclusive`` (with the minimum detectable effect at this n and
    about how many more labelled rows would decide).

    Examples
    --------
    >>> y = [0, 1] * 50
    >>> c = compare(y, y, [0] * 100, "accuracy", n_resamples=200)
    >>> c.verdict, c.improvement
    ('better', 0.5)
    """
    ref = parse_metric(metric) if metric in METRICS or "[" in metric else None
    if ref is None:
        raise ValueError(f"metric: unknown metric {metric!r}; allowed: {', '.join(sorted(METRICS))}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence}")
    needs_scores = ref.metric.needs == "scores"
    pa, _ = prepare(y_true, None if needs_scores else a, a if needs_scores else None, [metric], classes)
    pb, _ = prepare(
        y_true,
        None if needs_scores else b,
        b if needs_scores else None,
        [metric],
        pa.classes if pa.classes is not None else None,
    )
    sign = 1.0 if ref.greater_is_better else -1.0
    ca, cb = build_cells(ref, pa), build_cells(ref, pb)
    va, vb = ca.value(), cb.value()
    improvement = sign * (va - vb)

    def combine(values: list[np.ndarray]) -> np.ndarray:
        return sign * (values[0] - values[1])

    rng = np.random.default_rng(seed)
    n = pa.n
    if n > max_rows and ca.n_cells + cb.n_cells > MULTINOMIAL_CELLS:
        rows = np.sort(rng.choice(n, size=max_rows, replace=False))
        sa, sb = build_cells(ref, pa.take(rows)), build_cells(ref, pb.take(rows))
        joint = joint_cells([sa, sb], combine)
        center, scale = sign * (sa.value() - sb.value()), math.sqrt(max_rows / n)
        label: str | None = f"m-out-of-n bootstrap on {max_rows} of {n} rows"
    else:
        joint = joint_cells([ca, cb], combine)
        center, scale, label = improvement, 1.0, None
    draws = improvement + scale * (_resampled([joint], n_resamples, rng)[0] - center)
    accel = _jackknife_accelerations([joint])[0] if scale == 1.0 else None
    low, high, used = _interval(improvement, draws, confidence, accel)
    if low is None or high is None:
        raise ValueError(f"{metric} is undefined on these rows for one of the models; cannot compare")
    finite = draws[np.isfinite(draws)]
    p_value = float((np.sum(finite <= margin) + 1) / (len(finite) + 1))
    verdict: Literal["better", "worse", "inconclusive"] = (
        "better" if low > margin else "worse" if high < margin else "inconclusive"
    )
    se = float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0
    z = ndtri(1 - (1 - confidence) / 2)
    mde = float((z + _Z_POWER) * se)
    more: int | None = None
    gap = abs(improvement - margin)
    if verdict == "inconclusive" and gap > 0 and se > 0:
        more = max(0, math.ceil(n * (z * se / gap) ** 2) - n)
    return Comparison(
        metric,
        va,
        vb,
        va - vb,
        improvement,
        low,
        high,
        p_value,
        margin,
        verdict,
        n,
        confidence,
        used,
        mde,
        more,
        _note(n, low, high, label),
    )
