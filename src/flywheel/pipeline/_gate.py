"""The gate and promotion as a user runs them: run the project, then judge a candidate.

``flywheel gate`` is CI's regression test (exit 0 pass, 1 fail, 3 inconclusive, 2 bad input);
``flywheel promote`` moves ``champion`` only through it, or with ``--force`` (recorded). The
judgement itself, and the champion's checks, are :mod:`flywheel.registry`'s; a retrained
challenger was judged when it was made (on test plus fresh traffic), so promotion reads that
judgement instead of rerunning a project that would not reproduce it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from flywheel.data import load_dataset, split_dataset
from flywheel.errors import FlywheelError
from flywheel.evaluation import Evaluation, read_artifact
from flywheel.execution import Executor
from flywheel.metrics import get_metric
from flywheel.pipeline._run import run
from flywheel.project import load_project
from flywheel.registry import (
    GateResult,
    champion_predictions,
    checked_champion,
    has_store,
    judge_candidate,
    project_store,
    retrained_verdict,
)
from flywheel.results import RunResult

__all__ = [
    "gate",
    "judge_run",
    "promote",
    "promote_after_run",
]


def _reference(result: RunResult, notes: list[str]) -> Evaluation:
    """The best baseline by quality among those that meet every constraint (or are undecided on
    one, said in ``notes``); without any, the best baseline, with what it breaks."""
    baselines = [s for s in result.ranking.standings if s.role == "baseline"]
    if not baselines:
        raise FlywheelError("flywheel gate: no champion and no baseline to compare with")
    best = next((s for s in baselines if s.eligible), None)
    if best is None:
        best = baselines[0]
        notes.append(
            f"no baseline meets every constraint: compared with {best.name}, which "
            + "; ".join(v.describe() for v in best.violations)
        )
    elif best.undecided:
        notes.append(
            f"the reference {best.name} is undecided on " + "; ".join(v.describe() for v in best.undecided)
        )
    return result.evaluation(best.name)


def _known_models(project: Any, flag: str, name: str) -> None:
    """Refuse a model name the project file does not define, before anything runs or is stored."""
    names = [m.name for m in project.models]
    if name not in names:
        raise FlywheelError(
            f"flywheel {flag} must be one of the models in {project.where}: {', '.join(names) or 'none'}; "
            f"got {name!r}"
        )


def gate(
    path: str | os.PathLike[str] = ".",
    *,
    candidate: str | None = None,
    against: Literal["champion", "best-baseline"] = "champion",
    executor: Executor | None = None,
) -> GateResult:
    """Run the project, then judge ``candidate`` (default: the best candidate model) against the reference."""
    project = load_project(path)
    if candidate is not None:
        _known_models(project, "gate: --candidate", candidate)
    verified = checked_champion(project) if against == "champion" else None
    result = run(project, executor=executor, diagnose=False)  # the gate needs no diagnosis: CI time
    return judge_run(project, result, candidate=candidate, against=against, verified=verified)


def judge_run(
    project: Any,
    result: RunResult,
    *,
    candidate: str | None = None,
    against: Literal["champion", "best-baseline"] = "champion",
    verified: Any = None,
) -> GateResult:
    """The gate's judgement of ``candidate`` (default: the best eligible candidate) in a run just made."""
    metric = result.objective.primary.name
    candidates = [s.name for s in result.ranking.standings if s.role == "candidate"]
    eligible = [s.name for s in result.ranking.standings if s.role == "candidate" and s.eligible]
    name = candidate or next(iter(eligible or candidates), None)
    if name is None:
        raise FlywheelError(f"{project.where}: no candidate model to gate; add one under models:")
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
    champion = champion_predictions(project, verified, metric) if verified is not None else None
    theirs: np.ndarray | None
    if champion is not None:
        ref_name, theirs = champion
    else:
        if against == "champion":
            notes.append("no champion yet: compared with the best baseline")
        ref = _reference(result, notes)
        ref_name = ref.name
        theirs = ref.scores.get("test") if needs_scores else ref.predictions.get("test")
    if mine is None or theirs is None:
        raise FlywheelError(f"flywheel gate: {metric} needs class scores that {name} or {ref_name} lacks")
    where = project.where
    ds = load_dataset(project.data, project.root, where=where)
    split = split_dataset(ds, project.data.split, where=where)
    classes = None if ds.classes is None else np.asarray(ds.classes)
    standing = next(s for s in result.ranking.standings if s.name == name)
    return judge_candidate(
        name,
        ref_name,
        ds.y[split.test],
        mine,
        theirs,
        metric=metric,
        policy=project.gate,
        standing=standing,
        classes=classes,
        run_id=result.run_id,
        notes=notes + result.notes,
    )


def promote_after_run(project: Any, result: RunResult) -> tuple[GateResult | None, dict[str, Any] | None]:
    """Judge the run's best eligible candidate as the gate does and, if it passes, make it champion.

    What ``flywheel demo`` does after its run, so a newcomer's project has a champion to serve that
    got there through the gate (recorded as such), without running the project a second time.
    Nothing moves when there is a champion already, no candidate, or the gate does not pass.
    """
    if not any(s.role == "candidate" and s.eligible for s in result.ranking.standings):
        return None, None
    store = project_store(project)
    try:
        if store.get_alias(project.project, "champion") is not None:
            return None, None
        verdict = judge_run(project, result, against="best-baseline")
        model = store.latest_model(project.project, verdict.candidate)
        if verdict.status == "pass" and model is not None:
            note = f"gate passed in run {result.run_id}"
            store.set_alias(project.project, "champion", model["id"], datetime.now(UTC), note=note)
        return verdict, model
    finally:
        store.close()


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
    store = project_store(project, create=False) if has_store(project) else None
    try:
        saved = store is not None and store.latest_model(project.project, name) is not None
    finally:
        if store is not None:
            store.close()
    if not saved:
        _known_models(project, "promote: the model", name)
    verdict = None if force else retrained_verdict(project, name)
    if verdict is None and not force:
        verdict = gate(project.path, candidate=name, executor=executor)
    store = project_store(project)
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
        read_artifact(model, "flywheel promote:")  # never a missing or altered artifact as champion
        note = "forced past the gate" if force else f"gate passed in run {verdict.run_id if verdict else ''}"
        store.set_alias(project.project, "champion", model["id"], datetime.now(UTC), forced=force, note=note)
        return verdict, model
    finally:
        store.close()
