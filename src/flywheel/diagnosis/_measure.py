"""Measuring a learning curve: the metric at geometric training sizes, several seeds each, for one
model family (the best candidate's), every fit an independent task for the executor.

What the run measures is what the forecast extrapolates, so the rows of each point are a pure
function of the seed and the size (the same whichever executor ran which fit), and work that
cannot change the curve is not done: the full training set is fitted once for all seeds (or taken
from the run's own fit), large sizes get one seed, and points are scored on one fixed sample of a
large held-out split. The curve's notes say what was sampled.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np

from flywheel.data import Dataset, Split
from flywheel.diagnosis._curves import Curve, CurvePoint
from flywheel.errors import FlywheelError
from flywheel.evaluation import Candidate
from flywheel.execution import Executor, LocalExecutor, Outcome, Task
from flywheel.metrics import MetricRef, get_metric, score

__all__ = [
    "geometric_sizes",
    "measure_curve",
]


def geometric_sizes(n_train: int, count: int = 8, *, smallest: int | None = None) -> list[int]:
    """``count`` training sizes in geometric progression from a small share of train to all of it."""
    low = smallest if smallest is not None else max(20, n_train // 32)
    low = min(low, n_train)
    raw = np.geomspace(low, n_train, count)
    return sorted({round(v) for v in raw})


def _subsample(
    y: np.ndarray, rows: np.ndarray, size: int, classify: bool, rng: np.random.Generator
) -> np.ndarray:
    """``size`` of ``rows``, stratified by class (each class present in train keeps at least one row)."""
    if size >= len(rows):
        return rows
    if not classify:
        return np.sort(rng.choice(rows, size, replace=False))
    labels = y[rows].astype(str)
    classes, codes = np.unique(labels, return_inverse=True)
    counts = np.bincount(codes)
    quota = np.maximum(1, np.floor(counts * size / len(rows)).astype(int))
    short = size - quota.sum()
    if short > 0:  # hand the remainder to the largest classes, by their fractional share
        frac = counts * size / len(rows) - np.floor(counts * size / len(rows))
        for j in np.argsort(-frac)[:short]:
            quota[j] = min(counts[j], quota[j] + 1)
    picked = [
        rng.choice(rows[codes == j], min(quota[j], counts[j]), replace=False) for j in range(len(classes))
    ]
    return np.sort(np.concatenate(picked))


def _metric_value(ref: MetricRef, ds: Dataset, rows: np.ndarray, model: Any) -> float:
    from flywheel.evaluation import predict_rows

    pred, proba = predict_rows(model, ds, rows)
    classes = None if ds.classes is None else np.asarray(ds.classes)
    if get_metric(ref.name).needs == "scores" and proba is None:
        raise FlywheelError(f"{ref.name} needs class scores and the model gives none")
    return float(score(ds.y[rows], pred, proba, [ref.name], classes=classes, n_resamples=0)[ref.name].value)


def _curve_rows(
    y: np.ndarray, train: np.ndarray, sizes: Sequence[int], index: int, seed: int, classify: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The rows seed ``seed`` trains on at ``sizes[index]``, and those (up to 5,000) it is scored on.

    One random stream per seed draws the subsample at each size in turn, so a point's rows are
    replayed from the draws of the smaller sizes (cheap: no fitting): each point is then a task
    of its own, and its rows are the same whichever executor ran it and whatever ran beside it.
    """
    rng = np.random.default_rng([seed, 7919])
    rows = seen = train
    for size in sizes[: index + 1]:
        rows = _subsample(y, train, size, classify, rng)
        seen = rows if len(rows) <= 5000 else np.sort(rng.choice(rows, 5000, replace=False))
    return rows, seen


def _curve_point(
    cand: Candidate,
    ds: Dataset,
    split: Split,
    ref: MetricRef,
    sizes: Sequence[int],
    index: int,
    seed: int,
    rows_out: str,
) -> CurvePoint:
    """Fit at ``sizes[index]`` for one seed; score on the subsample trained on and on ``rows_out``."""
    assert cand.make is not None
    rows, seen = _curve_rows(ds.y, split.train, sizes, index, seed, ds.classes is not None)
    model = cand.make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(ds.X.iloc[rows], ds.y[rows])
    try:
        train = _metric_value(ref, ds, seen, model)
    except ValueError:
        train = None
    evaluate_on = _scored_rows(split.valid if rows_out == "valid" else split.test)
    return CurvePoint(len(rows), seed, train, _metric_value(ref, ds, evaluate_on, model))


_CURVE_SCORED_ROWS = 50_000  # each point is scored on at most this many held-out rows


def _scored_rows(rows: np.ndarray) -> np.ndarray:
    """The held-out rows every point of the curve is scored on: all of them, or one fixed sample of
    :data:`_CURVE_SCORED_ROWS` (the same for every size and seed, so the points stay paired).

    Scoring a boosted model on 200,000 rows costs as much as fitting it on 100,000; the points'
    standard error grows by sqrt(rows / sample), which the curve's ``valid_se`` says."""
    if len(rows) <= _CURVE_SCORED_ROWS:
        return rows
    return np.sort(np.random.default_rng(7919).choice(rows, _CURVE_SCORED_ROWS, replace=False))


_SMALL_FIT_ROWS = 20_000  # fits this small share a task: a process costs more than the fit
_ONE_SEED_ROWS = 50_000  # above this many training rows a size is fitted with one seed


def _planned_fits(grid: Sequence[int], n_train: int, seeds: int, full_known: bool) -> list[tuple[int, int]]:
    """The (size index, seed) fits worth making.

    - At the full training set every seed draws the same rows, so it is fitted once (seed 0) and
      that point stands for every seed, as the seeds' identical fits did; not at all when the
      run's own fit of the model on all of train is given (``full_known``).
    - Above :data:`_ONE_SEED_ROWS` rows one seed: a seed's spread there is a small share of the
      curve's (subsampling noise shrinks with the rows) and each fit costs the most.
    """
    fits = []
    for i, size in enumerate(grid):
        if size >= n_train:
            fits += [] if full_known else [(i, 0)]
        else:
            fits += [(i, s) for s in range(1 if size > _ONE_SEED_ROWS else seeds)]
    return fits


def _fit_groups(grid: Sequence[int], fits: Sequence[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """The (size index, seed) fits of each task, the largest first: every fit on more than
    ``_SMALL_FIT_ROWS`` rows is a task of its own (those are the ones worth spreading over
    cores or a cluster); the smaller ones of a seed share one task, since starting a process
    (or shipping a task) costs more than fitting a few thousand rows."""
    big = [[(i, s)] for i, s in fits if grid[i] > _SMALL_FIT_ROWS]
    small: dict[int, list[tuple[int, int]]] = {}
    for i, s in fits:
        if grid[i] <= _SMALL_FIT_ROWS:
            small.setdefault(s, []).append((i, s))
    groups = big + [small[s] for s in sorted(small)]
    return sorted(groups, key=lambda g: (-sum(grid[i] for i, _ in g), g[0][1]))


def _curve_points(
    cand: Candidate,
    ds: Dataset,
    split: Split,
    ref: MetricRef,
    sizes: Sequence[int],
    indices: Sequence[int],
    seed: int,
    rows_out: str,
) -> list[CurvePoint | str]:
    """:func:`_curve_point` at each of ``indices`` for one seed (one task's fits); a fit that fails
    is its one-line reason in its place, so it costs its own point, not the others'."""
    points: list[CurvePoint | str] = []
    for i in indices:
        try:
            points.append(_curve_point(cand, ds, split, ref, sizes, i, seed, rows_out))
        except Exception as exc:  # the point's failure, in the executor's one-line form
            text = (str(exc).strip().splitlines() or [""])[0]
            points.append(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
    return points


def _point_outcome(outcome: Outcome, k: int) -> Outcome:
    """The ``k``-th fit of a task's outcome: its point, or why the fit (or the whole task) failed."""
    if outcome.error is not None:
        return outcome
    value = outcome.value[k]
    if isinstance(value, str):
        return Outcome(outcome.name, None, value, outcome.elapsed_s)
    return Outcome(outcome.name, value, None, outcome.elapsed_s)


def measure_curve(
    cand: Candidate,
    ds: Dataset,
    split: Split,
    ref: MetricRef,
    *,
    sizes: int = 8,
    seeds: int = 3,
    executor: Executor | None = None,
    budget_s: float = 360.0,
    valid_se: float = 0.0,
    full: tuple[float | None, float] | None = None,
) -> Curve:
    """The metric at geometric training sizes, ``seeds`` subsamples each.

    The fits are independent tasks for ``executor`` (local processes by default, or a Dask
    cluster), the largest first so the longest fits do not start last; each has ``budget_s``.
    Fits on a few thousand rows share one task per seed (:func:`_fit_groups`). The full training
    set is fitted once for all seeds, and sizes above :data:`_ONE_SEED_ROWS` rows with one seed
    (:func:`_planned_fits`; the curve's notes say so). ``full`` is the (train, valid) metric of
    the run's own fit of this model on all of train, when the caller has it: that point is then
    not fitted again. The points are the same whichever executor ran them.

    Raises
    ------
    FlywheelError
        When the candidate cannot be refitted (a rule or a predictions file), or every fit failed.
    """
    if cand.make is None:
        raise FlywheelError(f"{cand.name} is not a model flywheel fits, so it has no learning curve")
    where = "valid" if len(split.valid) else "test"
    held_out = len(split.valid if where == "valid" else split.test)
    scored = len(_scored_rows(split.valid if where == "valid" else split.test))
    valid_se *= math.sqrt(held_out / scored) if scored else 1.0
    grid = geometric_sizes(len(split.train), sizes)
    n_train = len(split.train)
    groups = _fit_groups(grid, _planned_fits(grid, n_train, seeds, full is not None))
    tasks = [
        Task(
            f"curve {', '.join(str(grid[i]) for i, _ in group)} rows seed {group[0][1]}",
            partial(_curve_points, cand, ds, split, ref, grid, [i for i, _ in group], group[0][1], where),
            budget_s,
        )
        for group in groups
    ]
    ran = {
        (i, s): _point_outcome(o, k)
        for group, o in zip(groups, (executor or LocalExecutor()).run(tasks) if tasks else [], strict=True)
        for k, (i, s) in enumerate(group)
    }
    if full is not None and grid[-1] >= n_train:
        ran[len(grid) - 1, 0] = Outcome("the run's own fit", CurvePoint(n_train, 0, *full), None, 0.0)
    found = (_seed_outcome(ran, i, s, grid[i] >= n_train) for s in range(seeds) for i in range(len(grid)))
    outcomes = [o for o in found if o is not None]  # by seed, then size
    points = [o.value for o in outcomes if o.error is None]
    errors = Counter(o.error for o in outcomes if o.error is not None)
    if not points:
        raise FlywheelError(
            f"the learning curve of {cand.name} failed: {next(iter(errors), None) or 'no points'}"
        )
    notes = tuple(f"{n} of {len(outcomes)} fits failed: {e}" for e, n in errors.items())
    if scored < held_out:
        reused = " (the full training set's from the run's own fit: on all of them)" if full else ""
        notes += (f"sampled: each point scored on {scored:,} of the {held_out:,} {where} rows{reused}",)
    one_seed = [size for size in grid if _ONE_SEED_ROWS < size < n_train]
    if one_seed and seeds > 1:
        notes += (
            f"sampled: {len(one_seed)} sizes above {_ONE_SEED_ROWS:,} training rows fitted with 1 seed of "
            f"{seeds} ({', '.join(f'{size:,}' for size in one_seed)} rows)",
        )
    metric = get_metric(ref.name)
    return Curve(
        ref.name, ref.greater_is_better, metric.best, "size", tuple(points), cand.name, where, valid_se, notes
    )


def _seed_outcome(ran: dict[tuple[int, int], Outcome], i: int, seed: int, full: bool) -> Outcome | None:
    """The outcome of size ``i`` for ``seed``: its own fit, or (on the full training set, where every
    seed draws the same rows) seed 0's point as this seed's; None for a seed that was not fitted."""
    if (i, seed) in ran:
        return ran[i, seed]
    if not full or (i, 0) not in ran:
        return None
    first = ran[i, 0]
    if first.error is not None:  # one failed fit, counted once
        return None
    return Outcome(first.name, replace(first.value, seed=seed), None, first.elapsed_s)
