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
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from flywheel._version import __version__
from flywheel.baselines import (
    HumanLevel,
    NeedML,
    build_ladder,
    declared_baselines,
    default_margin,
    ladder_table,
    measure_annotators,
    need_ml,
)
from flywheel.data import Dataset, Split, load_dataset, split_dataset
from flywheel.diagnosis import (
    Curve,
    Diagnosis,
    Forecast,
    Level,
    WeakClass,
    WeakSegment,
    bias_variance,
    forecast,
    measure_curve,
    next_actions,
    read_curve,
    read_history,
    weak_classes,
    weak_segments,
)
from flywheel.errors import FlywheelError, ProjectError
from flywheel.evaluation import (
    Candidate,
    Evaluation,
    Objective,
    Ranking,
    Verdict,
    compare_evaluations,
    distinguish,
    evaluate,
    judge,
    make_objective,
    rank,
    resolve_candidates,
    weight_sensitivity,
    with_composite,
)
from flywheel.execution import Executor, LocalExecutor, Outcome, Task
from flywheel.metrics import MetricRef, is_metric
from flywheel.project import Project, load_project
from flywheel.registry import Store, open_store
from flywheel.results import RunResult
from flywheel.scoping import assess, infer_phase

__all__ = [
    "Plan",
    "Progress",
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


def _new_run_id(now: datetime) -> str:
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


@dataclass(frozen=True, eq=False)
class Plan:
    """Everything checked and resolved before the first fit."""

    project: Project
    dataset: Dataset
    split: Split
    objective: Objective
    candidates: list[Candidate]
    human: HumanLevel | None = None
    history: Curve | None = None


def plan(project: Project, *, candidates: bool = True) -> Plan:
    """Every check that needs no fitting: data, split, objective against the task, imports."""
    where = project.where
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
    history = None
    if project.diagnosis.history:
        given = project.diagnosis.history
        history = read_history(project.resolve(given), objective.primary, given=given, where=where)
    return Plan(project, ds, split, objective, entrants, human, history)


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


def _register(db: Store, proj: Project, result: RunResult, dataset: Dataset) -> None:
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
            from flywheel.evaluation import save_artifact

            save_artifact(path, ev.artifact, dataset)
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


def _level(ev: Evaluation, metric: str, split: str) -> Level | None:
    value = ev.value(metric, split)
    if value is None:
        return None
    low, high = ev.interval(metric, split) or (None, None)
    return Level(float(value), low, high)


def _human_level(plan_: Plan, declared: list[dict[str, Any]], metric: str) -> Level | None:
    """Human level on the optimized metric: measured from annotators, else declared."""
    if plan_.human is not None and plan_.human.metric == metric:
        h = plan_.human
        return Level(h.value, h.low, h.high, "measured")
    for d in declared:
        if d["kind"] == "human" and metric in d["values"]:
            low, high = d.get("intervals", {}).get(metric, (None, None))
            return Level(float(d["values"][metric]), low, high, "declared")
    return None


def _curve_model(plan_: Plan, ranking: Ranking, evaluations: list[Evaluation]) -> Candidate | None:
    """The model family the forecast follows: the best ranked model flywheel can refit."""
    fittable = {c.name: c for c in plan_.candidates if c.make is not None and c.stage == "model"}
    ok = {e.name for e in evaluations if e.ok}
    for s in ranking.standings:
        if s.name in fittable and s.name in ok:
            return fittable[s.name]
    return None


def _tolerance(margin: float, value: float | None) -> float:
    """The smallest difference worth acting on: the margin, or 1 % of the value for unbounded metrics."""
    if margin > 0:
        return margin
    return 0.01 * abs(value) if value else 0.0


def _forecast(
    plan_: Plan,
    ref: MetricRef,
    best: Evaluation | None,
    model: Candidate | None,
    executor: Executor,
    target: float | None,
) -> tuple[Curve | None, Forecast]:
    """Measure the learning curve of ``model`` and forecast the rows ``target`` needs."""
    spec = plan_.project.diagnosis
    split_name = "valid" if len(plan_.split.valid) else "test"
    unavailable = partial(Forecast, "unavailable", ref.name, target, cost_per_label=plan_.project.costs.label)
    if model is None:
        return None, unavailable(
            reason="no model flywheel can refit (rules and prediction files have no curve)"
        )
    valid_se = 0.0
    span = best.interval(ref.name, split_name) if best is not None else None
    if span is not None:
        valid_se = (span[1] - span[0]) / (2 * 1.959963984540054)
    try:
        curve = measure_curve(
            model,
            plan_.dataset,
            plan_.split,
            ref,
            sizes=spec.sizes,
            seeds=spec.seeds,
            executor=executor,
            budget_s=3 * plan_.project.baselines.time_budget_s,
            valid_se=valid_se,
        )
    except FlywheelError as exc:
        return None, unavailable(model=model.name, reason=str(exc))
    result = forecast(curve, target, n_train=len(plan_.split.train), cost_per_label=plan_.project.costs.label)
    return curve, result


def _diagnose(
    plan_: Plan,
    evaluations: list[Evaluation],
    ranking: Ranking,
    verdict: Verdict,
    verdict_ml: NeedML,
    declared: list[dict[str, Any]],
    curve: Curve | None,
    forecast_: Forecast | None,
) -> Diagnosis:
    """Bias/variance, the curve and history read against the baselines, weak spots, ranked actions."""
    ref = plan_.objective.primary
    ds, split = plan_.dataset, plan_.split
    split_name = ranking.selection_split
    by_name = {e.name: e for e in evaluations}
    best = by_name.get(ranking.best) if ranking.best else None
    notes: list[str] = []
    human = _human_level(plan_, declared, ref.name)
    simple = [
        e for e in evaluations if e.ok and e.stage != "model" and e.value(ref.name, split_name) is not None
    ]
    sign = 1.0 if ref.greater_is_better else -1.0
    top_simple = max(simple, key=lambda e: sign * float(e.value(ref.name, split_name) or 0.0), default=None)
    baseline = _level(top_simple, ref.name, split_name) if top_simple is not None else None
    valid_value = best.value(ref.name, split_name) if best is not None else None
    tol = _tolerance(plan_.project.baselines.margin or default_margin(ref), valid_value)
    bv = None
    if best is None:
        notes.append("no best model: nothing to diagnose")
    else:
        train, valid = _level(best, ref.name, "train"), _level(best, ref.name, split_name)
        if train is None or valid is None:
            notes.append(
                f"{best.name} has no training score (a rule or a prediction file): bias and variance "
                "need a model flywheel fits"
            )
        else:
            bv = bias_variance(
                ref,
                train=train,
                valid=valid,
                train_dev=_level(best, ref.name, "train_dev"),
                human=human,
                best_baseline=baseline,
                tolerance=tol,
                model=best.name,
            )
    base_value = baseline.value if baseline is not None else None
    human_value = human.value if human is not None else None
    findings = read_curve(curve, baseline=base_value, human=human_value, tolerance=tol) if curve else []
    history_findings = (
        read_curve(plan_.history, baseline=base_value, human=human_value, tolerance=tol)
        if plan_.history
        else []
    )
    classes: list[WeakClass] = []
    segments: list[WeakSegment] = []
    searched: dict[str, Any] = {}
    if best is not None and split_name in best.predictions:
        rows = split.valid if split_name == "valid" else split.test
        pred, proba = best.predictions[split_name], best.scores.get(split_name)
        y = ds.y[rows]
        if ds.classes is not None:
            classes = weak_classes(ref, y, pred, proba, ds.classes)
        kinds = {c: "numeric" for c in ds.columns.numeric} | {
            c: "categorical" for c in ds.columns.categorical
        }
        segments, searched = weak_segments(
            ref,
            ds.frame.iloc[rows].reset_index(drop=True),
            kinds,
            y,
            pred,
            proba,
            ds.classes,
            min_support=plan_.project.diagnosis.min_support,
            fdr=plan_.project.diagnosis.fdr,
        )
    target_met = verdict.status == "pass" if plan_.objective.target is not None else None
    actions = next_actions(
        bv=bv,
        findings=[*findings, *history_findings],
        forecast=forecast_,
        classes=classes,
        segments=segments,
        need_ml=verdict_ml.answer,
        target_met=target_met,
        best_simple=verdict_ml.best_simple,
    )
    return Diagnosis(
        ref.name,
        best.name if best is not None else None,
        split_name,
        bv,
        curve,
        findings,
        plan_.history,
        history_findings,
        classes,
        segments,
        searched,
        actions,
        notes,
    )


def _scope(proj: Project, db: Store | None, result: RunResult, frame: Any) -> RunResult:
    """The assessment and the lifecycle phase, with this run counted among the artifacts."""
    artifacts: dict[str, Any] = {"data_checked": True}
    runs: list[dict[str, Any]] = []
    champion = None
    events: list[dict[str, Any]] = []
    if db is not None:
        runs = db.run_summaries(proj.project)
        champion = db.get_alias(proj.project, "champion")
        events = db.phase_events(proj.project)
        artifacts.update(models=bool(db.list_models(proj.project)), champion=champion is not None)
    candidates = sum(e.role == "candidate" for e in result.evaluations)
    runs.append({"id": result.run_id, "started_at": result.started_at.isoformat(), "candidates": candidates})
    state = infer_phase(data_loads=True, runs=runs, champion=champion, events=events)
    assessment = assess(proj, result.to_dict(), frame=frame.head(2000), artifacts=artifacts)
    from flywheel.registry import flywheel_summary

    return replace(result, assessment=assessment, phase=state, flywheel=flywheel_summary(proj))


def run(
    project: Project | str | os.PathLike[str] = ".",
    *,
    store: Store | None = None,
    save: bool = True,
    report: bool = True,
    progress: Progress | None = None,
    executor: Executor | None = None,
    candidates: bool = True,
    diagnose: bool = True,
    forecast_curve: bool | None = None,
    target: float | None = None,
) -> RunResult:
    """Run the main job: evaluate the ladder and the candidates, rank, judge_candidate, store, report.

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
    diagnose
        Whether to diagnose the best model (bias/variance, weak spots, next actions).
    forecast_curve
        Whether to measure the learning curve and forecast the labels the target needs
        (default: the project's ``diagnosis.forecast``).
    target
        The forecast's target instead of the objective's.

    Raises
    ------
    FlywheelError
        For any mistake in the inputs, before anything is fitted or written.
    """
    proj = project if isinstance(project, Project) else load_project(project)
    started = datetime.now(UTC)
    plan_ = plan(proj, candidates=candidates)
    if target is not None:
        ref = plan_.objective.primary
        if not ref.lower <= target <= ref.upper:
            raise ProjectError(
                f"--target {target:g} is outside {ref.name}'s range [{ref.lower:g}, {ref.upper:g}]"
            )
    own_store = store is None and save
    db = open_store(proj.store_dir) if own_store else store  # version-checked before any fitting
    try:
        metrics = default_metrics(plan_.dataset.task, plan_.objective)
        executor = executor or LocalExecutor()
        evaluations = _evaluate_all(plan_, metrics, executor, progress)
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
        verdict = judge(ranking, plan_.objective)
        curve, forecast_ = None, None
        run_forecast = proj.diagnosis.forecast if forecast_curve is None else forecast_curve
        if diagnose and run_forecast:
            goal = (
                target
                if target is not None
                else (None if plan_.objective.weighted else plan_.objective.target)
            )
            if progress:
                progress("learning curve", len(evaluations), len(evaluations))
            best_ev = next((e for e in evaluations if e.name == ranking.best), None)
            curve, forecast_ = _forecast(
                plan_, primary, best_ev, _curve_model(plan_, ranking, evaluations), executor, goal
            )
        diagnosis = (
            _diagnose(plan_, evaluations, ranking, verdict, verdict_ml, declared, curve, forecast_)
            if diagnose
            else None
        )
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
            verdict=verdict,
            declared=declared,
            ladder=table,
            need_ml=verdict_ml,
            sensitivity=sensitivity,
            human=plan_.human,
            diagnosis=diagnosis,
            forecast=forecast_,
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
        if diagnose:
            result = _scope(proj, db, result, plan_.dataset.frame)
        if report:
            from flywheel.report import write_report

            result = replace(result, report_path=write_report(result, proj.store_dir / "reports"))
        if db is not None and save:
            db.save_run(result.record())
            _register(db, proj, result, plan_.dataset)
        return result
    finally:
        if own_store and db is not None:
            db.close()
