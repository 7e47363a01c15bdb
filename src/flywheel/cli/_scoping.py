"""The scoping commands: init, demo, assess, phase show and back, portfolio, card.

They read the project file and its store (``demo`` also runs the demo project); the assessment's
drawing lives here because no other command shows it.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from flywheel.cli._app import JsonOpt, PathArg, err, out, user_errors
from flywheel.cli._render import print_result
from flywheel.cli._run import run_with_progress
from flywheel.cli._store import from_store
from flywheel.errors import FlywheelError

__all__ = [
    "assess",
    "card",
    "demo",
    "init",
    "phase_back",
    "phase_show",
    "portfolio",
]


def init(
    folder: Annotated[Path, typer.Argument(help="Where to write flywheel.yaml.")] = Path("."),
    from_csv: Annotated[Path | None, typer.Option("--from-csv", help="A CSV to describe.")] = None,
    target: Annotated[str | None, typer.Option(help="The CSV's target column.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing flywheel.yaml.")] = False,
) -> None:
    """Write a commented flywheel.yaml (filled in from a CSV with --from-csv and --target)."""
    from flywheel.scoping import write_init

    with user_errors():
        path = write_init(folder, csv=from_csv, target=target, force=force)
        out.print(f"wrote {path}; edit it, then run `flywheel run {folder}`", soft_wrap=True)


def demo(
    folder: Annotated[Path, typer.Option("--dir", help="Where to write the demo project.")] = Path(
        "flywheel-demo"
    ),
) -> None:
    """Write a demo project (handwritten digits on parcels), run it, and promote its best model
    through the gate; then print the next commands: serve it, ask it, mine what it logged."""
    from flywheel.pipeline import promote_after_run
    from flywheel.project import load_project
    from flywheel.scoping import write_demo, write_example_request

    with user_errors():
        path = write_demo(folder)
        out.print(f"demo project written to {path}", soft_wrap=True)
        result = run_with_progress(path, quiet=False)
        print_result(result)
        project = load_project(path)
        verdict, model = promote_after_run(project, result)
        if verdict is not None and verdict.status == "pass" and model is not None:
            out.print(
                f"champion: {model['name']} v{model['version']} — the gate passed it against "
                f"{verdict.against} in run {verdict.run_id} (recorded as such)",
                soft_wrap=True,
                markup=False,
            )
        elif verdict is not None:
            out.print(f"no champion yet: the gate says {verdict.status} — {'; '.join(verdict.reasons)}")
        request = write_example_request(project)
        shown = display(folder)
        out.print("next, in a second terminal each:", markup=False)
        for line in (
            f"flywheel serve {shown}",
            "curl -s -X POST http://127.0.0.1:8000/predict -H 'content-type: application/json' "
            f"-d @{display(request)}",
            f"flywheel mine {shown}",
        ):
            out.print(f"  {line}", soft_wrap=True, markup=False)


def display(path: Path) -> str:
    """A path as a user would type it from here: relative when it lies below the working folder."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


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


def assess(path: PathArg = Path("."), as_json: JsonOpt = False) -> None:
    """Feasibility, impact, archetype questions, the checklist and readiness, from the latest run.

    Reads the project file (declared) and its store (measured); fits nothing. Run `flywheel run`
    first for the measured evidence.
    """
    with user_errors():
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


def phase_show(path: PathArg = Path("."), as_json: JsonOpt = False) -> None:
    """The current phase (inferred from what exists), the timeline, and the moves `flywheel monitor`
    proposes (accept one with `flywheel phase back --accept ID`)."""
    from flywheel.project import load_project
    from flywheel.scoping import gather, monitor_problem, proposals, read_monitor

    with user_errors():
        project = load_project(path)
        found = gather(project, read_data=False)
        state, monitor = found.phase, read_monitor(project)
        open_ = proposals(project, found.events)
        problem = monitor_problem(project) if monitor is None else None
        if problem:
            err.print(f"warning: {problem}", markup=False, soft_wrap=True)
        if as_json:
            watched = None if monitor is None else {k: monitor[k] for k in ("at", "champion", "verdict")}
            payload = {**state.to_dict(), "monitor": watched, "proposals": open_}
            sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
            return
        out.print(f"phase: [bold]{state.phase}[/] — {escape(state.reason)}", soft_wrap=True)
        for t in state.timeline:
            out.print(
                f"  {(t['at'] or '')[:16].replace('T', ' ')}  {t['phase']:<10} {t['what']}",
                markup=False,
                soft_wrap=True,
            )
        if monitor is not None:
            stale = bool(found.artifacts.get("champion")) and not found.artifacts.get("monitored")
            _print_proposals(monitor, open_, str(path), state.phase, stale=stale)


def _print_proposals(
    monitor: dict[str, Any], open_: list[dict[str, Any]], where: str, current: str, *, stale: bool
) -> None:
    """The monitor's open proposals, each with its evidence, and the command that accepts one."""
    from flywheel.scoping import PHASES

    at = monitor["at"][:16].replace("T", " ")
    watched = monitor["champion"]
    if stale and watched is not None:
        out.print(
            f"note: the latest monitor run watched {watched['name']} v{watched['version']}, not the "
            f"current champion; `flywheel monitor {where}` watches the current one",
            soft_wrap=True,
            markup=False,
        )
    if not open_:
        out.print(f"monitor ({at}, {monitor['verdict']}): no open proposals", markup=False)
        return
    out.print(f"[bold]proposed by the monitor[/] ({at}, {monitor['verdict']}):")
    movable = [p for p in open_ if PHASES.index(p["to"]) < PHASES.index(current)]
    for p in open_:
        held = "" if p in movable else f" (not before the current phase {current})"
        out.print(f"  {p['id']} → {p['to']}{held}: {p['reason']}", soft_wrap=True, markup=False)
        for line in p["evidence"]:
            out.print(f"      {line}", soft_wrap=True, markup=False)
        if p["window"]:
            out.print(f"      window: {p['window']}", soft_wrap=True, markup=False)
    if movable:
        out.print(
            f"accept one: flywheel phase back --accept {movable[0]['id']} {where}",
            soft_wrap=True,
            markup=False,
        )


def phase_back(
    path: PathArg = Path("."),
    to: Annotated[str, typer.Option("--to", help="The earlier phase: planning, data or training.")] = "",
    reason: Annotated[str, typer.Option("--reason", help="Why the project goes back.")] = "",
    accept: Annotated[
        str,
        typer.Option(
            "--accept",
            help="Accept the monitor's proposal with this id (see `flywheel phase show`): its phase, "
            "reason and evidence are recorded; --reason adds a note.",
        ),
    ] = "",
) -> None:
    """Record a loop-back to an earlier phase and why (--to data --reason "labels unreliable"), or
    accept a move the monitor proposes (--accept data-drift)."""
    from flywheel.project import load_project
    from flywheel.registry import project_store
    from flywheel.scoping import accepted_reason, gather, validate_move

    with user_errors():
        project = load_project(path)
        found = gather(project)
        state, when = found.phase, datetime.now(UTC)
        if accept:
            proposal = _open_proposal(project, found.events, accept, to)
            when = max(when, _monitor_at(project))
            text = accepted_reason(proposal, reason)
            target = validate_move(
                state.phase, proposal["to"], text, given=f"--accept {accept} (to {proposal['to']})"
            )
        else:
            text = reason.strip()
            target = validate_move(state.phase, to, text)
        store = project_store(project)
        try:
            store.record_phase(project.project, when, state.phase, target, text)
        finally:
            store.close()
        out.print(f"phase: {state.phase} → {target} ({text})", markup=False, soft_wrap=True)


def _open_proposal(project: Any, events: list[dict[str, Any]], accept: str, to: str) -> dict[str, Any]:
    """The open proposal ``accept`` names; one-line errors naming the open ones, or a --to against it."""
    from flywheel.errors import ProjectError
    from flywheel.scoping import proposals

    open_ = proposals(project, events)
    chosen = next((p for p in open_ if p["id"] == accept), None)
    if chosen is None:
        listed = ", ".join(p["id"] for p in open_)
        raise ProjectError(
            f"--accept: no open proposal {accept!r}; "
            + (f"open: {listed}" if listed else "none open; run `flywheel monitor` first")
        )
    if to and to != chosen["to"]:
        raise ProjectError(
            f"--to {to} disagrees with proposal {accept!r}, which goes to {chosen['to']}; "
            f"leave --to out or give --to {chosen['to']}"
        )
    return chosen


def _monitor_at(project: Any) -> datetime:
    """When the latest monitor run was; a move that accepts its proposal is recorded no earlier,
    so that it counts as accepted even when the monitor's clock ran ahead of this one."""
    from flywheel.scoping import read_monitor

    monitor = read_monitor(project)
    return datetime.fromisoformat(monitor["at"]) if monitor else datetime.min.replace(tzinfo=UTC)


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

    with user_errors():
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


def card(
    path: PathArg = Path("."),
    model: Annotated[str | None, typer.Option(help="The model (default: the latest run's best).")] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Where to write (default: MODEL_CARD.md in the project's .flywheel folder, beside its "
            "runs, so the project's own files are untouched).",
        ),
    ] = None,
) -> None:
    """Write a model card (Markdown with Hugging Face model-index metadata) from the latest run."""
    from flywheel.scoping import model_card

    with user_errors():
        project, rows = from_store(path, lambda store, name: [r] if (r := store.latest_run(name)) else [])
        if not rows:
            raise FlywheelError(f"{project.project}: no stored run yet; run `flywheel run` first")
        text = model_card(project, rows[0], model)
        if output is not None and not output.parent.is_dir():
            raise FlywheelError(
                f"-o {output}: the folder {output.parent} does not exist; allowed: a file in one"
            )
        target = output or project.store_dir / "MODEL_CARD.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        out.print(f"model card: {target}", soft_wrap=True, markup=False)
