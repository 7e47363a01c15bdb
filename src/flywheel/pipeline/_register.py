"""What a run leaves in the registry besides the run: the objective's version, the fitted artifacts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from flywheel.data import Dataset
from flywheel.evaluation import Objective, artifact_sha256
from flywheel.project import Project
from flywheel.registry import Store, save_version
from flywheel.results import RunResult

__all__ = [
    "note_objective_change",
    "register_artifacts",
]


def note_objective_change(
    db: Store, proj: Project, objective: Objective, started: datetime, notes: list[str]
) -> None:
    """Record the objective's version; a note in ``notes`` when it changed since the last run."""
    previous = db.record_objective(
        proj.project,
        objective.version,
        objective.to_dict(),
        proj.objective.reason,
        started,
    )
    if previous is not None:
        notes.append(
            f"the objective changed since the last run ({previous} -> "
            f"{objective.version}); `flywheel objective log` shows its history"
        )


def register_artifacts(db: Store, proj: Project, result: RunResult, dataset: Dataset) -> None:
    """Save each fitted candidate as a new version when it changed; the best candidate becomes challenger.

    An artifact identical to the latest version of its name (same bytes) is not saved again.
    """
    best_candidate = next(
        (s.name for s in result.ranking.standings if s.role == "candidate" and s.eligible), None
    )
    for ev in result.evaluations:
        if ev.artifact is None:
            continue
        latest = db.latest_model(proj.project, ev.name)
        same = (
            latest is not None
            and latest["data_fingerprint"] == result.data["fingerprint"]
            and latest["sha256"] in (None, artifact_sha256(ev.artifact))
            and Path(latest["path"]).is_file()
            and Path(latest["path"]).read_bytes() == ev.artifact
        )
        if same:
            saved = latest
        else:
            saved = save_version(
                db,
                proj,
                ev.name,
                ev.artifact,
                dataset,
                split_fingerprint=result.split["fingerprint"],
                objective_version=result.objective.version,
                run_id=result.run_id,
                when=result.finished_at,
            )
        if ev.name == best_candidate and saved is not None:
            db.set_alias(
                proj.project,
                "challenger",
                saved["id"],
                result.finished_at,
                note=f"best candidate of run {result.run_id}",
            )
