"""The registry's commands: gate a candidate, promote it to champion, point an alias, list the models."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flywheel.cli._app import ExecutorOpt, JsonOpt, PathArg, WorkersOpt, err, out, user_errors
from flywheel.cli._store import from_store
from flywheel.errors import FlywheelError

__all__ = [
    "alias",
    "gate",
    "models",
    "promote",
]


def gate(
    path: PathArg = Path("."),
    candidate: Annotated[
        str | None, typer.Option(help="The model to judge (default: the best candidate).")
    ] = None,
    against: Annotated[str, typer.Option(help="champion or best-baseline.")] = "champion",
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
    executor: ExecutorOpt = None,
) -> None:
    """Judge a candidate against the champion on the same test rows: exit 0 pass, 1 fail, 3 inconclusive."""
    from flywheel.execution import make_executor
    from flywheel.pipeline import gate as run_gate

    with user_errors():
        if against not in ("champion", "best-baseline"):
            raise FlywheelError(f"--against must be champion or best-baseline; got {against!r}")
        with make_executor(executor, workers) as where:
            result = run_gate(
                path,
                candidate=candidate,
                against=against,  # type: ignore[arg-type]
                executor=where,
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


def promote(
    name: Annotated[str, typer.Argument(help="The candidate model to make champion.")],
    path: PathArg = Path("."),
    force: Annotated[bool, typer.Option(help="Promote even if the gate does not pass (recorded).")] = False,
    on: Annotated[
        str,
        typer.Option(
            help="test: judge NAME against the champion on the test split (default); traffic: on the "
            "traffic-labelled requests both answered while NAME ran as shadow or pilot "
            "(exit 1 fail, 3 inconclusive)."
        ),
    ] = "test",
    workers: WorkersOpt = None,
) -> None:
    """Make NAME the champion if it passes the gate against the current one (exit 1 and why if not)."""
    from flywheel.execution import LocalExecutor
    from flywheel.pipeline import promote as run_promote

    with user_errors():
        if on not in ("test", "traffic"):
            raise FlywheelError(f"--on must be test or traffic; got {on!r}")
        if on == "traffic":
            _promote_on_traffic(name, path, force)
            return
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


def _promote_on_traffic(name: str, path: Path, force: bool) -> None:
    from flywheel.monitoring import promote_on_traffic
    from flywheel.project import load_project

    if force:
        raise FlywheelError("--force and --on traffic cannot go together: forcing needs no evidence")
    verdict, model = promote_on_traffic(load_project(path), name)
    for line in verdict.notes:
        out.print(f"  {line}", soft_wrap=True, markup=False)
    if verdict.status != "pass":
        err.print(
            f"refused: {model['name']} v{model['version']} does not pass the gate on traffic "
            f"({verdict.status}): {verdict.reasons[0]}",
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(verdict.exit_code)
    out.print(
        f"champion is now {model['name']} v{model['version']} (on traffic: {verdict.reasons[0]})",
        soft_wrap=True,
        markup=False,
    )


def alias(
    name: Annotated[str, typer.Argument(help="A saved model (its newest version).")],
    label: Annotated[str, typer.Argument(help="The alias to point at it, e.g. staging.")],
    path: PathArg = Path("."),
) -> None:
    """Point a user-named alias (staging, shadow, …) at the newest saved version of NAME."""
    from datetime import UTC, datetime

    from flywheel.evaluation import read_artifact
    from flywheel.project import load_project
    from flywheel.registry import project_store

    with user_errors():
        if label in ("champion", "challenger"):
            raise FlywheelError(
                f"flywheel alias: {label} is set by flywheel (use `flywheel promote` for champion)"
            )
        if not label.replace("-", "").replace("_", "").isalnum():
            raise FlywheelError(f"flywheel alias: an alias is letters, digits, '-' or '_'; got {label!r}")
        project = load_project(path)
        store = project_store(project)
        try:
            model = store.latest_model(project.project, name)
            if model is None:
                raise FlywheelError(f"flywheel alias: {name!r} has no saved artifact; run the project first")
            read_artifact(model, label)  # a missing or altered artifact gets no alias
            store.set_alias(project.project, label, model["id"], datetime.now(UTC), note="set by hand")
        finally:
            store.close()
        out.print(f"{label} -> {model['name']} v{model['version']}", soft_wrap=True)


def models(
    path: PathArg = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """List the saved models, newest first, with their aliases (champion, challenger)."""
    with user_errors():
        project, rows = from_store(path, lambda store, name: store.list_models(name))
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
                ", ".join(a + (" (forced)" if a in r.get("forced", []) else "") for a in r["aliases"]),
                r["data_fingerprint"],
                r["objective_version"],
                r["run_id"],
            )
        out.print(table)
