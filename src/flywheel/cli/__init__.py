"""The ``flywheel`` command line: every command is a thin call into one module.

Errors a user can fix print one line on stderr and exit with code 2; anything
else is an internal error, printed as one line with exit code 1 (set
``FLYWHEEL_DEBUG=1`` to see the traceback). A traceback is never the answer to
bad input.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flywheel._version import __version__
from flywheel.errors import FlywheelError

__all__ = [
    "app",
    "main",
]

app = typer.Typer(
    name="flywheel",
    help="Run ML projects the way the best teams do: baselines first, one metric, evidence.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except FlywheelError as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        if os.environ.get("FLYWHEEL_DEBUG"):
            raise
        line = (str(exc).strip().splitlines() or [""])[0]
        err.print(
            f"internal error: {type(exc).__name__}: {line} (set FLYWHEEL_DEBUG=1 for the "
            "traceback, and please report it)",
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


def _version(value: bool) -> None:
    if value:
        out.print(f"flywheel {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """flywheel: scope, baselines, one metric, and the data loop."""


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if abs(value) < 1e4 else f"{value:.4g}"


def _interval(bounds: tuple[float, float] | None) -> str:
    return "" if bounds is None else f"{bounds[0]:.3f}-{bounds[1]:.3f}"


def _versus_best(standing: Any, best: str | None) -> str:
    """How the best model compares with this one on the same rows (paired bootstrap)."""
    if standing.name == best:
        return "best"
    if standing.versus_best is None:
        return ""
    return "[yellow]≈[/]" if not standing.distinguishable else "[dim]<[/]"


def _constraint_status(s: Any) -> str:
    if s.feasible:
        return "[green]ok[/]"
    if s.feasible is None:
        return "[yellow]" + ", ".join(v.metric for v in s.violations) + " not measured[/]"
    return "[red]" + "; ".join(v.describe() for v in s.violations) + "[/]"


def _leaderboard(result: Any) -> Table:
    """Models by rank; columns beyond the essentials appear as the terminal gets wider."""
    metric = result.objective.optimize.name
    sel = result.ranking.selection_split
    wide = out.width >= 110
    others = [m for m in result.metrics if m != metric][: max(0, (out.width - 130) // 14)]
    table = Table(title=f"{result.project} · optimizing {metric} · ranked on {sel}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("model", no_wrap=True)
    table.add_column(sel, justify="right")
    table.add_column("95% CI", justify="right", no_wrap=True)
    table.add_column("vs best", no_wrap=True)
    table.add_column("test", justify="right")
    for m in others:
        table.add_column(m, justify="right")
    if wide:
        table.add_column("role")
        table.add_column("p95 ms", justify="right")
    table.add_column("constraints")
    by_name = {e.name: e for e in result.evaluations}
    for s in result.ranking.standings:
        e = by_name[s.name]
        extra = [s.role, _fmt(e.systems.get("latency_p95_ms"), 2)] if wide else []
        table.add_row(
            str(s.rank),
            s.name,
            _fmt(s.value),
            _interval(s.interval),
            _versus_best(s, result.ranking.best),
            _fmt(s.test_value),
            *[_fmt(e.value(m, sel)) for m in others],
            *extra,
            _constraint_status(s),
            style="bold" if s.name == result.ranking.best else ("dim" if s.role == "baseline" else None),
        )
    for d in result.declared:
        extra = [d["kind"], ""] if wide else []
        table.add_row(
            "",
            f"[magenta]{d['name']}[/]",
            "",
            "",
            "",
            _fmt(d["values"].get(metric)),
            *[_fmt(d["values"].get(m)) for m in others],
            *extra,
            "[magenta]declared[/]",
        )
    return table


_STEP_COLUMNS = (("latency_p95_ms", 2), ("size_mb", 3), ("fit_time_s", 2))


def _ladder(result: Any) -> Table:
    """Rungs, candidates and declared baselines on one scale, with what each step up costs."""
    metric = result.objective.optimize.name
    table = Table(
        title=f"baseline ladder · {metric} on test · gain = share of the headroom from dummy to ceiling",
        title_justify="left",
    )
    for col, justify in (
        ("rung", "left"),
        ("test", "right"),
        ("95% CI", "right"),
        ("gain", "right"),
        ("+p95 ms", "right"),
        ("+size MB", "right"),
        ("+fit s", "right"),
    ):
        table.add_column(col, justify=justify, no_wrap=col != "rung")  # type: ignore[arg-type]
    for row in result.ladder:
        if row.get("error"):
            table.add_row(row["name"], "[red]failed[/]", "", "", "", "", "")
            continue
        step = row.get("step") or {}
        gain = row.get("gain")
        name = row["name"] if row["role"] != "declared" else f"[magenta]{row['name']} (declared)[/]"
        table.add_row(
            name,
            _fmt(row["value"]),
            _interval((row["low"], row["high"]) if row.get("low") is not None else None),
            "" if gain is None else f"{gain:.0%}",
            *[("" if m not in step else f"{step[m]:+.{digits}f}") for m, digits in _STEP_COLUMNS],
        )
    return table


def _print_sensitivity(result: Any) -> None:
    """For a weighted objective: does the ranking survive each weight moving by ±20 %?"""
    if not result.sensitivity:
        return
    moves = [
        f"{row['metric']} {row['change']}: best becomes {row['best']}"
        for row in result.sensitivity
        if row["best_changes"]
    ]
    reorders = [
        f"{row['metric']} {row['change']}"
        for row in result.sensitivity
        if row["order_changes"] and not row["best_changes"]
    ]
    if not moves and not reorders:
        out.print("weights ±20%: the ranking does not move", soft_wrap=True)
        return
    if moves:
        out.print("weights ±20%: " + "; ".join(moves), soft_wrap=True, markup=False)
    if reorders:
        out.print(
            "weights ±20% reorder the ranking below the best: " + ", ".join(reorders),
            soft_wrap=True,
            markup=False,
        )


def _print_need_ml(result: Any) -> None:
    verdict = result.need_ml
    if verdict is None:
        return
    colour = {"yes": "green", "no": "red", "not yet clear": "yellow", "cannot tell": "yellow"}[verdict.answer]
    out.print(f"Do we need ML? [{colour}]{verdict.answer.upper()}[/] — {verdict.reason}", soft_wrap=True)


def _print_result(result: Any) -> None:
    out.print(_ladder(result))
    _print_need_ml(result)
    out.print(_leaderboard(result))
    if any(s.versus_best is not None for s in result.ranking.standings):
        out.print(
            "[dim]vs best: ≈ not distinguishable from the best on the same rows, < worse "
            "(paired bootstrap, 95%)[/]",
            soft_wrap=True,
        )
    for e in result.evaluations:
        if not e.ok:
            out.print(f"[red]failed[/] {e.name}: {e.error}", soft_wrap=True, markup=True)
    _print_sensitivity(result)
    _print_diagnosis(result)
    for note in result.notes:
        out.print(f"note: {note}", soft_wrap=True, markup=False)
    colour = {"pass": "green", "fail": "red", "inconclusive": "yellow"}[result.verdict.status]
    out.print(f"[{colour}]{result.verdict.status.upper()}[/] {result.verdict.reason}", soft_wrap=True)
    out.print(
        f"data {result.data['fingerprint']} · split {result.split['fingerprint']} · run {result.run_id}"
    )
    if result.report_path:
        out.print(f"report: {result.report_path}", soft_wrap=True)


def _print_actions(diagnosis: Any, limit: int = 5) -> None:
    if not diagnosis.actions:
        out.print("What to do next: nothing stands out", soft_wrap=True)
        return
    out.print("[bold]What to do next[/]")
    for i, action in enumerate(diagnosis.actions[:limit], start=1):
        gain = f" [dim](could win {action.gain:+.4g})[/]" if action.gain else ""
        out.print(f" {i}. {escape(action.title)}{gain} — {escape(action.why)}", soft_wrap=True)


def _print_diagnosis(result: Any, *, full: bool = False) -> None:
    """Bias/variance, the curve, weak classes and segments, the forecast, and the actions."""
    d = result.diagnosis
    if d is None:
        return
    bv = d.bias_variance
    if bv is not None:
        errors = " · ".join(
            f"{k.replace('_', '-')} {v[0]:.4g}"
            + (" (declared)" if k == "human" and bv.human_source == "declared" else "")
            for k, v in bv.errors.items()
        )
        out.print(f"bias/variance ({bv.model}, {bv.metric} error): {errors}", soft_wrap=True, markup=False)
        out.print(f"  → {bv.summary}", soft_wrap=True, markup=False)
        for note in bv.notes:
            out.print(f"  note: {note}", soft_wrap=True, markup=False)
    for f in [*d.curve_findings, *d.history_findings]:
        out.print(f"curve: {f.kind}: {f.text}", soft_wrap=True, markup=False)
    weak = [c for c in d.classes if c.weak] if not full else d.classes[:5]
    for c in weak:
        out.print(
            f"class {c.label}: recall {c.recall:.3f} [{c.recall_low:.3f}, {c.recall_high:.3f}] "
            f"on {c.support} rows" + (" (significantly below the others)" if c.weak else ""),
            soft_wrap=True,
            markup=False,
        )
    searched = d.searched
    if searched.get("tested"):
        out.print(
            f"weak segments: {len(d.segments)} found among {searched['tested']:,} slices tested "
            f"(FDR {searched['fdr']:g}, min {searched['min_support']} rows)",
            soft_wrap=True,
            markup=False,
        )
    for seg in d.segments[: 10 if full else 3]:
        out.print(
            f"  {seg.description}: {seg.rows} rows, error {seg.error:.3g} vs {seg.rest:.3g} elsewhere "
            f"(q={seg.q_value:.2g})",
            soft_wrap=True,
            markup=False,
        )
    if result.forecast is not None:
        out.print(f"forecast: {result.forecast.describe()}", soft_wrap=True, markup=False)
    _print_actions(d)


def _cost_table(forecast: Any) -> Table:
    table = Table(
        title=f"what each target costs · {forecast.metric} · {forecast.family} curve", title_justify="left"
    )
    for col in ("target", "training rows", f"{forecast.confidence:.0%} interval", "labels to buy", "cost"):
        table.add_column(col, justify="right")
    for row in forecast.cost_curve:
        low = "?" if row["needed_low"] is None else f"{row['needed_low']:,.0f}"
        high = "open" if row["needed_high"] is None else f"{row['needed_high']:,.0f}"
        buy = max(0.0, row["needed"] - forecast.n_train)
        table.add_row(
            f"{row['target']:.4g}",
            f"{row['needed']:,.0f}",
            f"{low}–{high}",
            f"{buy:,.0f}",
            "" if row["cost"] is None else f"{row['cost']:,.0f}",
        )
    return table


def _run_with_progress(
    path: Path,
    *,
    quiet: bool,
    workers: int | None = None,
    executor: str | None = None,
    **options: Any,
) -> Any:
    from flywheel.execution import make_executor
    from flywheel.pipeline import run as run_job

    where = make_executor(executor, workers)
    try:
        if quiet or not err.is_terminal:
            return run_job(path, executor=where, **options)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("loading data", total=None)

            def progress(stage: str, step: int, total: int) -> None:
                bar.update(task, description=stage, completed=step, total=total)

            return run_job(path, progress=progress, executor=where, **options)
    finally:
        close = getattr(where, "close", None)
        if close is not None:
            close()


PathArg = Annotated[Path, typer.Argument(help="Project file, or the folder holding flywheel.yaml.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
WorkersOpt = Annotated[int | None, typer.Option(min=1, help="Fits run at once (default: all cores).")]
ExecutorOpt = Annotated[
    str | None,
    typer.Option(help="Where fits run: local (default) or dask://HOST:PORT (extra flywheel[dask])."),
]


@app.command()
def run(
    path: PathArg = Path("."),
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
    executor: ExecutorOpt = None,
) -> None:
    """Evaluate the baselines and candidate models, rank them, store the run and write the report."""
    with _user_errors():
        result = _run_with_progress(path, quiet=as_json, workers=workers, executor=executor)
        if as_json:
            sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        else:
            _print_result(result)


@app.command()
def baselines(
    path: PathArg = Path("."),
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
    executor: ExecutorOpt = None,
) -> None:
    """Run the baseline ladder alone and answer "do we need ML?"."""
    with _user_errors():
        result = _run_with_progress(
            path, quiet=as_json, workers=workers, executor=executor, candidates=False, diagnose=False
        )
        if as_json:
            payload = {k: v for k, v in result.to_dict().items() if k in _BASELINE_KEYS}
            sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        else:
            out.print(_ladder(result))
            _print_need_ml(result)
            if result.report_path:
                out.print(f"report: {result.report_path}", soft_wrap=True)


TargetOpt = Annotated[
    float | None, typer.Option(help="Forecast for this target instead of the objective's target.")
]


@app.command()
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
    with _user_errors():
        result = _run_with_progress(
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
            _print_diagnosis(result, full=True)


@app.command()
def forecast(
    path: PathArg = Path("."),
    target: TargetOpt = None,
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
    executor: ExecutorOpt = None,
) -> None:
    """How many labelled rows the target needs, with an interval, and what they cost."""
    with _user_errors():
        result = _run_with_progress(
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
            sys.stdout.write(json.dumps(fc.to_dict(), indent=2, default=str) + "\n")
        else:
            curve = result.diagnosis.curve if result.diagnosis else None
            if curve is not None:
                rows = " · ".join(f"{p['size']:,}: {p['valid']:.4g}" for p in curve.summary())
                out.print(
                    f"learning curve of {curve.model} ({curve.metric} on {curve.split}): {rows}",
                    soft_wrap=True,
                    markup=False,
                )
            if fc.family:
                out.print(f"curve family: {fc.family} ({fc.formula}), chosen by extrapolation", markup=False)
            out.print(fc.describe(), soft_wrap=True, markup=False)
            if fc.cost_curve:
                out.print(_cost_table(fc))
        if not fc.available:
            raise typer.Exit(3)


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


def _from_store(
    path: Path, query: Callable[[Any, str], list[dict[str, Any]]]
) -> tuple[Any, list[dict[str, Any]]]:
    """Load the project and read from its store; a project with no store yet has no rows (none is made)."""
    from flywheel.project import load_project
    from flywheel.registry import DB_NAME, open_store

    project = load_project(path)
    db_file = project.store_dir / DB_NAME
    if not db_file.exists():
        return project, []
    store = open_store(db_file, create=False)
    try:
        return project, query(store, project.project)
    finally:
        store.close()


@app.command()
def runs(
    path: Annotated[Path, typer.Argument(help="Project file or folder.")] = Path("."),
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many runs.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """List the project's run history, newest first."""
    with _user_errors():
        project, rows = _from_store(path, lambda store, name: store.list_runs(limit))
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
                f"{r['optimize']} {_fmt(r['best_value'])}",
                r["verdict"],
                r["data_fingerprint"],
            )
        out.print(table)


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="Where to write flywheel.yaml.")] = Path("."),
    from_csv: Annotated[Path | None, typer.Option("--from-csv", help="A CSV to describe.")] = None,
    target: Annotated[str | None, typer.Option(help="The CSV's target column.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing flywheel.yaml.")] = False,
) -> None:
    """Write a commented flywheel.yaml (filled in from a CSV with --from-csv and --target)."""
    from flywheel.scoping import write_init

    with _user_errors():
        path = write_init(folder, csv=from_csv, target=target, force=force)
        out.print(f"wrote {path}; edit it, then run `flywheel run {folder}`", soft_wrap=True)


@app.command()
def demo(
    folder: Annotated[Path, typer.Option("--dir", help="Where to write the demo project.")] = Path(
        "flywheel-demo"
    ),
) -> None:
    """Write a demo project (handwritten digits on parcels) and run it."""
    from flywheel.scoping import write_demo

    with _user_errors():
        path = write_demo(folder)
        out.print(f"demo project written to {path}", soft_wrap=True)
        _print_result(_run_with_progress(path, quiet=False))


@app.command()
def gate(
    path: PathArg = Path("."),
    candidate: Annotated[
        str | None, typer.Option(help="The model to judge (default: the best candidate).")
    ] = None,
    against: Annotated[str, typer.Option(help="champion or best-baseline.")] = "champion",
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
) -> None:
    """Judge a candidate against the champion on the same test rows: exit 0 pass, 1 fail, 3 inconclusive."""
    from flywheel.execution import LocalExecutor
    from flywheel.pipeline import gate as run_gate

    with _user_errors():
        if against not in ("champion", "best-baseline"):
            raise FlywheelError(f"--against must be champion or best-baseline; got {against!r}")
        result = run_gate(
            path,
            candidate=candidate,
            against=against,  # type: ignore[arg-type]
            executor=LocalExecutor(workers),
        )
        if as_json:
            sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        else:
            colour = {"pass": "green", "fail": "red", "inconclusive": "yellow"}[result.status]
            out.print(
                f"[{colour}]{result.status.upper()}[/] {result.candidate} against {result.against}",
                soft_wrap=True,
            )
            for line in result.reasons + result.notes:
                out.print(f"  {line}", soft_wrap=True, markup=False)
    raise typer.Exit(result.exit_code)


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="The candidate model to make champion.")],
    path: PathArg = Path("."),
    force: Annotated[bool, typer.Option(help="Promote even if the gate does not pass (recorded).")] = False,
    workers: WorkersOpt = None,
) -> None:
    """Make NAME the champion if it passes the gate against the current one (exit 1 and why if not)."""
    from flywheel.execution import LocalExecutor
    from flywheel.pipeline import promote as run_promote

    with _user_errors():
        verdict, model = run_promote(name, path, force=force, executor=LocalExecutor(workers))
        if verdict is not None and verdict.status != "pass":
            err.print(
                f"refused: {name} does not pass the gate ({verdict.status}): {verdict.reasons[0]}",
                markup=False,
                soft_wrap=True,
            )
            raise typer.Exit(1)
        how = " (forced past the gate)" if force else ""
        out.print(f"champion is now {model['name']} v{model['version']}{how}", soft_wrap=True)


@app.command()
def alias(
    name: Annotated[str, typer.Argument(help="A saved model (its newest version).")],
    label: Annotated[str, typer.Argument(help="The alias to point at it, e.g. staging.")],
    path: PathArg = Path("."),
) -> None:
    """Point a user-named alias (staging, shadow, …) at the newest saved version of NAME."""
    from datetime import UTC, datetime

    from flywheel.project import load_project
    from flywheel.registry import open_store

    with _user_errors():
        if label in ("champion", "challenger"):
            raise FlywheelError(
                f"flywheel alias: {label} is set by flywheel (use `flywheel promote` for champion)"
            )
        if not label.replace("-", "").replace("_", "").isalnum():
            raise FlywheelError(f"flywheel alias: an alias is letters, digits, '-' or '_'; got {label!r}")
        project = load_project(path)
        store = open_store(project.store_dir)
        try:
            model = store.latest_model(project.project, name)
            if model is None:
                raise FlywheelError(f"flywheel alias: {name!r} has no saved artifact; run the project first")
            store.set_alias(project.project, label, model["id"], datetime.now(UTC), note="set by hand")
        finally:
            store.close()
        out.print(f"{label} -> {model['name']} v{model['version']}", soft_wrap=True)


@app.command()
def models(
    path: PathArg = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """List the saved models, newest first, with their aliases (champion, challenger)."""
    with _user_errors():
        project, rows = _from_store(path, lambda store, name: store.list_models(name))
        if as_json:
            sys.stdout.write(json.dumps(rows, indent=2) + "\n")
            return
        if not rows:
            out.print("no saved models yet; `flywheel run` saves every fitted candidate")
            return
        table = Table(title=f"{project.project} · models", title_justify="left")
        for col in ("model", "version", "aliases", "data", "objective", "run"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r["name"],
                f"v{r['version']}",
                ", ".join(r["aliases"]),
                r["data_fingerprint"],
                r["objective_version"],
                r["run_id"],
            )
        out.print(table)


objective_app = typer.Typer(
    help="The objective's history: every formula that judged this project.", no_args_is_help=True
)
app.add_typer(objective_app, name="objective")


@objective_app.command("log")
def objective_log(
    path: PathArg = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """List every version of the objective, when it was first used, why, and how many runs it judged."""
    with _user_errors():
        project, rows = _from_store(path, lambda store, name: store.objective_log(name))
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


# --- scoping: assess, phase, portfolio, card -------------------------------------------------------

_SOURCE_TAG = {"declared": "[magenta]declared[/]", "measured": "[green]measured[/]", "none": "[dim]none[/]"}


def _print_driver(d: Any) -> None:
    tag = "[green]measured[/]" if d.measured else "[magenta]declared only[/]"
    out.print(f"[bold]{d.name}[/] {d.score:.2f} ({d.low:.2f}–{d.high:.2f}) · {tag}")
    for e in d.evidence:
        score = f" → {e.score:.2f}" if e.score is not None else ""
        flag = " [red]⚑[/]" if e.flag else ""
        out.print(f"   {_SOURCE_TAG[e.source]:>28} {escape(e.text)}{score}{flag}", soft_wrap=True)


def _print_assessment(a: Any, phase: Any | None = None) -> None:
    f = a.feasibility
    out.print(
        f"[bold]{escape(a.project)}[/] · {a.archetype} · feasibility {f.score:.2f} ({f.low:.2f}–{f.high:.2f})"
        f" · impact {a.impact.score:.2f} ({a.impact.low:.2f}–{a.impact.high:.2f})"
        + (f" · phase {phase.phase}" if phase is not None else "")
    )
    for d in (a.data, a.accuracy, a.difficulty, a.impact):
        _print_driver(d)
    out.print(f"[bold]{a.archetype} questions[/]")
    for q in a.questions:
        colour = "yellow" if q["status"] == "open" else "green"
        out.print(
            f"   [{colour}]{q['status']}[/] {escape(q['question'])} — {escape(q['answer'])}", soft_wrap=True
        )
    out.print(f"   advice: {escape(a.advice)}", soft_wrap=True)
    out.print("[bold]feasibility checklist[/]")
    colours = {"done": "green", "open": "yellow", "contradicted": "red"}
    for c in a.checklist:
        out.print(
            f"   [{colours[c.status]}]{c.status:>12}[/] {c.item} — {escape(c.evidence)} "
            f"({_SOURCE_TAG[c.source]})",
            soft_wrap=True,
        )
    r = a.readiness
    out.print(f"[bold]readiness[/] {r['score']:g} of 3 (the weakest section: {r['weakest']})")
    for section, body in r["sections"].items():
        items = ", ".join(f"{i['item']} {i['score']:g} ({i['source']})" for i in body["items"])
        out.print(f"   {section} {body['score']:g}: {items}", soft_wrap=True, markup=False)
    if phase is not None:
        out.print(f"[bold]phase[/] {phase.phase} — {escape(phase.reason)}", soft_wrap=True)


@app.command()
def assess(path: PathArg = Path("."), as_json: JsonOpt = False) -> None:
    """Feasibility, impact, archetype questions, the checklist and readiness, from the latest run.

    Reads the project file (declared) and its store (measured); fits nothing. Run `flywheel run`
    first for the measured evidence.
    """
    with _user_errors():
        from flywheel.scoping import assess_path

        _, assessment, state, run = assess_path(path)
        if as_json:
            payload = {**assessment.to_dict(), "phase": state.to_dict()}
            sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
            return
        _print_assessment(assessment, state)
        if run is None:
            out.print(
                "note: no stored run yet: every score rests on declared evidence (`flywheel run` measures)"
            )


phase_app = typer.Typer(
    help="The lifecycle phase: where the project is, and loop-backs.", no_args_is_help=True
)
app.add_typer(phase_app, name="phase")


@phase_app.command("show")
def phase_show(path: PathArg = Path("."), as_json: JsonOpt = False) -> None:
    """The current phase (inferred from what exists) and the timeline."""
    from flywheel.project import load_project
    from flywheel.scoping import gather

    with _user_errors():
        state = gather(load_project(path)).phase
        if as_json:
            sys.stdout.write(json.dumps(state.to_dict(), indent=2, default=str) + "\n")
            return
        out.print(f"phase: [bold]{state.phase}[/] — {escape(state.reason)}", soft_wrap=True)
        for t in state.timeline:
            out.print(
                f"  {(t['at'] or '')[:16].replace('T', ' ')}  {t['phase']:<10} {t['what']}", markup=False
            )


@phase_app.command("back")
def phase_back(
    path: PathArg = Path("."),
    to: Annotated[str, typer.Option("--to", help="The earlier phase: planning, data or training.")] = "",
    reason: Annotated[str, typer.Option("--reason", help="Why the project goes back.")] = "",
) -> None:
    """Record a loop-back to an earlier phase and why (--to data --reason "labels unreliable")."""
    from datetime import UTC, datetime

    from flywheel.project import load_project
    from flywheel.registry import open_store
    from flywheel.scoping import gather, validate_move

    with _user_errors():
        project = load_project(path)
        state = gather(project).phase
        target = validate_move(state.phase, to, reason)
        store = open_store(project.store_dir)
        try:
            store.record_phase(project.project, datetime.now(UTC), state.phase, target, reason.strip())
        finally:
            store.close()
        out.print(f"phase: {state.phase} → {target} ({reason.strip()})", markup=False)


@app.command()
def portfolio(
    paths: Annotated[list[Path], typer.Argument(help="Project files or folders (two or more).")],
    as_json: JsonOpt = False,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where portfolio.html and portfolio.png are written.")
    ] = Path("."),
    png: Annotated[bool, typer.Option("--png/--no-png", help="Also write the chart as a PNG.")] = True,
) -> None:
    """Rank several projects by impact and feasibility and draw the chart (HTML and PNG)."""
    from flywheel.report import write_chart_html, write_chart_png
    from flywheel.scoping import portfolio as rank_projects

    with _user_errors():
        entries = rank_projects(list(paths))
        html = write_chart_html(entries, out_dir / "portfolio.html")
        picture = write_chart_png(entries, out_dir / "portfolio.png") if png else None
        if as_json:
            payload = {
                "projects": [e.to_dict() for e in entries],
                "html": str(html),
                "png": str(picture) if picture else None,
            }
            sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
            return
        table = Table(title="portfolio · ranked by impact × feasibility", title_justify="left")
        for col in (
            "#",
            "project",
            "archetype",
            "phase",
            "feasibility",
            "impact",
            "net value/yr",
            "where",
            "evidence",
        ):
            table.add_column(col)
        for e in entries:
            d = e.to_dict()
            f, i = d["feasibility"], d["impact"]
            table.add_row(
                str(e.rank),
                d["project"],
                d["archetype"],
                d["phase"],
                f"{f['score']:.2f} ({f['low']:.2f}–{f['high']:.2f})",
                f"{i['score']:.2f} ({i['low']:.2f}–{i['high']:.2f})",
                "—" if d["net_value_per_year"] is None else f"{d['net_value_per_year']:,.0f}",
                d["quadrant"],
                "[green]measured[/]" if d["measured"] else "[magenta]declared only[/]",
            )
        out.print(table)
        out.print(f"chart: {html}" + (f" · {picture}" if picture else ""), soft_wrap=True)


@app.command()
def card(
    path: PathArg = Path("."),
    model: Annotated[str | None, typer.Option(help="The model (default: the latest run's best).")] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to write (default: MODEL_CARD.md next to the project)."),
    ] = None,
) -> None:
    """Write a model card (Markdown with Hugging Face model-index metadata) from the latest run."""
    from flywheel.scoping import model_card

    with _user_errors():
        project, rows = _from_store(path, lambda store, name: [r] if (r := store.latest_run(name)) else [])
        if not rows:
            raise FlywheelError(f"{project.project}: no stored run yet; run `flywheel run` first")
        text = model_card(project, rows[0], model)
        target = output or project.root / "MODEL_CARD.md"
        target.write_text(text, encoding="utf-8")
        out.print(f"model card: {target}", soft_wrap=True, markup=False)


# --- the flywheel: serve ----------------------------------------------------------------------------


@app.command()
def serve(
    path: PathArg = Path("."),
    model: Annotated[
        str, typer.Option("--model", help="The alias to serve (it is followed on promotion).")
    ] = "champion",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port (0 picks a free one; the line printed says which).")
    ] = 8000,
    ack: Annotated[
        str,
        typer.Option(
            help="durable: answer once the prediction is committed to the log (default); "
            "fast: answer once it is handed to the log's writer process (a power cut may lose "
            "the last milliseconds; killing the service loses nothing)."
        ),
    ] = "durable",
    max_batch: Annotated[
        int, typer.Option(min=1, help="Most rows in one /predict request (413 above).")
    ] = 1000,
    queue_size: Annotated[
        int, typer.Option(min=1, help="Records waiting for the log's writer before answering 503.")
    ] = 10000,
    retention_rows: Annotated[
        int | None, typer.Option(min=1, help="Keep at most this many predictions.")
    ] = None,
    retention_days: Annotated[
        float | None, typer.Option(min=0, help="Delete predictions older than this.")
    ] = None,
    allow_new_classes: Annotated[
        bool, typer.Option(help="Accept feedback labels outside the known classes.")
    ] = False,
    model_process: Annotated[
        bool,
        typer.Option(
            "--model-process/--model-on-loop",
            help="Run the model in a worker process (default: inference on another core, the event loop "
            "never waits behind it) or on the event loop itself (one process less, one model copy less).",
        ),
    ] = True,
) -> None:
    """Serve the champion: POST /predict (logged), POST /feedback, GET /health, GET /metrics."""
    from flywheel.project import load_project
    from flywheel.serving import ServeOptions
    from flywheel.serving import serve as run_service

    with _user_errors():
        if ack not in ("durable", "fast"):
            raise FlywheelError(f"--ack must be durable or fast; got {ack!r}")
        options = ServeOptions(
            alias=model,
            ack=ack,  # type: ignore[arg-type]
            max_batch=max_batch,
            queue_size=queue_size,
            retention_rows=retention_rows,
            retention_days=retention_days,
            allow_new_classes=allow_new_classes,
            model_process=model_process,
        )
        run_service(load_project(path), host=host, port=port, options=options)


# --- the flywheel: mine, queue, retrain -------------------------------------------------------------


def _print_items(items: list[Any], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for col in ("item", "score", "model says", "reasons", "nominated by"):
        table.add_column(col)
    for it in items:
        table.add_row(
            it.id, f"{it.score:.2f}", str(it.prediction), "; ".join(it.reasons), f"{it.model} v{it.version}"
        )
    out.print(table)


@app.command()
def mine(
    path: PathArg = Path("."),
    budget: Annotated[int, typer.Option(min=1, help="How many rows to nominate for review.")] = 50,
    pool: Annotated[Path | None, typer.Option(help="A file of unlabelled rows to mine as well.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Nominate the logged predictions (and pool rows) a label would teach most; add them to the queue."""
    from flywheel.loop import mine as mine_items
    from flywheel.project import load_project

    with _user_errors():
        items = mine_items(load_project(path), budget, pool=pool)
        if as_json:
            sys.stdout.write(json.dumps([i.to_dict() for i in items], indent=2, default=str) + "\n")
            return
        if not items:
            out.print("nothing to mine: no unlabelled logged predictions with a reason to review")
            return
        _print_items(items, f"{len(items)} rows added to the review queue")


queue_app = typer.Typer(
    help="The review queue: list, export for a labelling tool, import labels.", no_args_is_help=True
)
app.add_typer(queue_app, name="queue")


@queue_app.command("list")
def queue_list(path: PathArg = Path("."), as_json: JsonOpt = False) -> None:
    """Open review items, highest priority first."""
    from flywheel.loop import list_queue
    from flywheel.project import load_project

    with _user_errors():
        items = list_queue(load_project(path))
        if as_json:
            sys.stdout.write(json.dumps([i.to_dict() for i in items], indent=2, default=str) + "\n")
            return
        if not items:
            out.print("the review queue is empty; `flywheel mine` fills it")
            return
        _print_items(items, f"{len(items)} open review items")


@queue_app.command("export")
def queue_export(
    output: Annotated[Path, typer.Argument(help="A .csv or .jsonl file to write.")],
    path: PathArg = Path("."),
) -> None:
    """Write the open items (features, the model's guess, the reasons, an empty label column)."""
    from flywheel.loop import export_queue
    from flywheel.project import load_project

    with _user_errors():
        n = export_queue(load_project(path), output)
        out.print(f"{n} items written to {output}", markup=False)


@queue_app.command("import")
def queue_import(
    labels: Annotated[Path, typer.Argument(help="A .csv or .jsonl file with item_id and label (and by).")],
    path: PathArg = Path("."),
) -> None:
    """Take labels for review items; each becomes feedback for retraining."""
    from flywheel.loop import import_labels
    from flywheel.project import load_project
    from flywheel.serving import load_served

    with _user_errors():
        project = load_project(path)
        classes = load_served(project).schema.classes
        taken, problems = import_labels(project, labels, classes)
        for p in problems:
            err.print(f"skipped: {p}", markup=False)
        out.print(f"{taken} labels taken", markup=False)
        if problems and not taken:
            raise typer.Exit(2)


@app.command()
def retrain(path: PathArg = Path("."), as_json: JsonOpt = False) -> None:
    """Fit the champion's model on train + accepted labels, register it as challenger, judge it.

    Exit code: 0 when it beats the champion (promote it with `flywheel promote NAME`), 1 when it
    loses, 3 when the comparison is not decided.
    """
    from flywheel.loop import retrain as retrain_model
    from flywheel.project import load_project

    with _user_errors():
        result = retrain_model(load_project(path))
        if as_json:
            sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        else:
            out.print(
                f"challenger: {result.name} v{result.version}, trained on {result.trained_rows:,} rows "
                f"({result.added_labels:,} from feedback)",
                markup=False,
            )
            for note in result.notes:
                out.print(f"note: {note}", markup=False)
            colour = {"pass": "green", "fail": "red", "inconclusive": "yellow"}[result.verdict["status"]]
            out.print(
                f"[{colour}]{result.verdict['status'].upper()}[/] {escape(result.verdict['reason'])}",
                soft_wrap=True,
            )
        raise typer.Exit({"pass": 0, "fail": 1, "inconclusive": 3}[result.verdict["status"]])


def main() -> None:
    """Console-script entry point."""
    app()
