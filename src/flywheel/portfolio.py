"""A portfolio of projects: ranked by impact and feasibility, on one chart with uncertainty bars.

Each project is assessed from its file and its store (the latest run), exactly as
``flywheel assess`` does; a project that has never run sits on the chart with the wide
ranges of declared-only evidence. The ranking is by expected value: impact × feasibility,
ties broken by impact. The chart is an inline SVG in a self-contained HTML page, and a PNG
(matplotlib) for slides.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel.lifecycle import PhaseState, gather
from flywheel.project import Project, load_project
from flywheel.scoping import Assessment, assess

__all__ = [
    "Entry",
    "assess_path",
    "portfolio",
    "quadrant",
    "write_chart_html",
    "write_chart_png",
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


_COLOURS = {"software-2.0": "#2f6fd0", "human-in-the-loop": "#2e8b57", "autonomous": "#c0504d"}


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def write_chart_html(entries: list[Entry], path: Path) -> Path:
    """The chart (inline SVG, no scripts) and the table, in one self-contained page."""
    size, pad = 520, 40

    def x(v: float) -> float:
        return pad + size * v

    def y(v: float) -> float:
        return pad + size * (1 - v)

    points = []
    for e in entries:
        a = e.assessment
        f, i = a.feasibility, a.impact
        points.append(
            {
                "name": a.project,
                "rank": e.rank,
                "x": x(f.score),
                "y": y(i.score),
                "x_low": x(f.low),
                "x_high": x(f.high),
                "y_low": y(i.low),
                "y_high": y(i.high),
                "colour": _COLOURS[a.archetype],
                "measured": a.run_id is not None,
            }
        )
    from flywheel.report import template

    html = template("portfolio.html.j2").render(
        size=size, pad=pad, points=points, rows=[e.to_dict() for e in entries]
    )
    _atomic_write(path, html.encode("utf-8"))
    return path


def write_chart_png(entries: list[Entry], path: Path) -> Path:
    """The same chart as a PNG, for slides (matplotlib, headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6), dpi=150)
    try:
        ax.axhline(0.5, color="#e3e7ee", zorder=0)
        ax.axvline(0.5, color="#e3e7ee", zorder=0)
        for e in entries:
            a = e.assessment
            f, i = a.feasibility, a.impact
            colour = _COLOURS[a.archetype]
            ax.errorbar(
                f.score,
                i.score,
                xerr=[[f.score - f.low], [f.high - f.score]],
                yerr=[[i.score - i.low], [i.high - i.score]],
                fmt="o",
                color=colour,
                mfc=colour if a.run_id else "white",
                alpha=0.85,
                capsize=3,
            )
            ax.annotate(
                f"{e.rank}. {a.project}", (f.score, i.score), textcoords="offset points", xytext=(7, 7)
            )
        for text, (tx, ty), ha in (
            ("do first", (0.98, 0.97), "right"),
            ("long shot", (0.02, 0.97), "left"),
            ("quick win", (0.98, 0.02), "right"),
            ("reconsider", (0.02, 0.02), "left"),
        ):
            ax.text(tx, ty, text, ha=ha, color="#6a7383", transform=ax.transAxes)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("feasibility (data, accuracy requirement, difficulty)")
        ax.set_ylabel("impact")
        ax.set_title("Portfolio: impact × feasibility (filled: measured, open: declared only)")
        fd, tmp = tempfile.mkstemp(dir=path.parent if path.parent.exists() else None, suffix=".png")
        os.close(fd)
        fig.savefig(tmp, format="png", bbox_inches="tight")
        _atomic_write(path, Path(tmp).read_bytes())
        Path(tmp).unlink(missing_ok=True)
    finally:
        plt.close(fig)
    return path
