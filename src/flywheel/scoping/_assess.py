"""The Assessment that ties scoping together: feasibility (three drivers), impact, the archetype's
questions and advice, the feasibility checklist, readiness and the personal-data scan of one project.

Everything here reads plain values: the project, a run as stored (``RunResult.to_dict()``),
a sample of the data for the personal-data scan, and the artifacts the store holds. It never
fits a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from flywheel.project import Project
from flywheel.scoping._archetypes import _ADVICE, _questions
from flywheel.scoping._checklist import CheckItem, _checklist
from flywheel.scoping._evidence import Driver, _best
from flywheel.scoping._feasibility import _accuracy_driver, _data_driver, _difficulty_driver
from flywheel.scoping._impact import _impact
from flywheel.scoping._personal_data import PersonalData, find_personal_data
from flywheel.scoping._readiness import _readiness

__all__ = [
    "Assessment",
    "assess",
]


@dataclass(frozen=True)
class Assessment:
    """Feasibility (three drivers), impact, archetype guidance, checklist and readiness of one project."""

    project: str
    archetype: str
    data: Driver
    accuracy: Driver
    difficulty: Driver
    impact: Driver
    impact_value: float | None  # net value per year (declared value minus measured error cost)
    questions: list[dict[str, str]]
    advice: str
    checklist: list[CheckItem]
    readiness: dict[str, Any]
    personal_data: list[PersonalData] = field(default_factory=list)
    run_id: str | None = None

    @property
    def feasibility(self) -> Driver:
        """The three drivers together (their mean, with the mean range)."""
        parts = (self.data, self.accuracy, self.difficulty)
        return Driver(
            "feasibility",
            float(np.mean([p.score for p in parts])),
            float(np.mean([p.low for p in parts])),
            float(np.mean([p.high for p in parts])),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        f = self.feasibility
        return {
            "project": self.project,
            "archetype": self.archetype,
            "run_id": self.run_id,
            "feasibility": {"score": f.score, "low": f.low, "high": f.high},
            "drivers": {d.name: d.to_dict() for d in (self.data, self.accuracy, self.difficulty)},
            "impact": self.impact.to_dict(),
            "impact_value": self.impact_value,
            "questions": self.questions,
            "advice": self.advice,
            "checklist": [c.to_dict() for c in self.checklist],
            "readiness": self.readiness,
            "personal_data": [p.to_dict() for p in self.personal_data],
        }


def assess(
    project: Project,
    run: dict[str, Any] | None = None,
    *,
    frame: pd.DataFrame | None = None,
    artifacts: dict[str, Any] | None = None,
) -> Assessment:
    """Score a project from its file (declared) and its latest run (measured).

    ``run`` is a run as stored (``RunResult.to_dict()``); ``frame`` a sample of the data for the
    personal-data scan; ``artifacts`` what the store holds (see :func:`flywheel.scoping.gather`).
    """
    arts = dict(artifacts or {})
    pii = (
        find_personal_data(frame.drop(columns=[project.data.target], errors="ignore"))
        if frame is not None
        else []
    )
    if frame is not None:
        arts["pii_scanned"] = True
        arts["data_checked"] = True
    if run is not None:
        arts.setdefault("run_stored", True)
        arts.setdefault("ladder", bool(run.get("ladder")))
        arts.setdefault("diagnosis", bool(run.get("diagnosis")))
        best = _best(run)
        evals = {e["name"]: e for e in run.get("evaluations", [])}
        if (
            best is not None
            and evals.get(best["name"], {}).get("systems", {}).get("latency_p95_ms") is not None
        ):
            arts.setdefault("latency", True)
    impact, net = _impact(project, run)
    return Assessment(
        project=project.project,
        archetype=project.archetype,
        data=_data_driver(project, run, pii),
        accuracy=_accuracy_driver(project, run),
        difficulty=_difficulty_driver(project, run),
        impact=impact,
        impact_value=net,
        questions=_questions(project, run, arts),
        advice=_ADVICE[project.archetype],
        checklist=_checklist(project, run),
        readiness=_readiness(project, arts),
        personal_data=pii,
        run_id=(run or {}).get("run_id"),
    )
