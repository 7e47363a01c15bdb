"""What each page shows, read from the store and the prediction log as the commands left them.

Nothing here runs a model or an evaluation: a page is a reading of stored results, so it is as
fast as the store and says the same numbers the terminal said.
"""

from __future__ import annotations

import json
from typing import Any

from flywheel.errors import FlywheelError
from flywheel.project import Project

__all__ = [
    "NotFound",
    "compare_view",
    "monitor_view",
    "project_view",
    "runs_view",
]


_FIGURES: dict[tuple[str, str], dict[str, str]] = {}


class NotFound(FlywheelError):
    """A project, run or review item named in a URL that does not exist (a 404 page)."""


def _store(project: Project) -> Any:
    from flywheel.registry import has_store, project_store

    if not has_store(project):
        return None
    return project_store(project, create=False)


def _stored(project: Project) -> dict[str, Any]:
    """The latest run, the champion and the phase moves, in one visit to the store."""
    store = _store(project)
    if store is None:
        return {"run": None, "champion": None, "events": []}
    try:
        return {
            "run": store.latest_run(project.project),
            "champion": store.get_alias(project.project, "champion"),
            "events": store.phase_events(project.project),
        }
    finally:
        store.close()


def project_view(project: Project) -> dict[str, Any]:
    """The project page: verdict, next actions, leaderboard, ladder, curve, readiness, lifecycle."""
    from flywheel.report import run_figures
    from flywheel.scoping import proposals

    found = _stored(project)
    run = found["run"]
    view: dict[str, Any] = {"run": run, "champion": found["champion"], "charts": {}}
    view["proposals"] = proposals(project, found["events"])
    view["events"] = found["events"]
    if run is None:
        return view
    objective = run.get("objective") or {}
    diagnosis = run.get("diagnosis") or {}
    view["metric"] = objective.get("optimize", "score")
    view["actions"] = diagnosis.get("actions") or []
    view["standings"] = (run.get("ranking") or {}).get("standings") or []
    view["assessment"] = run.get("assessment") or {}
    view["timeline"] = (run.get("phase") or {}).get("timeline") or []
    key = (str(project.path), str(run.get("run_id")))
    if key not in _FIGURES:  # a stored run never changes: its charts are built once per process
        while len(_FIGURES) >= 64:
            _FIGURES.pop(next(iter(_FIGURES)))
        _FIGURES[key] = run_figures(run)
    view["charts"] = _FIGURES[key]
    view["curve_findings"] = diagnosis.get("curve_findings") or []
    return view


def runs_view(project: Project) -> list[dict[str, Any]]:
    """Every stored run of the project, newest first, with its objective version and verdict."""
    store = _store(project)
    if store is None:
        return []
    try:
        runs = store.list_runs()
    finally:
        store.close()
    return [r for r in runs if r.get("project") == project.project]


def _values(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in (run.get("ranking") or {}).get("standings") or []}


def compare_view(project: Project, a: str, b: str) -> dict[str, Any]:
    """Two runs side by side: each model's validation and test values, and the runs' settings.

    Raises
    ------
    NotFound
        When either id is not a stored run of this project.
    """
    store = _store(project)
    try:
        runs = [store.get_run(i) if store is not None else None for i in (a, b)]
    finally:
        if store is not None:
            store.close()
    for given, run in zip((a, b), runs, strict=True):
        if run is None or run.get("project") != project.project:
            raise NotFound(f"run {given!r} is not a stored run of project {project.project!r}")
    left, right = _values(runs[0]), _values(runs[1])  # type: ignore[arg-type]
    names = list(dict.fromkeys([*left, *right]))
    rows = [{"name": n, "a": left.get(n), "b": right.get(n)} for n in names]
    return {"a": runs[0], "b": runs[1], "rows": rows}


def monitor_view(project: Project) -> dict[str, Any]:
    """The latest `flywheel monitor` result with its windows, or why there is none to show."""
    from flywheel.scoping import monitor_file, monitor_problem, read_monitor

    checked = read_monitor(project)
    if checked is None:
        return {"monitor": None, "problem": monitor_problem(project), "windows": []}
    try:
        raw = json.loads(monitor_file(project).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raw = {}
    windows = raw.get("windows") if isinstance(raw.get("windows"), list) else []
    return {"monitor": checked, "raw": raw, "problem": None, "windows": windows}
