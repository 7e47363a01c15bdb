"""Run history in the store: runs with their evaluations and scores, objective versions, phase moves."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, select

from flywheel.registry._connection import StoreConnection
from flywheel.registry._schema import (
    EvaluationRow,
    ObjectiveVersionRow,
    PhaseEventRow,
    RunRow,
    ScoreRow,
)

if TYPE_CHECKING:
    from flywheel.evaluation import Evaluation

__all__ = [
    "RunQueries",
    "RunRecord",
]


@dataclass(frozen=True)
class RunRecord:
    """What the store keeps of a run: who and when, the fingerprints, the headline, every evaluation."""

    run_id: str
    project: str
    started_at: datetime
    finished_at: datetime
    flywheel_version: str
    data_fingerprint: str
    split_fingerprint: str
    objective_version: str
    optimize_metric: str
    best_model: str | None
    best_value: float | None
    verdict: str
    report_path: Path | None
    result: dict[str, Any]  # the whole run, JSON-ready
    evaluations: list[Evaluation]


def _evaluation_row(run: RunRecord, ev: Evaluation) -> EvaluationRow:
    """One evaluation of a run, with a score row per metric and split and per systems metric."""
    er = EvaluationRow(
        model=ev.name,
        role=ev.role,
        kind=ev.kind,
        description=ev.description,
        data_fingerprint=run.data_fingerprint,
        split_fingerprint=run.split_fingerprint,
        error=ev.error,
        notes_json=json.dumps(list(ev.notes)),
    )
    for split, values in ev.metrics.items():
        for m, v in values.items():
            low, high = ev.intervals.get(split, {}).get(m, (None, None))
            er.scores.append(ScoreRow(split=split, metric=m, value=v, lower=low, upper=high))
    spans = ev.intervals.get("systems", {})
    er.scores.extend(
        ScoreRow(
            split="systems",
            metric=m,
            value=v,
            lower=spans.get(m, (None, None))[0],
            upper=spans.get(m, (None, None))[1],
        )
        for m, v in ev.systems.items()
    )
    return er


class Recordable(Protocol):
    """Anything that gives the store its record: :class:`flywheel.RunResult` does."""

    def record(self) -> RunRecord:
        """The record the store keeps."""
        ...


class RunQueries(StoreConnection):
    """Writing and reading runs, the objective log and phase moves."""

    def save_run(self, run: RunRecord | Recordable) -> None:
        """Write a run and all its evaluations in one transaction (a ``RunResult`` is taken as its record)."""
        if not isinstance(run, RunRecord):
            run = run.record()
        row = RunRow(
            id=run.run_id,
            project=run.project,
            started_at=run.started_at,
            finished_at=run.finished_at,
            status="ok",
            flywheel_version=run.flywheel_version,
            data_fingerprint=run.data_fingerprint,
            split_fingerprint=run.split_fingerprint,
            objective_version=run.objective_version,
            optimize_metric=run.optimize_metric,
            best_model=run.best_model,
            best_value=run.best_value,
            verdict=run.verdict,
            report_path=str(run.report_path) if run.report_path else None,
            result_json=json.dumps(run.result, default=str),
        )
        for ev in run.evaluations:
            row.evaluations.append(_evaluation_row(run, ev))
        with self.session() as s:
            s.add(row)

    def set_report_path(self, run_id: str, path: Path) -> None:
        """Record where a run's report was written."""
        with self.session() as s:
            run = s.get(RunRow, run_id)
            if run is not None:
                run.report_path = str(path)

    def set_timings(self, run_id: str, timings: dict[str, float]) -> None:
        """Record the seconds each stage of a run took, the store's own included (known only once
        the run is stored)."""
        with self.session() as s:
            run = s.get(RunRow, run_id)
            if run is not None:
                result = json.loads(run.result_json)
                result["timings"] = timings
                run.result_json = json.dumps(result)

    def record_objective(
        self, project: str, version: str, formula: dict[str, Any], reason: str | None, when: datetime
    ) -> str | None:
        """Store an objective version the first time it is used; return the previous one if it changed."""
        with self.session() as s:
            rows = s.scalars(
                select(ObjectiveVersionRow)
                .where(ObjectiveVersionRow.project == project)
                .order_by(ObjectiveVersionRow.id)
            ).all()
            if rows and rows[-1].version == version:
                return None
            s.add(
                ObjectiveVersionRow(
                    project=project,
                    version=version,
                    first_seen=when,
                    reason=reason,
                    formula_json=json.dumps(formula, sort_keys=True),
                )
            )
            return rows[-1].version if rows else None

    def objective_log(self, project: str) -> list[dict[str, Any]]:
        """The project's objective versions, oldest first, with how many runs each judged."""
        with self.session() as s:
            counts = dict(
                s.execute(
                    select(RunRow.objective_version, func.count())
                    .where(RunRow.project == project)
                    .group_by(RunRow.objective_version)
                ).all()
            )
            return [
                {
                    "version": r.version,
                    "first_seen": r.first_seen.isoformat(),
                    "reason": r.reason,
                    "formula": json.loads(r.formula_json),
                    "runs": int(counts.get(r.version, 0)),
                }
                for r in s.scalars(
                    select(ObjectiveVersionRow)
                    .where(ObjectiveVersionRow.project == project)
                    .order_by(ObjectiveVersionRow.id)
                )
            ]

    def list_runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, as plain dicts."""
        query = select(RunRow).order_by(RunRow.started_at.desc(), RunRow.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.session() as s:
            return [
                {
                    "id": r.id,
                    "project": r.project,
                    "started_at": r.started_at.isoformat(),
                    "data_fingerprint": r.data_fingerprint,
                    "split_fingerprint": r.split_fingerprint,
                    "objective_version": r.objective_version,
                    "optimize": r.optimize_metric,
                    "best_model": r.best_model,
                    "best_value": r.best_value,
                    "verdict": r.verdict,
                    "report_path": r.report_path,
                }
                for r in s.scalars(query)
            ]

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """A stored run's full result, or ``None``."""
        with self.session() as s:
            run = s.get(RunRow, run_id)
            return None if run is None else dict(json.loads(run.result_json))

    def record_phase(self, project: str, when: datetime, from_phase: str, to_phase: str, reason: str) -> None:
        """Record a move between lifecycle phases."""
        with self.session() as s:
            s.add(
                PhaseEventRow(
                    project=project, at=when, from_phase=from_phase, to_phase=to_phase, reason=reason
                )
            )

    def phase_events(self, project: str) -> list[dict[str, Any]]:
        """Recorded phase moves, oldest first."""
        with self.session() as s:
            rows = s.scalars(
                select(PhaseEventRow).where(PhaseEventRow.project == project).order_by(PhaseEventRow.id)
            )
            return [
                {"at": r.at.isoformat(), "from": r.from_phase, "to": r.to_phase, "reason": r.reason}
                for r in rows
            ]

    def run_summaries(self, project: str) -> list[dict[str, Any]]:
        """Each run of ``project``, oldest first, with how many of its models were candidates."""
        with self.session() as s:
            counts = dict(
                s.execute(
                    select(EvaluationRow.run_id, func.count())
                    .where(EvaluationRow.role == "candidate")
                    .group_by(EvaluationRow.run_id)
                ).all()
            )
            rows = s.scalars(
                select(RunRow).where(RunRow.project == project).order_by(RunRow.started_at, RunRow.id)
            )
            return [
                {"id": r.id, "started_at": r.started_at.isoformat(), "candidates": int(counts.get(r.id, 0))}
                for r in rows
            ]

    def latest_run(self, project: str) -> dict[str, Any] | None:
        """The newest stored run of ``project`` (its full result), or ``None``."""
        with self.session() as s:
            row = s.scalars(
                select(RunRow)
                .where(RunRow.project == project)
                .order_by(RunRow.started_at.desc(), RunRow.id.desc())
            ).first()
            return None if row is None else dict(json.loads(row.result_json))
