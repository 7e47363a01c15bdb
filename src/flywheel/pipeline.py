"""The main job, ``flywheel run``: project -> data -> split -> ladder + candidates -> ranking.

Each stage is a plain function over typed values (see DESIGN.md's data flow);
this module only wires them. Everything that can be wrong with the user's input
(the project file, the data, import paths, prediction files, the store's
version) is checked *before* the first model is fitted and before anything is
written, so a bad input costs seconds and never changes what is stored.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from flywheel._version import __version__
from flywheel.data import Dataset, Split, load_dataset, split_dataset
from flywheel.evaluate import Evaluation, compare_evaluations, evaluate
from flywheel.execution import Executor, LocalExecutor, Outcome, Task
from flywheel.humans import HumanLevel, measure_annotators
from flywheel.ladder import NeedML, build_ladder, declared_baselines, default_margin, ladder_table, need_ml
from flywheel.metrics import is_metric
from flywheel.models import Candidate, resolve_candidates
from flywheel.objective import (
    Objective,
    Ranking,
    Verdict,
    distinguish,
    judge,
    make_objective,
    rank,
    weight_sensitivity,
    with_composite,
)
from flywheel.project import Project, load_project
from flywheel.store import Store, open_store

__all__ = [
    "Plan",
    "Progress",
    "RunResult",
    "default_metrics",
    "plan",
    "run",
]

# Called with (stage description, step index, total steps) as the job advances.
Progress = Callable[[str, int, int], None]

_DEFAULT_METRICS = {
    "binary": ["accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss"],
    "multiclass": ["accuracy", "balanced_accuracy", "f1_macro", "log_loss"],
    "regression": ["rmse", "mae", "r2"],
}


def default_metrics(task: str, objective: Objective) -> list[str]:
    """The objective's metrics first, then the task's usual ones, without repeats."""
    return list(dict.fromkeys([*objective.quality_metrics(), *_DEFAULT_METRICS[task]]))


@dataclass(frozen=True, eq=False)
class RunResult:
    """Everything one run measured, with the fingerprints that produced it."""

    run_id: str
    project: str
    started_at: datetime
    finished_at: datetime
    flywheel_version: str
    data: dict[str, Any]
    split: dict[str, Any]
    objective: Objective
    metrics: list[str]
    evaluations: list[Evaluation]
    ranking: Ranking
    verdict: Verdict
    declared: list[dict[str, Any]]
    ladder: list[dict[str, Any]] = field(default_factory=list)
    need_ml: NeedML | None = None
    sensitivity: list[dict[str, Any]] = field(default_factory=list)
    human: HumanLevel | None = None
    report_path: Path | None = None
    notes: list[str] = field(default_factory=list)

    def evaluation(self, name: str) -> Evaluation:
        """The evaluation of the model called ``name``."""
        return next(e for e in self.evaluations if e.name == name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the whole result."""
        return {
            "run_id": self.run_id,
            "project": self.project,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "flywheel_version": self.flywheel_version,
            "data": self.data,
            "split": self.split,
            "objective": self.objective.to_dict(),
            "metrics": self.metrics,
            "evaluations": [e.to_dict() for e in self.evaluations],
            "ranking": self.ranking.to_dict(),
            "verdict": self.verdict.to_dict(),
            "declared": self.declared,
            "ladder": self.ladder,
            "need_ml": self.need_ml.to_dict() if self.need_ml else None,
            "sensitivity": self.sensitivity,
            "human": self.human.to_dict() if self.human else None,
            "report_path": str(self.report_path) if self.report_path else None,
            "notes": self.notes,
        }


def _new_run_id(now: datetime) -> str:
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _where(project: Project) -> str:
    try:
        return os.path.relpath(project.path)
    except ValueError:
        return str(project.path)


@dataclass(frozen=True, eq=False)
class Plan:
    """Everything checked and resolved before the first fit."""

    project: Project
    dataset: Dataset
    split: Split
    objective: Objective
    candidates: list[Candidate]
    human: HumanLevel | None = None


def plan(project: Project, *, candidates: bool = True) -> Plan:
    """Every check that needs no fitting: data, split, objective against the task, imports."""
    where = _where(project)
    ds = load_dataset(project.data, project.root, where=where)
    split = split_dataset(ds, project.data.split, where=where)
    objective = make_objective(
        project.objective, ds.task, project.objective_fingerprint(), where, classes=ds.classes
    )
    needed = np.concatenate([split.valid, split.test])
    entrants = build_ladder(project, ds, where)
    if candidates:
        entrants += resolve_candidates(project, ds, needed, where)
    human = None
    spec = project.baselines.human
    if spec is not None and spec.annotators:
        human = measure_annotators(
            project.resolve(spec.annotators), ds, objective.primary.name, given=spec.annotators, where=where
        )
    return Plan(project, ds, split, objective, entrants, human)


def _evaluate_all(
    plan_: Plan, metrics: list[str], executor: Executor, progress: Progress | None
) -> list[Evaluation]:
    """Every rung and candidate as an independent task, each within its time budget."""
    budget = plan_.project.baselines.time_budget_s
    # The slow fits (learned models) start first, so the cheap rungs fill the gaps around them;
    # results come back in ladder order whatever the order they ran in.
    order = sorted(range(len(plan_.candidates)), key=lambda i: (plan_.candidates[i].stage != "model", -i))
    candidates = [plan_.candidates[i] for i in order]
    tasks = [
        Task(
            c.name,
            partial(
                evaluate, c, plan_.dataset, plan_.split, metrics, levels=plan_.objective.confidence_levels()
            ),
            budget,
        )
        for c in candidates
    ]

    def done(outcome: Outcome, finished: int, total: int) -> None:
        if progress:
            progress(f"done {outcome.name}", finished, total)

    if progress:
        progress("fitting " + ", ".join(c.name for c in plan_.candidates[:3]) + " …", 0, len(tasks))
    ran = executor.run(tasks, done)
    outcomes: list[Outcome] = [ran[0]] * len(ran)
    for position, outcome in zip(order, ran, strict=True):
        outcomes[position] = outcome
    evaluations = []
    for cand, outcome in zip(plan_.candidates, outcomes, strict=True):
        if outcome.error is not None or not isinstance(outcome.value, Evaluation):
            evaluations.append(
                Evaluation(
                    cand.name,
                    cand.role,
                    cand.kind,
                    cand.description,
                    cand.stage,
                    error=outcome.error or "returned no evaluation",
                )
            )
        else:  # the wall time of the whole task: fit, predictions, intervals
            value = outcome.value
            evaluations.append(replace(value, systems={**value.systems, "wall_time_s": outcome.elapsed_s}))
    return evaluations


def _register(db: Store, proj: Project, result: RunResult) -> None:
    """Save each fitted candidate as a new version when it changed; the best candidate becomes challenger.

    An artifact identical to the latest version of its name (same bytes) is not saved again.
    """
    folder = proj.store_dir / "models"
    best_candidate = next(
        (s.name for s in result.ranking.standings if s.role == "candidate" and s.feasible), None
    )
    for ev in result.evaluations:
        if ev.artifact is None:
            continue
        latest = db.latest_model(proj.project, ev.name)
        same = (
            latest is not None
            and latest["data_fingerprint"] == result.data["fingerprint"]
            and Path(latest["path"]).is_file()
            and Path(latest["path"]).read_bytes() == ev.artifact
        )
        if same:
            saved = latest
        else:
            version = db.next_model_version(proj.project, ev.name)
            path = folder / ev.name / f"v{version}.pkl"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(ev.artifact)
            tmp.replace(path)  # atomic: a reader never sees half an artifact
            saved = db.register_model(
                proj.project,
                ev.name,
                version,
                path,
                result.data["fingerprint"],
                result.split["fingerprint"],
                result.objective.version,
                result.run_id,
                result.finished_at,
            )
        if ev.name == best_candidate and saved is not None:
            db.set_alias(
                proj.project,
                "challenger",
                saved["id"],
                result.finished_at,
                note=f"best candidate of run {result.run_id}",
            )


def _ceilings(declared: list[dict[str, Any]], human: HumanLevel | None) -> dict[str, float]:
    """Human level per metric, where known: the ceiling a weighted objective normalises to."""
    out = {m: v for d in declared if d["kind"] == "human" for m, v in d["values"].items()}
    if human is not None:
        out[human.metric] = human.value
    return out


def _with_comparisons(ranking: Ranking, evaluations: list[Evaluation], plan_: Plan) -> Ranking:
    """Compare the best model with every other ranked model on the same rows."""
    if ranking.best is None or not is_metric(plan_.objective.optimize.name):
        return ranking  # a weighted objective has no paired test of its own
    by_name = {e.name: e for e in evaluations}
    best = by_name[ranking.best]
    comparisons = {}
    for standing in ranking.standings:
        if standing.name == ranking.best:
            continue
        comp = compare_evaluations(
            best,
            by_name[standing.name],
            plan_.dataset,
            plan_.split,
            ranking.selection_split,
            plan_.objective.optimize.name,
        )
        if comp is not None:
            comparisons[standing.name] = comp
    return distinguish(ranking, comparisons)


def run(
    project: Project | str | os.PathLike[str] = ".",
    *,
    store: Store | None = None,
    save: bool = True,
    report: bool = True,
    progress: Progress | None = None,
    executor: Executor | None = None,
    candidates: bool = True,
) -> RunResult:
    """Run the main job: evaluate the ladder and the candidates, rank, judge, store, report.

    Parameters
    ----------
    project
        A loaded :class:`Project` or the path of a project file or folder.
    store
        An open store; by default the project's ``.flywheel/`` store.
    save, report
        Whether to write the run to the store and the HTML report to disk.
    progress
        Called as each stage starts, for a progress display.
    executor
        Where the fits run (default: local processes, one per core).
    candidates
        False runs the baseline ladder alone (``flywheel baselines``).

    Raises
    ------
    FlywheelError
        For any mistake in the inputs, before anything is fitted or written.
    """
    proj = project if isinstance(project, Project) else load_project(project)
    started = datetime.now(UTC)
    plan_ = plan(proj, candidates=candidates)
    own_store = store is None and save
    db = open_store(proj.store_dir) if own_store else store  # version-checked before any fitting
    try:
        metrics = default_metrics(plan_.dataset.task, plan_.objective)
        evaluations = _evaluate_all(plan_, metrics, executor or LocalExecutor(), progress)
        selection = "valid" if len(plan_.split.valid) else "test"
        declared, declared_notes = declared_baselines(proj, plan_.dataset.task)
        sensitivity: list[dict[str, Any]] = []
        if plan_.objective.weighted:
            ceilings = _ceilings(declared, plan_.human)
            evaluations = with_composite(evaluations, plan_.objective, ceilings)
            sensitivity = weight_sensitivity(evaluations, plan_.objective, ceilings, selection)
        ranking = _with_comparisons(rank(evaluations, plan_.objective, selection), evaluations, plan_)
        primary = plan_.objective.primary
        margin = proj.baselines.margin if proj.baselines.margin else default_margin(primary)
        verdict_ml = need_ml(evaluations, plan_.dataset, plan_.split, primary, selection, margin)
        human = plan_.human.to_dict() if plan_.human else None
        table = ladder_table(evaluations, plan_.objective.optimize, declared, human)
        notes = [] if selection == "valid" else ["no valid split: models are ranked on test"]
        notes += declared_notes
        result = RunResult(
            run_id=_new_run_id(started),
            project=proj.project,
            started_at=started,
            finished_at=datetime.now(UTC),
            flywheel_version=__version__,
            data=plan_.dataset.summary(),
            split=plan_.split.summary(),
            objective=plan_.objective,
            metrics=metrics,
            evaluations=evaluations,
            ranking=ranking,
            verdict=judge(ranking, plan_.objective),
            declared=declared,
            ladder=table,
            need_ml=verdict_ml,
            sensitivity=sensitivity,
            human=plan_.human,
            notes=notes,
        )
        if db is not None and save:
            previous = db.record_objective(
                proj.project,
                plan_.objective.version,
                plan_.objective.to_dict(),
                proj.objective.reason,
                started,
            )
            if previous is not None:
                result.notes.append(
                    f"the objective changed since the last run ({previous} -> "
                    f"{plan_.objective.version}); `flywheel objective log` shows its history"
                )
        if report:
            from flywheel.report import write_report

            result = replace(result, report_path=write_report(result, proj.store_dir / "reports"))
        if db is not None and save:
            db.save_run(result)
            _register(db, proj, result)
        return result
    finally:
        if own_store and db is not None:
            db.close()
