"""The typed value the main job returns: everything one run measured, with its fingerprints.

It sits between the stages that fill it (baselines, diagnosis, scoping, evaluation) and the
ones that read it (the report, the store's record of a run, the gate, the CLI), so each of
those imports it from here rather than from the pipeline that makes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flywheel.baselines import HumanLevel, NeedML
from flywheel.diagnosis import Diagnosis, Forecast
from flywheel.evaluation import Evaluation, Objective, Ranking, Verdict
from flywheel.registry import RunRecord
from flywheel.scoping import Assessment, PhaseState

__all__ = [
    "RunResult",
]


@dataclass(frozen=True, eq=False)
class RunResult:
    """Everything one run measured, with the fingerprints that produced it."""

    run_id: str
    project: str
    started_at: datetime
    finished_at: datetime
    flywheel_version: str
    data: dict[str, Any]
    split: dict[str, Any]
    objective: Objective
    metrics: list[str]
    evaluations: list[Evaluation]
    ranking: Ranking
    verdict: Verdict
    declared: list[dict[str, Any]]
    ladder: list[dict[str, Any]] = field(default_factory=list)
    need_ml: NeedML | None = None
    sensitivity: list[dict[str, Any]] = field(default_factory=list)
    human: HumanLevel | None = None
    diagnosis: Diagnosis | None = None
    forecast: Forecast | None = None
    assessment: Assessment | None = None
    phase: PhaseState | None = None
    flywheel: dict[str, Any] | None = None  # the served loop: labels over time, retrains
    report_path: Path | None = None
    notes: list[str] = field(default_factory=list)
    # Wall-clock seconds of each stage, in the order they ran (data, ladder and candidates,
    # learning curve and forecast, diagnosis, scoping, report, store): where a run's time went.
    timings: dict[str, float] = field(default_factory=dict)

    def evaluation(self, name: str) -> Evaluation:
        """The evaluation of the model called ``name``."""
        return next(e for e in self.evaluations if e.name == name)

    def record(self) -> RunRecord:
        """What the store keeps of this run."""
        best = self.ranking.best
        return RunRecord(
            run_id=self.run_id,
            project=self.project,
            started_at=self.started_at,
            finished_at=self.finished_at,
            flywheel_version=self.flywheel_version,
            data_fingerprint=self.data["fingerprint"],
            split_fingerprint=self.split["fingerprint"],
            objective_version=self.objective.version,
            optimize_metric=self.objective.optimize.name,
            best_model=best,
            best_value=next((s.value for s in self.ranking.standings if s.name == best), None),
            verdict=self.verdict.status,
            report_path=self.report_path,
            result=self.to_dict(),
            evaluations=self.evaluations,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the whole result."""
        return {
            "run_id": self.run_id,
            "project": self.project,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "flywheel_version": self.flywheel_version,
            "data": self.data,
            "split": self.split,
            "objective": self.objective.to_dict(),
            "metrics": self.metrics,
            "evaluations": [e.to_dict() for e in self.evaluations],
            "ranking": self.ranking.to_dict(),
            "verdict": self.verdict.to_dict(),
            "declared": self.declared,
            "ladder": self.ladder,
            "need_ml": self.need_ml.to_dict() if self.need_ml else None,
            "sensitivity": self.sensitivity,
            "human": self.human.to_dict() if self.human else None,
            "diagnosis": self.diagnosis.to_dict() if self.diagnosis else None,
            "forecast": self.forecast.to_dict() if self.forecast else None,
            "assessment": self.assessment.to_dict() if self.assessment else None,
            "phase": self.phase.to_dict() if self.phase else None,
            "flywheel": self.flywheel,
            "report_path": str(self.report_path) if self.report_path else None,
            "notes": self.notes,
            "timings": self.timings,
        }
