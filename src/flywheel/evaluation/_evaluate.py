"""Evaluate any candidate (fitted model, rule, predictions file) into an :class:`Evaluation`.

Every candidate is fitted on train only and scored on valid and test through the
metric registry, so a baseline, a user's model and a vendor's predictions are
judged by exactly the same code. A candidate that raises is reported with its
reason and the run goes on; it never reports metrics of zero for a failure.
Warnings raised while fitting (a solver that did not converge) are kept as
notes on the evaluation rather than lost in the terminal.
"""

from __future__ import annotations

import pickle
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from flywheel.data import Dataset, Split
from flywheel.evaluation._calibrated import with_class_scores
from flywheel.evaluation._candidates import PROBA_PREFIX, Candidate
from flywheel.evaluation._labels import predict_with_scores
from flywheel.evaluation._systems import measure_latency, peak_memory_mb, serialized_size_mb
from flywheel.metrics import Estimate, compare, get_metric, score

__all__ = [
    "Evaluation",
    "SPLITS",
    "compare_evaluations",
    "evaluate",
    "evaluate_elsewhere",
    "finish_here",
    "predict_rows",
    "scored_splits",
]

SPLITS = ("valid", "test")


@dataclass(frozen=True, eq=False)
class Evaluation:
    """One candidate's results: metrics per split, systems metrics, or why it failed."""

    name: str
    role: str
    kind: str
    description: str
    stage: str = "model"  # "constant", "chance", "rule" (not ML) or "model"
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    systems: dict[str, float] = field(default_factory=dict)
    n_rows: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    notes: tuple[str, ...] = ()
    intervals: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    # Intervals at the confidence levels constraints ask for, keyed "metric@level".
    bounds: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    predictions: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    scores: dict[str, np.ndarray | None] = field(default_factory=dict, repr=False)
    # The fitted candidate, pickled, for the registry (rungs and prediction files have none).
    artifact: bytes | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """Whether the candidate produced predictions."""
        return self.error is None

    def value(self, metric: str, split: str) -> float | None:
        """A metric's value on a split, or ``None`` when absent."""
        return self.metrics.get(split, {}).get(metric)

    def interval(self, metric: str, split: str) -> tuple[float, float] | None:
        """A metric's confidence interval on a split, or ``None`` when there is none."""
        return self.intervals.get(split, {}).get(metric)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (predictions left out)."""
        return {
            "name": self.name,
            "role": self.role,
            "kind": self.kind,
            "description": self.description,
            "stage": self.stage,
            "metrics": self.metrics,
            "intervals": {k: {m: list(b) for m, b in v.items()} for k, v in self.intervals.items()},
            "systems": self.systems,
            "n_rows": self.n_rows,
            "error": self.error,
            "notes": list(self.notes),
        }


def scored_splits(split: Split) -> dict[str, np.ndarray]:
    """The splits candidates are scored on (valid is skipped when empty)."""
    parts = {"valid": split.valid, "test": split.test}
    return {k: v for k, v in parts.items() if len(v)}


TRAIN_SCORED_ROWS = 20_000  # the training score is read from at most this many training rows


def _fitted_rows(split: Split) -> dict[str, np.ndarray]:
    """Training rows to score (a fixed sample when train is large) and the train-dev rows."""
    train = split.train
    if len(train) > TRAIN_SCORED_ROWS:
        train = np.sort(np.random.default_rng(0).choice(train, TRAIN_SCORED_ROWS, replace=False))
    out = {"train": train}
    if len(split.train_dev):
        out["train_dev"] = split.train_dev
    return out


def _one_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _as_labels(values: Any, ds: Dataset, n: int, who: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ValueError(f"{who} returned shape {arr.shape}; expected ({n},)")
    if ds.classes is None:
        return arr.astype(float)
    by_text = {str(c): c for c in ds.classes}
    out = []
    for v in arr.tolist():
        if str(v) not in by_text:
            raise ValueError(f"{who} returned {v!r}, which is not a class of the target")
        out.append(by_text[str(v)])
    return np.asarray(out, dtype=ds.y.dtype)


def predict_rows(model: Any, ds: Dataset, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A fitted model's labels (or values) and aligned class scores on some of the data's rows."""
    raw, proba = predict_with_scores(model, ds.X.iloc[rows], ds.classes)
    return _as_labels(raw, ds, len(rows), "the model"), proba


class _RuleModel:
    """A rule behind the ``predict`` interface, so latency is measured the same way."""

    def __init__(self, rule: Any, ds: Dataset) -> None:
        self.rule, self.ds = rule, ds

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        return _as_labels(self.rule(rows), self.ds, len(rows), "the rule")


Predicted = dict[str, tuple[np.ndarray, np.ndarray | None]]


def _predict_all(
    cand: Candidate,
    ds: Dataset,
    split: Split,
    parts: dict[str, np.ndarray],
    latency: bool = True,
    pickled: bool = True,
) -> tuple[Predicted, dict[str, float], dict[str, tuple[float, float]], Any]:
    """Predictions per split, systems metrics, and the intervals of the systems medians; latency
    and the pickled size are left out unless asked for."""
    systems: dict[str, float] = {}
    spans: dict[str, tuple[float, float]] = {}
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    if cand.table is not None:
        for name, idx in parts.items():
            rows = cand.table.loc[idx]
            proba_cols = [c for c in rows.columns if c.startswith(PROBA_PREFIX)]
            out[name] = (rows["prediction"].to_numpy(), rows[proba_cols].to_numpy() if proba_cols else None)
        return out, systems, spans, None
    features = ds.frame.drop(columns=[ds.target]) if cand.rule is not None else ds.X
    if cand.rule is not None:
        model: Any = _RuleModel(cand.rule, ds)
    else:
        assert cand.make is not None
        model = cand.make()
        start = time.perf_counter()
        model.fit(ds.X.iloc[split.train], ds.y[split.train])
        if ds.classes is not None and len(split.valid):  # scores a service can return and mine read
            model = with_class_scores(model, ds.X.iloc[split.valid], ds.y[split.valid])
        systems["fit_time_s"] = time.perf_counter() - start
        if pickled:
            systems["size_mb"] = serialized_size_mb(model)
    for name, idx in parts.items():
        raw, proba = predict_with_scores(model, features.iloc[idx], ds.classes)
        out[name] = (raw if cand.rule is not None else _as_labels(raw, ds, len(idx), cand.name), proba)
    sample = features.iloc[split.valid if len(split.valid) else split.test]
    if latency:
        systems, spans = _with_latency(systems, spans, model, sample)
    systems["memory_mb"] = peak_memory_mb(model, sample)
    return out, systems, spans, model


def _with_latency(
    systems: dict[str, float], spans: dict[str, tuple[float, float]], model: Any, sample: pd.DataFrame
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Systems metrics and their intervals with the latency of ``model`` on ``sample`` added, and
    the seconds the timing itself took (``latency_timing_s``: where a run's time goes)."""
    start = time.perf_counter()
    measured = measure_latency(model, sample)
    took = time.perf_counter() - start
    systems = {**systems, **{k: float(v) for k, v in measured.items() if not k.endswith("_interval")}}
    systems["latency_timing_s"] = took
    spans = {
        **spans,
        **{k.removesuffix("_interval"): v for k, v in measured.items() if k.endswith("_interval")},
    }
    return systems, spans


def finish_here(
    ev: Evaluation, model: Any, cand: Candidate, ds: Dataset, split: Split, *, latency: bool
) -> Evaluation:
    """``ev`` from :func:`evaluate_elsewhere`, finished in this process: the model's pickled size and
    the candidate's artifact from ``model`` (the fitted model it returned), and with ``latency``,
    its latency timed.

    A rule is timed from ``cand`` itself; a predictions file has neither artifact nor latency.
    """
    if not ev.ok or cand.table is not None:
        return ev
    if model is not None and cand.make is not None:
        ev = replace(ev, systems={**ev.systems, "size_mb": serialized_size_mb(model)})
        if cand.role == "candidate":
            ev = replace(ev, artifact=pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    if not latency:
        return ev
    if cand.rule is not None:
        model, features = _RuleModel(cand.rule, ds), ds.frame.drop(columns=[ds.target])
    else:
        features = ds.X
    sample = features.iloc[split.valid if len(split.valid) else split.test]
    systems, spans = _with_latency(ev.systems, ev.intervals.get("systems", {}), model, sample)
    return replace(ev, systems=systems, intervals={**ev.intervals, "systems": spans})


def _score_split(
    ds: Dataset,
    rows: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    metrics: Sequence[str],
    n_resamples: int,
    seed: int,
) -> tuple[dict[str, float | None], dict[str, tuple[float, float]], list[str]]:
    """Metrics with intervals on one split; a metric undefined here is None with a note, never fatal."""
    classes = None if ds.classes is None else np.asarray(ds.classes)
    usable = [m for m in metrics if proba is not None or get_metric(m).needs == "labels"]
    values: dict[str, float | None] = dict.fromkeys(metrics)
    intervals: dict[str, tuple[float, float]] = {}
    notes: list[str] = []
    estimates: dict[str, Estimate] = {}
    try:
        estimates = dict(
            score(ds.y[rows], pred, proba, usable, classes=classes, n_resamples=n_resamples, seed=seed)
        )
    except ValueError:
        for name in usable:  # find which metric is undefined on these rows, keep the others
            try:
                estimates.update(
                    score(
                        ds.y[rows], pred, proba, [name], classes=classes, n_resamples=n_resamples, seed=seed
                    )
                )
            except ValueError as exc:
                notes.append(f"{name}: {exc}")
    for name, est in estimates.items():
        values[name] = est.value
        if est.low is not None and est.high is not None:
            intervals[name] = (est.low, est.high)
    return values, intervals, notes


def _bounds_at(
    ds: Dataset,
    rows: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    levels: dict[str, float],
    n_resamples: int,
    seed: int,
) -> dict[str, tuple[float, float]]:
    classes = None if ds.classes is None else np.asarray(ds.classes)
    out: dict[str, tuple[float, float]] = {}
    for metric, level in levels.items():
        if proba is None and get_metric(metric).needs == "scores":
            continue
        try:
            est = score(
                ds.y[rows],
                pred,
                proba,
                [metric],
                classes=classes,
                confidence=level,
                n_resamples=n_resamples,
                seed=seed,
            )[metric]
        except ValueError:
            continue
        if est.low is not None and est.high is not None:
            out[f"{metric}@{level:g}"] = (est.low, est.high)
    return out


def evaluate(
    cand: Candidate,
    ds: Dataset,
    split: Split,
    metrics: Sequence[str],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    levels: dict[str, float] | None = None,
) -> Evaluation:
    """Fit (when needed), predict valid and test, and compute ``metrics`` with intervals on each."""
    return _evaluate(cand, ds, split, metrics, n_resamples, seed, levels, latency=True)[0]


def evaluate_elsewhere(
    cand: Candidate,
    ds: Dataset,
    split: Split,
    metrics: Sequence[str],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    levels: dict[str, float] | None = None,
    latency: bool = True,
) -> tuple[Evaluation, Any]:
    """As :func:`evaluate`, in a process that may not be this one; :func:`finish_here` completes it.

    Returns the evaluation and the fitted model (``None`` for a rule or a predictions file). The
    evaluation has no artifact and no pickled size: a Dask worker cannot pickle a model of the
    project's own classes (it has the project's modules by value, not by name); the run's can.
    With ``latency=False`` it has no latency either: on another machine latency would be that
    machine's, not comparable with what this one measures for other models or other runs. Fit
    time and memory stay (the fit happens where it happens; memory does not depend on the
    machine).
    """
    ev, model = _evaluate(cand, ds, split, metrics, n_resamples, seed, levels, latency, artifact=False)
    return ev, model if cand.make is not None else None


def _evaluate(
    cand: Candidate,
    ds: Dataset,
    split: Split,
    metrics: Sequence[str],
    n_resamples: int,
    seed: int,
    levels: dict[str, float] | None,
    latency: bool,
    artifact: bool = True,
) -> tuple[Evaluation, Any]:
    """The evaluation of :func:`evaluate` (with its latency and artifact or not), and the fitted model."""
    parts = scored_splits(split)
    base: dict[str, Any] = {
        "name": cand.name,
        "role": cand.role,
        "kind": cand.kind,
        "description": cand.description,
        "stage": cand.stage,
        "n_rows": {k: len(v) for k, v in parts.items()},
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            predicted, systems, spans, model = _predict_all(cand, ds, split, parts, latency, artifact)
        except Exception as exc:  # a failing candidate is reported, never fatal to the run
            return Evaluation(**base, error=_one_line(exc)), None
    values: dict[str, dict[str, float | None]] = {}
    intervals: dict[str, dict[str, tuple[float, float]]] = {}
    bounds: dict[str, dict[str, tuple[float, float]]] = {}
    notes = list(dict.fromkeys(f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught))
    for name, (pred, proba) in predicted.items():
        # The same seed on every candidate: models scored on the same rows share their resamples.
        values[name], intervals[name], split_notes = _score_split(
            ds, parts[name], pred, proba, metrics, n_resamples, seed
        )
        notes += [f"{name}: {n}" for n in split_notes]
        if levels:
            bounds[name] = _bounds_at(ds, parts[name], pred, proba, levels, n_resamples, seed)
    if model is not None and cand.make is not None:
        # Scores on rows the model was fitted on (and train-dev rows it was not): the diagnosis
        # reads bias and variance from them. Not used for ranking.
        for name, idx in _fitted_rows(split).items():
            try:
                pred, proba = predict_rows(model, ds, idx)
            except Exception as exc:  # diagnosis only: the candidate's evaluation stands
                notes.append(f"{name}: cannot predict: {_one_line(exc)}")
                continue
            values[name], intervals[name], split_notes = _score_split(
                ds, idx, pred, proba, metrics, n_resamples, seed
            )
            notes += [f"{name}: {n}" for n in split_notes]
    if spans:  # the intervals of the systems medians travel as split "systems"
        intervals["systems"] = spans
    evaluation = Evaluation(
        **base,
        metrics=values,
        intervals=intervals,
        bounds=bounds,
        systems=systems,
        notes=tuple(notes),
        predictions={k: v[0] for k, v in predicted.items()},
        artifact=pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        if artifact and model is not None and cand.role == "candidate" and cand.make is not None
        else None,
        scores={k: v[1] for k, v in predicted.items()},
    )
    return evaluation, model


def compare_evaluations(
    a: Evaluation,
    b: Evaluation,
    ds: Dataset,
    split: Split,
    split_name: str,
    metric: str,
    *,
    margin: float = 0.0,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any] | None:
    """Paired comparison of A with B on one split's rows; ``None`` when it cannot be made."""
    rows = scored_splits(split).get(split_name)
    if rows is None or split_name not in a.predictions or split_name not in b.predictions:
        return None
    needs_scores = get_metric(metric).needs == "scores"
    left = a.scores.get(split_name) if needs_scores else a.predictions[split_name]
    right = b.scores.get(split_name) if needs_scores else b.predictions[split_name]
    if left is None or right is None:
        return None
    classes = None if ds.classes is None else np.asarray(ds.classes)
    try:
        comp = compare(
            ds.y[rows],
            left,
            right,
            metric,
            margin=margin,
            classes=classes,
            n_resamples=n_resamples,
            seed=seed,
        )
    except ValueError:
        return None
    return comp.to_dict()
