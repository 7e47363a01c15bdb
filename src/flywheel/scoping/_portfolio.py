"""A portfolio of projects: ranked by impact and feasibility, on one chart with uncertainty bars.

Each project is assessed from its file and its store (the latest run), exactly as
``flywheel assess`` does; a project that has never run sits on the chart with the wide
ranges of declared-only evidence. The ranking is by expected value: impact × feasibility,
ties broken by impact. The chart is an inline SVG in a self-contained HTML page, and a PNG
(matplotlib) for slides.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel.project import Project, load_project
from flywheel.scoping._assess import Assessment, assess
from flywheel.scoping._lifecycle import PhaseState, gather

__all__ = [
    "Entry",
    "assess_path",
    "portfolio",
    "quadrant",
]


@dataclass(frozen=True)
class Entry:
    """One project in the portfolio: its assessment, phase and rank."""

    path: Path
    assessment: Assessment
    phase: PhaseState
    rank: int = 0

    @property
    def priority(self) -> float:
        """Expected value on the chart: impact × feasibility."""
        return self.assessment.impact.score * self.assessment.feasibility.score

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        f, i = self.assessment.feasibility, self.assessment.impact
        return {
            "rank": self.rank,
            "project": self.assessment.project,
            "path": str(self.path),
            "archetype": self.assessment.archetype,
            "phase": self.phase.phase,
            "feasibility": {"score": f.score, "low": f.low, "high": f.high},
            "impact": {"score": i.score, "low": i.low, "high": i.high, "measured": i.measured},
            "net_value_per_year": self.assessment.impact_value,
            "priority": self.priority,
            "quadrant": quadrant(self.assessment),
            "measured": self.assessment.run_id is not None,
            # What the feasibility score is made of, for a hover or a table beside the chart.
            "drivers": {
                d.name: {"score": d.score, "low": d.low, "high": d.high, "measured": d.measured}
                for d in (self.assessment.data, self.assessment.accuracy, self.assessment.difficulty)
            },
            "advice": self.assessment.advice,
        }


def quadrant(a: Assessment) -> str:
    """Where the project sits: do first, quick win, long shot, or reconsider."""
    high_impact, feasible = a.impact.score >= 0.5, a.feasibility.score >= 0.5
    return {
        (True, True): "do first",
        (False, True): "quick win",
        (True, False): "long shot",
        (False, False): "reconsider",
    }[(high_impact, feasible)]


def assess_path(
    path: str | os.PathLike[str],
) -> tuple[Project, Assessment, PhaseState, dict[str, Any] | None]:
    """A project's assessment from its file and store: (project, assessment, phase, latest run)."""
    project: Project = load_project(path)
    found = gather(project)
    assessment = assess(project, found.run, frame=found.sample, artifacts=found.artifacts)
    return project, assessment, found.phase, found.run


def _entry(path: str | os.PathLike[str]) -> Entry:
    project, assessment, phase, _ = assess_path(path)
    return Entry(project.path, assessment, phase)


def portfolio(paths: list[str | os.PathLike[str]]) -> list[Entry]:
    """Assess every project and rank them, best expected value first.

    Raises
    ------
    FlywheelError
        When a path holds no valid project file (one line naming it), or two share a name.
    """
    from flywheel.errors import ProjectError

    entries = [_entry(p) for p in paths]
    names: dict[str, Path] = {}
    for e in entries:
        if e.assessment.project in names:
            first = names[e.assessment.project]
            raise ProjectError(f"two projects are both called {e.assessment.project!r}: {first} and {e.path}")
        names[e.assessment.project] = e.path
    ordered = sorted(entries, key=lambda e: (-e.priority, -e.assessment.impact.score, e.assessment.project))
    return [Entry(e.path, e.assessment, e.phase, i + 1) for i, e in enumerate(ordered)]
