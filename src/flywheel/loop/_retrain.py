"""Retraining: fit the champion's family on the training split plus the accepted labels, judge the
result against the champion, and register it as the ``challenger``.

Retraining never trains on the frozen test split. Labels from traffic (``POST /feedback``) are a
random sample of production; labels from the review queue are not (mining chose them). So a
fixed, hash-chosen half of the traffic labels is held out, and the challenger is judged against
the champion on the frozen test split plus that fresh slice.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from flywheel.errors import FlywheelError
from flywheel.loop._queue import _json_value, _log_path, list_queue
from flywheel.prediction_log import read_labels, read_predictions
from flywheel.project import Project

if TYPE_CHECKING:
    from flywheel.data import Dataset, Split
    from flywheel.evaluation import Candidate
    from flywheel.execution import Executor

__all__ = ["Retrained", "retrain"]


def _fresh(prediction_id: str) -> bool:
    """Half of the traffic labels, chosen by a hash of the prediction id, are held out for judging."""
    return int(hashlib.sha256(prediction_id.encode()).hexdigest()[:8], 16) % 2 == 0


@dataclass(frozen=True)
class Retrained:
    """A retrained challenger and its judgement against the champion."""

    name: str
    version: int
    trained_rows: int
    added_labels: int
    judged_rows: int
    fresh_rows: int
    verdict: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


def _labelled_rows(project: Project, features: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows to train on, fresh traffic rows to judge on): each with the feature columns and ``_label``."""
    latest = {f["prediction_id"]: f for f in read_labels(_log_path(project))}  # the latest label wins
    ids = [k for k in latest if not k.startswith("item:")]
    inputs = {p["id"]: p["input"] for p in read_predictions(_log_path(project), ids=ids)}
    pool_items = {
        f"item:{it.id}": it.input for it in list_queue(project, "labelled") if it.prediction_id is None
    }
    train_rows, fresh_rows = [], []
    for key, f in latest.items():
        row = inputs.get(key) or pool_items.get(key)
        if row is None:
            continue
        record = {**{c: row.get(c) for c in features}, "_label": f["label"], "_key": key}
        if f["origin"] == "traffic" and _fresh(key):
            fresh_rows.append(record)
        else:
            train_rows.append(record)
    columns = [*features, "_label", "_key"]
    return pd.DataFrame(train_rows, columns=columns), pd.DataFrame(fresh_rows, columns=columns)


def retrain(project: Project, *, executor: Executor | None = None) -> Retrained:
    """Fit the champion's family on train + accepted labels, register it as challenger, and judge it.

    The fit is a task for ``executor`` (default: a local process), with three times the project's
    ``baselines.budget_for`` its rows; it carries its own seeds, so the model is the same on any executor.
    Judging and registering happen here.
    """
    from flywheel.evaluation import make_objective
    from flywheel.pipeline import plan
    from flywheel.registry import load_alias

    champion = load_alias(project, "champion")
    planned = plan(project)
    cand = next((c for c in planned.candidates if c.name == champion.name and c.make is not None), None)
    if cand is None:
        raise FlywheelError(
            f"the champion {champion.name!r} is not a model in flywheel.yaml that flywheel can refit"
        )
    ds, split = planned.dataset, planned.split
    added, fresh = _labelled_rows(project, list(ds.columns.features))
    added, notes = _drop_test_leaks(added, ds, split)
    added, absurd = _drop_absurd(added, ds)
    notes += absurd
    budget = 3 * project.baselines.budget_for(len(split.train) + len(added))
    model, trained_rows = _fit_on(executor, cand, ds, split, added, budget)
    objective = make_objective(
        project.objective, ds.task, project.objective_fingerprint(), str(project.path), classes=ds.classes
    )
    verdict, judged_rows = _judge(project, objective.primary.name, champion, model, ds, split, fresh)
    version = _register(project, champion.name, model, ds, split, objective.version, verdict, len(added))
    return Retrained(
        champion.name, version, trained_rows, len(added), judged_rows, len(fresh), verdict, notes
    )


ABSURD = 1e3  # ranges' widths beyond the data's range that make an input no row to train on


def _drop_absurd(added: pd.DataFrame, ds: Dataset) -> tuple[pd.DataFrame, list[str]]:
    """The fed-back rows minus those with a numeric input absurdly far outside the data's range.

    A service answers for any finite number (1e308 included) and logs it; training on it would
    overflow the preprocessing and fail every retrain after. Such rows stay in the log, labelled,
    but are not trained on: more than ``ABSURD`` times the feature's range beyond its ends.
    """
    if not len(added):
        return added, []
    keep = np.ones(len(added), dtype=bool)
    for c in ds.columns.numeric:
        known = pd.to_numeric(ds.X[c], errors="coerce")
        low, high = float(known.min()), float(known.max())
        width = max(high - low, abs(high), abs(low), 1.0)
        values = pd.to_numeric(added[c], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            keep &= ~((values < low - ABSURD * width) | (values > high + ABSURD * width))
    if keep.all():
        return added, []
    note = (
        f"{int((~keep).sum())} labelled rows have inputs far outside the data's range and were not trained on"
    )
    return added.loc[keep], [note]


def _drop_test_leaks(added: pd.DataFrame, ds: Dataset, split: Split) -> tuple[pd.DataFrame, list[str]]:
    """The fed-back rows minus any identical to a test row, and a note of how many were left out."""
    notes: list[str] = []
    if not len(added):
        return added, notes
    # Never train on the frozen test split: drop any fed-back row identical to a test row.
    features = list(ds.columns.features)
    test_rows = {
        json.dumps([_json_value(v) for v in r], default=str)
        for r in ds.X.iloc[split.test].itertuples(index=False)
    }
    key = added[features].apply(lambda r: json.dumps([_json_value(v) for v in r], default=str), axis=1)
    leaked = key.isin(test_rows)
    if leaked.any():
        notes.append(f"{int(leaked.sum())} fed-back rows equal test rows and were left out of training")
        added = added.loc[~leaked]
    return added, notes


def _typed(frame: pd.DataFrame, ds: Dataset) -> pd.DataFrame:
    """The feature columns of fed-back rows, numeric ones as floats like the dataset's."""
    out = frame[list(ds.columns.features)].copy()
    for c in ds.columns.numeric:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    return out


def _labels(values: Iterable[Any], ds: Dataset) -> np.ndarray:
    """Fed-back labels (stored as text) as the dataset's own class values, or floats for regression."""
    if ds.classes is None:
        return np.asarray([float(v) for v in values])
    by_text = {str(c): c for c in ds.classes}
    return np.asarray([by_text.get(str(v), v) for v in values], dtype=ds.y.dtype)


def _fit_on(
    executor: Executor | None,
    cand: Candidate,
    ds: Dataset,
    split: Split,
    added: pd.DataFrame,
    budget_s: float,
) -> tuple[Any, int]:
    """:func:`_fit` as a task on ``executor``; a model that refuses its rows is one line."""
    from functools import partial

    from flywheel.execution import LocalExecutor, Task

    task = Task(f"retrain {cand.name}", partial(_refit, cand, ds, split, added), budget_s)
    [outcome] = (executor or LocalExecutor(1)).run([task])
    if outcome.error is not None:
        raise FlywheelError(f"retrain: fitting {cand.name} failed: {outcome.error}")
    status, value, rows = outcome.value
    if status == "refused":  # the model refuses what it was given: say so, do not crash
        raise FlywheelError(
            f"retrain: {cand.name} cannot be fitted on train plus the {len(added):,} labelled rows "
            f"({value}); look at their inputs with `flywheel queue list`"
        )
    return value, rows


def _refit(cand: Candidate, ds: Dataset, split: Split, added: pd.DataFrame) -> tuple[str, Any, int]:
    """The retrain task: ("ok", model, rows trained on), or ("refused", the model's one line, 0)."""
    try:
        model, rows = _fit(cand, ds, split, added)
    except ValueError as exc:
        return "refused", (str(exc).strip().splitlines() or [""])[0], 0
    return "ok", model, rows


def _fit(cand: Candidate, ds: Dataset, split: Split, added: pd.DataFrame) -> tuple[Any, int]:
    """A fresh model of the champion's family fitted on the training split plus ``added``; and its rows."""
    X = pd.concat([ds.X.iloc[split.train], _typed(added, ds)], ignore_index=True)
    y = np.concatenate([ds.y[split.train], _labels(added["_label"], ds)])
    make = cand.make
    assert make is not None
    model = make()
    model.fit(X, y)
    if ds.classes is not None and len(split.valid):  # as a run does: probabilities to serve and mine
        from flywheel.evaluation import with_class_scores

        model = with_class_scores(model, ds.X.iloc[split.valid], ds.y[split.valid])
    return model, len(X)


def _outputs(m: Any, X: pd.DataFrame, metric: str, ds: Dataset) -> np.ndarray:
    """What ``metric`` scores of a model on ``X``: class scores or predictions."""
    from flywheel.evaluation import class_scores
    from flywheel.metrics import get_metric

    if get_metric(metric).needs == "scores":
        assert ds.classes is not None
        proba = class_scores(m, X, ds.classes)
        if proba is None:
            raise FlywheelError(f"{metric} needs class scores and the model gives none")
        return proba
    return np.asarray(m.predict(X))


def _judge(
    project: Project,
    metric: str,
    champion: Any,
    model: Any,
    ds: Dataset,
    split: Split,
    fresh: pd.DataFrame,
) -> tuple[dict[str, Any], int]:
    """The retrained model against the champion on test + fresh traffic, by the gate: (verdict, rows)."""
    from flywheel.metrics import compare

    judge_X = pd.concat([ds.X.iloc[split.test], _typed(fresh, ds)], ignore_index=True)
    judge_y = np.concatenate([ds.y[split.test], _labels(fresh["_label"], ds)])
    gate = project.gate
    margin = gate.margin if gate.policy == "superiority" else -gate.margin
    classes = None if ds.classes is None else np.asarray(ds.classes)
    comp = compare(
        judge_y,
        _outputs(model, judge_X, metric, ds),
        _outputs(champion.model, judge_X, metric, ds),
        metric,
        margin=margin,
        classes=classes,
    ).to_dict()
    status = {"better": "pass", "worse": "fail"}.get(comp["verdict"], "inconclusive")
    verdict = {
        "status": status,
        "metric": metric,
        "policy": gate.policy,
        "margin": gate.margin,
        "comparison": comp,
        "reason": (
            f"retrained {champion.name} vs champion v{champion.version}: {metric} improvement "
            f"{comp['improvement']:+.4f} [{comp['low']:+.4f}, {comp['high']:+.4f}] on {comp['n']} rows "
            f"(test {len(split.test)} + fresh traffic {len(fresh)}), {gate.policy} margin {gate.margin:g}"
        ),
    }
    return verdict, len(judge_y)


def _register(
    project: Project,
    name: str,
    model: Any,
    ds: Dataset,
    split: Split,
    objective_version: str,
    verdict: dict[str, Any],
    added: int,
) -> int:
    """Save the model and its judgement as the next version of ``name``, aliased ``challenger``."""
    from flywheel.registry import project_store, save_version

    now = datetime.now(UTC)
    store = project_store(project)
    try:
        run_id = f"retrain-{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"
        saved = save_version(
            store,
            project,
            name,
            pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL),
            ds,
            split_fingerprint=split.fingerprint,
            objective_version=objective_version,
            run_id=run_id,
            when=now,
            beside={".judged.json": json.dumps(verdict, default=str)},
        )
        store.set_alias(
            project.project, "challenger", saved["id"], now, note=f"retrained with {added} labels"
        )
    finally:
        store.close()
    return int(saved["version"])
