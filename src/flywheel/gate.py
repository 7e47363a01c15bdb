"""The gate: a candidate against the champion (or the best baseline), paired on the same test rows.

This is the regression test an ML project needs in CI. The candidate passes
when it beats the reference by the configured margin (``gate.policy:
superiority``) or loses by no more than the margin (``non-inferiority``), and
every constraint of the objective holds; it fails with each reason; and it is
inconclusive when the interval straddles the margin, with the minimum
detectable effect and about how many more test rows would decide. The
champion is the registered artifact the ``champion`` alias points at; it is
refused when it was trained on data with another fingerprint.

Exit codes of ``flywheel gate``: 0 pass, 1 fail, 3 inconclusive, 2 bad input.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from flywheel.data import load_dataset, split_dataset
from flywheel.errors import FlywheelError, StoreError
from flywheel.evaluate import Evaluation
from flywheel.execution import Executor
from flywheel.metrics import compare, get_metric
from flywheel.pipeline import RunResult, run
from flywheel.project import Project, load_project
from flywheel.store import open_store

__all__ = [
    "EXIT_CODES",
    "GateResult",
    "gate",
    "promote",
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


def _where(project: Project) -> str:
    try:
        return os.path.relpath(project.path)
    except ValueError:
        return str(project.path)


def _checked_champion(project: Project) -> dict[str, Any] | None:
    """The champion, verified before anything runs: its artifact exists and matches today's data.

    Checking first means a bad champion costs one line and changes nothing in the store.
    """
    db_file = project.store_dir / "flywheel.db"
    if not db_file.exists():
        return None
    store = open_store(db_file, create=False)
    try:
        champion = store.get_alias(project.project, "champion")
    finally:
        store.close()
    if champion is None:
        return None
    where = _where(project)
    name = f"{champion['name']} v{champion['version']}"
    path = Path(champion["path"])
    if not path.is_file():
        raise StoreError(f"{where}: the champion {name} has no artifact at {path}; promote another model")
    fingerprint = load_dataset(project.data, project.root, where=where).fingerprint
    if champion["data_fingerprint"] != fingerprint:
        raise StoreError(
            f"{where}: the champion {name} was trained on data {champion['data_fingerprint']}, the project's "
            f"data is now {fingerprint}; retrain it or promote a model trained on this data"
        )
    return champion


def _champion_predictions(project: Project, champion: dict[str, Any], metric: str) -> tuple[str, np.ndarray]:
    """Test-split predictions (labels or scores) of the verified champion."""
    where = _where(project)
    name = f"{champion['name']} v{champion['version']}"
    path = Path(champion["path"])
    with path.open("rb") as fh:
        model = pickle.load(fh)
    ds = load_dataset(project.data, project.root, where=where)
    split = split_dataset(ds, project.data.split, where=where)
    rows = ds.X.iloc[split.test]
    if get_metric(metric).needs == "scores":
        if not hasattr(model, "predict_proba"):
            raise FlywheelError(f"{where}: the champion {name} gives no class scores, which {metric} needs")
        return name, np.asarray(model.predict_proba(rows))
    return name, np.asarray(model.predict(rows))


def _reference(result: RunResult) -> Evaluation:
    """The best baseline rung on the selection split."""
    best = next((s for s in result.ranking.standings if s.role == "baseline"), None)
    if best is None:
        raise FlywheelError("flywheel gate: no champion and no baseline to compare with")
    return result.evaluation(best.name)


def gate(
    path: str | os.PathLike[str] = ".",
    *,
    candidate: str | None = None,
    against: Literal["champion", "best-baseline"] = "champion",
    executor: Executor | None = None,
) -> GateResult:
    """Run the project, then judge ``candidate`` (default: the best candidate model) against the reference."""
    project = load_project(path)
    verified = _checked_champion(project) if against == "champion" else None
    result = run(project, executor=executor, diagnose=False)  # the gate needs no diagnosis: CI time
    metric = result.objective.primary.name
    candidates = [s.name for s in result.ranking.standings if s.role == "candidate"]
    name = candidate or (candidates[0] if candidates else None)
    if name is None:
        raise FlywheelError(f"{_where(project)}: no candidate model to gate; add one under models:")
    known = [e.name for e in result.evaluations if e.role == "candidate"]
    if name not in known:
        raise FlywheelError(
            f"flywheel gate: --candidate must be one of {', '.join(known) or 'none'}; got {name!r}"
        )
    cand = result.evaluation(name)
    if not cand.ok:
        raise FlywheelError(f"flywheel gate: candidate {name!r} failed: {cand.error}")
    needs_scores = get_metric(metric).needs == "scores"
    mine = cand.scores.get("test") if needs_scores else cand.predictions.get("test")
    notes: list[str] = []
    champion = _champion_predictions(project, verified, metric) if verified is not None else None
    theirs: np.ndarray | None
    if champion is not None:
        ref_name, theirs = champion
    else:
        if against == "champion":
            notes.append("no champion yet: compared with the best baseline")
        ref = _reference(result)
        ref_name = ref.name
        theirs = ref.scores.get("test") if needs_scores else ref.predictions.get("test")
    if mine is None or theirs is None:
        raise FlywheelError(f"flywheel gate: {metric} needs class scores that {name} or {ref_name} lacks")
    ds = load_dataset(project.data, project.root, where=_where(project))
    split = split_dataset(ds, project.data.split, where=_where(project))
    classes = None if ds.classes is None else np.asarray(ds.classes)
    policy = project.gate
    margin = policy.margin if policy.policy == "superiority" else -policy.margin
    comp = compare(ds.y[split.test], mine, theirs, metric, margin=margin, classes=classes).to_dict()
    standing = next(s for s in result.ranking.standings if s.name == name)
    reasons = [f"constraint: {v.describe()}" for v in standing.violations]
    shown = (
        f"{name} vs {ref_name}: {metric} improvement {comp['improvement']:+.4f} "
        f"[{comp['low']:+.4f}, {comp['high']:+.4f}] on {comp['n']} test rows, {policy.policy} margin "
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
        more = comp.get("more_rows_needed")
        reasons.insert(
            0,
            f"not decided: {shown}; minimum detectable effect {comp['min_detectable_effect']:.4f}"
            + (f"; about {more:,} more test rows would decide" if more else ""),
        )
        if standing.feasible is None:
            reasons.append("some constraints could not be checked")
        status = "inconclusive"
    return GateResult(status, name, ref_name, metric, reasons, comp, result.run_id, notes + result.notes)


def _retrained_verdict(project: Project, name: str) -> GateResult | None:
    """The judgement `flywheel retrain` made of NAME's newest version, if that version was retrained.

    A retrained model was fitted on feedback labels too, so rerunning the project would not
    reproduce it: it is judged on the frozen test split plus fresh traffic when it is made.
    """
    store = open_store(project.store_dir)
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
    import json

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


def promote(
    name: str, path: str | os.PathLike[str] = ".", *, force: bool = False, executor: Executor | None = None
) -> tuple[GateResult | None, dict[str, Any]]:
    """Move ``champion`` to the newest artifact of ``name`` if the gate passes (or ``force``).

    Raises
    ------
    FlywheelError
        When ``name`` has no saved artifact; a failed gate is returned, not raised.
    """
    project = load_project(path)
    verdict = None if force else _retrained_verdict(project, name)
    if verdict is None and not force:
        verdict = gate(project.path, candidate=name, executor=executor)
    store = open_store(project.store_dir)
    try:
        if force and store.latest_model(project.project, name) is None:
            run(project, executor=executor, diagnose=False)  # make sure an artifact of this model exists
        model = store.latest_model(project.project, name)
        if model is None:
            raise FlywheelError(
                f"flywheel promote: {name!r} has no saved artifact; only fitted candidates do"
            )
        if verdict is not None and verdict.status != "pass":
            return verdict, model
        note = "forced past the gate" if force else f"gate passed in run {verdict.run_id if verdict else ''}"
        store.set_alias(project.project, "champion", model["id"], datetime.now(UTC), forced=force, note=note)
        return verdict, model
    finally:
        store.close()
