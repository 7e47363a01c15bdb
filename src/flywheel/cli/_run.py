"""Commands that run the project or read its history: run, baselines, diagnose, forecast, runs, objective.

The pipeline is imported inside ``run_with_progress``, never at module level, so that the CLI starts
without it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flywheel.cli._app import ExecutorOpt, JsonOpt, PathArg, WorkersOpt, err, out, user_errors
from flywheel.cli._render import cost_table, fmt, print_diagnosis, print_need_ml, print_result, render_ladder
from flywheel.cli._store import from_store

__all__ = [
    "baselines",
    "diagnose",
    "forecast",
    "objective_log",
    "run",
    "run_with_progress",
    "runs",
]


def run_with_progress(
    path: Path,
    *,
    quiet: bool,
    workers: int | None = None,
    executor: str | None = None,
    **options: Any,
) -> Any:
    """The pipeline's run on the executor ``executor`` names (a cluster it starts is shut down at the
    end, on error too), with a progress bar on a terminal."""
    from flywheel.execution import LocalExecutor, make_executor

    if not executor or executor == "local":
        LocalExecutor.warm_up()  # its imports overlap the pipeline's import and the data's loading
    from flywheel.pipeline import run as run_job
    from flywheel.project import load_project

    project = load_project(path)  # a mistake in the project is found before a cluster is started
    with make_executor(executor, workers) as where:
        if quiet or not err.is_terminal:
            return run_job(project, executor=where, **options)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("loading data", total=None)

            def progress(stage: str, step: int, total: int) -> None:
                bar.update(task, description=stage, completed=step, total=total)

            return run_job(project, progress=progress, executor=where, **options)


def run(
    path: PathArg = Path("."),
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
    executor: ExecutorOpt = None,
) -> None:
    """Evaluate the baselines and candidate models, rank them, store the run and write the report."""
    with user_errors():
        result = run_with_progress(path, quiet=as_json, workers=workers, executor=executor)
        if as_json:
            sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        else:
            print_result(result)


_BASELINE_KEYS = (
    "run_id",
    "project",
    "data",
    "split",
    "objective",
    "ladder",
    "need_ml",
    "human",
    "declared",
    "evaluations",
    "report_path",
)


def baselines(
    path: PathArg = Path("."),
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
    executor: ExecutorOpt = None,
) -> None:
    """Run the baseline ladder alone and answer "do we need ML?"."""
    with user_errors():
        result = run_with_progress(
            path, quiet=as_json, workers=workers, executor=executor, candidates=False, diagnose=False
        )
        if as_json:
            payload = {k: v for k, v in result.to_dict().items() if k in _BASELINE_KEYS}
            sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        else:
            out.print(render_ladder(result))
            print_need_ml(result)
            if result.report_path:
                out.print(f"report: {result.report_path}", soft_wrap=True)


TargetOpt = Annotated[
    float | None, typer.Option(help="Forecast for this target instead of the objective's target.")
]


def diagnose(
    path: PathArg = Path("."),
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
    executor: ExecutorOpt = None,
    forecast: Annotated[
        bool, typer.Option("--forecast/--no-forecast", help="Measure the learning curve and forecast.")
    ] = True,
) -> None:
    """What to do next: bias/variance against human level, the curve, weak classes and segments.

    Fits the project again (nothing is stored); `flywheel run` does the same and stores it.
    """
    with user_errors():
        result = run_with_progress(
            path,
            quiet=as_json,
            workers=workers,
            executor=executor,
            save=False,
            report=False,
            forecast_curve=forecast,
        )
        if as_json:
            whole = result.to_dict()
            payload = {"diagnosis": whole["diagnosis"], "forecast": whole["forecast"]}
            sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        else:
            print_diagnosis(result, full=True)


def forecast(
    path: PathArg = Path("."),
    target: TargetOpt = None,
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
    executor: ExecutorOpt = None,
) -> None:
    """How many labelled rows the target needs, with an interval, and what they cost."""
    with user_errors():
        result = run_with_progress(
            path,
            quiet=as_json,
            workers=workers,
            executor=executor,
            save=False,
            report=False,
            forecast_curve=True,
            target=target,
        )
        fc = result.forecast
        if as_json:
            curve = result.diagnosis.curve if result.diagnosis else None
            payload = {**fc.to_dict(), "curve": curve.to_dict() if curve is not None else None}
            sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        else:
            curve = result.diagnosis.curve if result.diagnosis else None
            if curve is not None:
                rows = " · ".join(f"{p['size']:,}: {p['valid']:.4g}" for p in curve.summary())
                out.print(
                    f"learning curve of {curve.model} ({curve.metric} on {curve.split}): {rows}",
                    soft_wrap=True,
                    markup=False,
                )
            if fc.weights:
                out.print(f"curve families: {fc.blend_text()}", soft_wrap=True, markup=False)
            out.print(fc.describe(), soft_wrap=True, markup=False)
            if fc.cost_curve:
                out.print(cost_table(fc))
        if not fc.available:
            raise typer.Exit(3)


def runs(
    path: Annotated[Path, typer.Argument(help="Project file or folder.")] = Path("."),
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many runs.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """List the project's run history, newest first."""
    with user_errors():
        project, rows = from_store(path, lambda store, name: store.list_runs(limit))
        if as_json:
            sys.stdout.write(json.dumps(rows, indent=2) + "\n")
            return
        if not rows:
            out.print("no runs yet; start one with `flywheel run`")
            return
        table = Table(title=f"{project.project} · runs", title_justify="left")
        for col in ("run (UTC time)", "best", "value", "verdict", "data"):
            table.add_column(col, justify="right" if col == "value" else "left", no_wrap=col != "best")
        for r in rows:
            table.add_row(
                r["id"],
                r["best_model"] or "—",
                f"{r['optimize']} {fmt(r['best_value'])}",
                r["verdict"],
                r["data_fingerprint"],
            )
        out.print(table)


def objective_log(
    path: PathArg = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """List every version of the objective, when it was first used, why, and how many runs it judged."""
    with user_errors():
        project, rows = from_store(path, lambda store, name: store.objective_log(name))
        if as_json:
            sys.stdout.write(json.dumps(rows, indent=2) + "\n")
            return
        if not rows:
            out.print("no objective recorded yet; it is recorded by `flywheel run`")
            return
        table = Table(title=f"{project.project} · objective history", title_justify="left")
        for col in ("version", "first used (UTC)", "formula", "runs", "reason"):
            table.add_column(col, justify="right" if col == "runs" else "left")
        for r in rows:
            formula = r["formula"]
            text = f"optimize {formula['optimize']}"
            if formula.get("target") is not None:
                text += f", target {formula['target']}"
            for metric, bound in formula.get("constraints", {}).items():
                text += f", {metric} " + " ".join(f"{k} {v}" for k, v in bound.items())
            table.add_row(
                r["version"], r["first_seen"][:16].replace("T", " "), text, str(r["runs"]), r["reason"] or ""
            )
        out.print(table)
