"""`flywheel monitor`: production's evidence per window, the verdicts, and the loop-backs they propose."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from flywheel.cli._app import JsonOpt, PathArg, out, user_errors
from flywheel.errors import FlywheelError

__all__ = ["monitor"]

_COLOUR = {"ok": "green", "watch": "yellow", "act": "red", "undecided": "dim", "too few rows": "dim"}


def monitor(
    path: PathArg = Path("."),
    since: Annotated[
        str | None,
        typer.Option(
            help="First day shown: a date (2026-11-01) or a span back (7d, 2w). Default: 7d, or 8w by week."
        ),
    ] = None,
    window: Annotated[str, typer.Option(help="day or week (UTC; weeks start on Monday).")] = "day",
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="For a scheduler or CI: exit 0 when every window is ok or watch, 1 when one is act, "
            "3 when no window has enough rows to judge.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Watch the champion in production: drift, live and estimated quality, latency, shadow models, outcomes.

    Reads only the predictions logged since the last run, writes .flywheel/monitor/latest.json, and
    proposes the loop-backs the evidence supports (`flywheel phase show` lists them).
    """
    from flywheel.monitoring import monitor as run_monitor
    from flywheel.project import load_project

    with user_errors():
        if window not in ("day", "week"):
            raise FlywheelError(f"--window must be day or week; got {window!r}")
        result = run_monitor(load_project(path), since=since, window=window)  # type: ignore[arg-type]
        if as_json:
            sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
        else:
            _render(result, path)
    raise typer.Exit(result["exit_code"] if check else 0)


def _render(r: dict[str, Any], path: Path) -> None:
    champion = r["champion"]
    test = r["test"]
    shown = "n/a" if test["value"] is None else f"{test['value']:.4f}"
    out.print(
        f"{r['project']}: champion {champion['name']} v{champion['version']}, {r['metric']} on test {shown} "
        f"({test['rows']:,} rows); {r['log']['rows_read']:,} new log rows read",
        soft_wrap=True,
        markup=False,
    )
    if not r["windows"]:
        out.print(f"no predictions logged since {r['since']}; verdict: undecided", soft_wrap=True)
        return
    _windows_table(r)
    for w in r["windows"]:
        lines = [
            f"{label}: {line}"
            for key, label in (
                ("input_drift", "input"),
                ("prediction_drift", "predictions"),
                ("live_quality", "live"),
                ("estimated_quality", "estimated"),
                ("latency", "latency"),
            )
            if w[key]["status"] in ("act", "watch") or w is r["windows"][-1]
            for line in w[key].get("evidence", [])
        ]
        if lines and (w["verdict"] in ("act", "watch") or w is r["windows"][-1]):
            out.print(f"[bold]{w['window']}[/] ({_status(w['verdict'])})", soft_wrap=True)
            for line in lines:
                out.print(f"  {line}", soft_wrap=True, markup=False)
    for pair in r["paired"]:
        gate = pair.get("gate")
        head = f"{pair['model']} v{pair['version']} beside the champion on {pair['rows']:,} labelled requests"
        out.print(
            head + (f": {gate['status']}" if gate else ": too few rows to compare"),
            soft_wrap=True,
            markup=False,
        )
        if gate:
            for line in gate["reasons"]:
                out.print(f"  {line}", soft_wrap=True, markup=False)
            if gate["status"] == "pass":
                out.print(
                    f"  next: flywheel promote {pair['model']} {path} --on traffic",
                    soft_wrap=True,
                    markup=False,
                )
    if r["unknown_labels"]:
        out.print(
            f"{r['unknown_labels']:,} traffic labels name a class the champion does not know: "
            "left out of live quality",
            soft_wrap=True,
            markup=False,
        )
    for o in r["outcomes"]:
        out.print(f"outcome {o['sentence']}", soft_wrap=True, markup=False)
    for p in r["proposals"]:
        out.print(f"[bold]proposed[/]: back to {p['to']}: {escape(p['reason'])}", soft_wrap=True)
        out.print(f"  accept: flywheel phase back --accept {p['id']} {path}", soft_wrap=True, markup=False)
    out.print(f"verdict: {_status(r['verdict'])}; report: {r['report']}", soft_wrap=True)


def _windows_table(r: dict[str, Any]) -> None:
    table = Table(
        title=f"windows ({r['window']}, UTC)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    # Short headings, so that the table fits 80 columns (the legend is under it).
    for col in ("window", "rows", "labels", "inputs", "outputs", "live", "estimated", "latency", "verdict"):
        table.add_column(col, justify="right" if col in ("rows", "labels") else "left", no_wrap=True)
    for w in r["windows"]:
        cells = [
            _status(w[k]["status"])
            for k in ("input_drift", "prediction_drift", "live_quality", "estimated_quality", "latency")
        ]
        table.add_row(
            w["window"], f"{w['predictions']:,}", f"{w['labelled']:,}", *cells, _status(w["verdict"])
        )
    out.print(table)
    out.print(
        "inputs: input drift; outputs: prediction drift; live: quality on traffic labels; "
        "estimated: quality without labels",
        soft_wrap=True,
        style="dim",
    )


def _status(s: str) -> str:
    return f"[{_COLOUR.get(s, 'white')}]{'few rows' if s == 'too few rows' else s}[/]"
