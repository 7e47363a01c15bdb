"""The main job, ``flywheel run``: project -> data -> split -> ladder + candidates -> ranking.

Each stage is a plain function over typed values (see DESIGN.md's data flow);
this module only wires them: the plan (``_plan``), evaluating all
(``_evaluate``), ranking (``_rank``), forecast and diagnosis (``_diagnose``),
scoping (``_scope``) and what is registered (``_register``). Everything that
can be wrong with the user's input (the project file, the data, import paths,
prediction files, the store's version) is checked *before* the first model is
fitted and before anything is written, so a bad input costs seconds and never
changes what is stored.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

from flywheel._version import __version__
from flywheel.diagnosis import Diagnosis, Forecast
from flywheel.execution import Executor, LocalExecutor
from flywheel.pipeline._diagnose import diagnose_best, forecast_labels
from flywheel.pipeline._evaluate import evaluate_all
from flywheel.pipeline._plan import Plan, Progress, check_target, default_metrics, plan
from flywheel.pipeline._rank import Ranked, rank_evaluations
from flywheel.pipeline._register import note_objective_change, register_artifacts
from flywheel.pipeline._scope import scope_run
from flywheel.project import Project, load_project
from flywheel.registry import Store, project_store
from flywheel.results import RunResult

__all__ = [
    "run",
]


def _new_run_id(now: datetime) -> str:
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _result(
    plan_: Plan,
    started: datetime,
    metrics: list[str],
    ranked: Ranked,
    diagnosis: Diagnosis | None,
    forecast_: Forecast | None,
) -> RunResult:
    """The run as it stands after judging, before it is scoped, reported and stored."""
    return RunResult(
        run_id=_new_run_id(started),
        project=plan_.project.project,
        started_at=started,
        finished_at=datetime.now(UTC),
        flywheel_version=__version__,
        data=plan_.dataset.summary(),
        split=plan_.split.summary(),
        objective=plan_.objective,
        metrics=metrics,
        evaluations=ranked.evaluations,
        ranking=ranked.ranking,
        verdict=ranked.verdict,
        declared=ranked.declared,
        ladder=ranked.ladder,
        need_ml=ranked.need_ml,
        sensitivity=ranked.sensitivity,
        human=plan_.human,
        diagnosis=diagnosis,
        forecast=forecast_,
        notes=ranked.notes,
    )


class _Clock:
    """Wall-clock seconds per stage: ``with clock("ladder"): ...`` adds to ``seconds["ladder"]``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + round(time.perf_counter() - began, 3)


def _report_and_store(
    proj: Project,
    plan_: Plan,
    result: RunResult,
    clock: _Clock,
    db: Store | None,
    report: bool,
    candidates: bool,
) -> RunResult:
    """Write the report (it shows the stages' times so far), then store the run and its artifacts."""
    if report:
        from flywheel.report import write_report

        # A ladder-only run (`flywheel baselines`) keeps its own page; latest.html is the full run's.
        folder = proj.store_dir / "reports"
        with clock("report"):
            result = replace(result, timings=dict(clock.seconds))
            result = replace(result, report_path=write_report(result, folder, latest=candidates))
    result = replace(result, timings=dict(clock.seconds))
    if db is not None:
        with clock("store"):
            db.save_run(result.record())
            register_artifacts(db, proj, result, plan_.dataset)
        result = replace(result, timings=dict(clock.seconds))
        db.set_timings(result.run_id, result.timings)  # the store's own time, stored too
    return result


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
        Where the fits run (default: local processes, one per core): every rung and candidate,
        and each of the learning curve's fits, is a task of its own.
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
    if executor is None or isinstance(executor, LocalExecutor):
        LocalExecutor.warm_up()  # the workers' imports overlap loading and splitting the data
    proj = project if isinstance(project, Project) else load_project(project)
    started = datetime.now(UTC)
    clock = _Clock()
    with clock("data"):
        plan_ = plan(proj, candidates=candidates)
        check_target(plan_, target)
    own_store = store is None and save
    db = project_store(proj) if own_store else store  # version-checked before any fitting
    try:
        metrics = default_metrics(plan_.dataset.task, plan_.objective)
        executor = executor or LocalExecutor()
        with clock("ladder and candidates"):
            ranked = rank_evaluations(plan_, evaluate_all(plan_, metrics, executor, progress))
        curve, forecast_ = None, None
        if diagnose and (proj.diagnosis.forecast if forecast_curve is None else forecast_curve):
            with clock("learning curve and forecast"):
                curve, forecast_ = forecast_labels(plan_, ranked, executor, target, progress)
        with clock("diagnosis"):
            diagnosis = diagnose_best(plan_, ranked, curve, forecast_) if diagnose else None
        result = _result(plan_, started, metrics, ranked, diagnosis, forecast_)
        if db is not None and save:
            note_objective_change(db, proj, plan_.objective, started, result.notes)
        if diagnose:
            with clock("scoping"):
                result = scope_run(proj, db, result, plan_.dataset.frame)
        return _report_and_store(proj, plan_, result, clock, db if save else None, report, candidates)
    finally:
        if own_store and db is not None:
            db.close()
