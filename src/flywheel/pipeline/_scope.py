"""Scoping a run: the project's assessment and its lifecycle phase, this run counted among the artifacts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flywheel.project import Project
from flywheel.registry import Store, flywheel_summary
from flywheel.results import RunResult
from flywheel.scoping import assess, monitored, stored_phase

__all__ = [
    "scope_run",
]


def scope_run(proj: Project, db: Store | None, result: RunResult, frame: Any) -> RunResult:
    """The assessment and the lifecycle phase, with this run counted among the artifacts."""
    runs: list[dict[str, Any]] = []
    champion = None
    events: list[dict[str, Any]] = []
    models = False
    if db is not None:
        runs = db.run_summaries(proj.project)
        champion = db.get_alias(proj.project, "champion")
        events = db.phase_events(proj.project)
        models = bool(db.list_models(proj.project))
    candidates = sum(e.role == "candidate" for e in result.evaluations)
    runs.append({"id": result.run_id, "started_at": result.started_at.isoformat(), "candidates": candidates})
    loop = flywheel_summary(proj)
    artifacts, state = stored_phase(
        loop,
        data_loads=True,
        runs=runs,
        champion=champion,
        events=events,
        models=models,
        monitored=monitored(proj, champion),
    )
    assessment = assess(proj, result.to_dict(), frame=frame.head(2000), artifacts=artifacts)
    return replace(result, assessment=assessment, phase=state, flywheel=loop)
