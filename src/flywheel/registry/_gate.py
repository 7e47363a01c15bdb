"""The gate's judgement: a candidate against the champion (or best baseline), paired on the same test rows.

This is the regression test an ML project needs in CI. The candidate passes
when it beats the reference by the configured margin (``gate.policy:
superiority``) or loses by no more than the margin (``non-inferiority``), and
every constraint of the objective holds; it fails with each reason; and it is
inconclusive when the interval straddles the margin, with the minimum
detectable effect and about how many more test rows would decide. The
champion is the registered artifact the ``champion`` alias points at; it is
refused when it was trained on data with another fingerprint.

This module judges what it is given; :func:`flywheel.pipeline.gate` runs the project first.
Exit codes of ``flywheel gate``: 0 pass, 1 fail, 3 inconclusive, 2 bad input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from flywheel.data import load_dataset, split_dataset
from flywheel.errors import FlywheelError, StoreError
from flywheel.evaluation import Standing, load_artifact, read_artifact
from flywheel.metrics import compare, get_metric, rows_to_decide
from flywheel.project import GateSpec, Project
from flywheel.registry._store import has_store, project_store

__all__ = [
    "EXIT_CODES",
    "GateResult",
    "checked_champion",
    "champion_predictions",
    "judge_candidate",
    "retrained_verdict",
]

EXIT_CODES = {"pass": 0, "fail": 1, "inconclusive": 3}


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict with the paired comparison and every reason behind it."""

    status: Literal["pass", "fail", "inconclusive"]
    candidate: str
    against: str
    metric: str
    reasons: list[str]
    comparison: dict[str, Any]
    run_id: str
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 pass, 1 fail, 3 inconclusive."""
        return EXIT_CODES[self.status]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {**self.__dict__, "exit_code": self.exit_code}


def checked_champion(project: Project) -> dict[str, Any] | None:
    """The champion, verified before anything runs: its artifact exists and matches today's data.

    Checking first means a bad champion costs one line and changes nothing in the store.
    """
    if not has_store(project):
        return None
    store = project_store(project, create=False)
    try:
        champion = store.get_alias(project.project, "champion")
    finally:
        store.close()
    if champion is None:
        return None
    where = project.where
    name = f"{champion['name']} v{champion['version']}"
    path = Path(champion["path"])
    if not path.is_file():
        raise StoreError(f"{where}: the champion {name} has no artifact at {path}; promote another model")
    read_artifact(champion, "champion")  # refused in one line when it is not the file that was saved
    fingerprint = load_dataset(project.data, project.root, where=where).fingerprint
    if champion["data_fingerprint"] != fingerprint:
        raise StoreError(
            f"{where}: the champion {name} was trained on data {champion['data_fingerprint']}, the project's "
            f"data is now {fingerprint}; retrain it or promote a model trained on this data"
        )
    return champion


def champion_predictions(project: Project, champion: dict[str, Any], metric: str) -> tuple[str, np.ndarray]:
    """Test-split predictions (labels or scores) of the verified champion."""
    where = project.where
    name = f"{champion['name']} v{champion['version']}"
    model = load_artifact(project, champion, "champion")
    ds = load_dataset(project.data, project.root, where=where)
    split = split_dataset(ds, project.data.split, where=where)
    rows = ds.X.iloc[split.test]
    if get_metric(metric).needs == "scores":
        if not hasattr(model, "predict_proba"):
            raise FlywheelError(f"{where}: the champion {name} gives no class scores, which {metric} needs")
        return name, np.asarray(model.predict_proba(rows))
    return name, np.asarray(model.predict(rows))


def retrained_verdict(project: Project, name: str) -> GateResult | None:
    """The judgement `flywheel retrain` made of NAME's newest version, if that version was retrained.

    A retrained model was fitted on feedback labels too, so rerunning the project would not
    reproduce it: it is judged on the frozen test split plus fresh traffic when it is made.
    """
    store = project_store(project)
    try:
        latest = store.latest_model(project.project, name)
    finally:
        store.close()
    if latest is None or not str(latest["run_id"]).startswith("retrain-"):
        return None
    judged = Path(latest["path"]).with_suffix(".judged.json")
    if not judged.exists():
        raise FlywheelError(
            f"flywheel promote: {name} v{latest['version']} has no judgement; run `flywheel retrain` again"
        )
    verdict = json.loads(judged.read_text(encoding="utf-8"))
    return GateResult(
        verdict["status"],
        name,
        "champion",
        verdict["metric"],
        [verdict["reason"]],
        verdict["comparison"],
        str(latest["run_id"]),
    )


def judge_candidate(
    candidate: str,
    reference: str,
    y: np.ndarray,
    mine: np.ndarray,
    theirs: np.ndarray,
    *,
    metric: str,
    policy: GateSpec,
    standing: Standing,
    classes: np.ndarray | None,
    run_id: str,
    notes: list[str],
    rows: str = "test",
) -> GateResult:
    """Pass, fail or inconclusive for ``candidate`` against ``reference`` on the same rows ``y``.

    ``mine`` and ``theirs`` are both models' labels (or class scores when ``metric`` needs them);
    ``standing`` is the candidate's place in the objective's ranking, with the constraints it broke.
    """
    margin = policy.margin if policy.policy == "superiority" else -policy.margin
    comp = compare(y, mine, theirs, metric, margin=margin, classes=classes).to_dict()
    reasons = [f"constraint: {v.describe()}" for v in standing.violations if v.status == "broken"]
    shown = (
        f"{candidate} vs {reference}: {metric} improvement {comp['improvement']:+.4f} "
        f"[{comp['low']:+.4f}, {comp['high']:+.4f}] on {comp['n']} {rows} rows, {policy.policy} margin "
        f"{policy.margin:g}"
    )
    if comp["verdict"] == "worse":
        reasons.insert(0, f"loses: {shown}")
    status: Literal["pass", "fail", "inconclusive"]
    if comp["verdict"] == "worse" or standing.feasible is False:
        status = "fail"
    elif comp["verdict"] == "better" and standing.feasible:
        status, reasons = "pass", [f"wins: {shown}"]
    else:
        mde = comp["min_detectable_effect"]
        decide = rows_to_decide(comp, rows)
        reasons.insert(
            0,
            f"not decided: {shown}; "
            + (f"minimum detectable effect {mde:.4f}" if mde is not None else str(comp["note"]))
            + (f"; {decide}" if decide else ""),
        )
        reasons += [f"constraint {v.status}: {v.describe()}" for v in standing.violations]
        status = "inconclusive"
    return GateResult(status, candidate, reference, metric, reasons, comp, run_id, notes)
