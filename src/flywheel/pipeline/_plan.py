"""The plan of a run: every check and resolution that needs no fitting, done before the first fit.

Everything that can be wrong with the user's input (the project file, the data,
import paths, prediction files) is checked here, so a bad input costs seconds
and never changes what is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from flywheel.baselines import HumanLevel, build_ladder, measure_annotators
from flywheel.data import Dataset, Split, load_dataset, split_dataset
from flywheel.diagnosis import Curve, read_history
from flywheel.errors import ProjectError
from flywheel.evaluation import Candidate, Objective, make_objective, resolve_candidates
from flywheel.project import Project

__all__ = [
    "Plan",
    "Progress",
    "check_target",
    "default_metrics",
    "plan",
]

# Called with (stage description, step index, total steps) as the job advances.
Progress = Callable[[str, int, int], None]

_DEFAULT_METRICS = {
    "binary": ["accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss"],
    "multiclass": ["accuracy", "balanced_accuracy", "f1_macro", "log_loss"],
    "regression": ["rmse", "mae", "r2"],
}


def default_metrics(task: str, objective: Objective) -> list[str]:
    """The objective's metrics first, then the task's usual ones, without repeats."""
    return list(dict.fromkeys([*objective.quality_metrics(), *_DEFAULT_METRICS[task]]))


@dataclass(frozen=True, eq=False)
class Plan:
    """Everything checked and resolved before the first fit."""

    project: Project
    dataset: Dataset
    split: Split
    objective: Objective
    candidates: list[Candidate]
    human: HumanLevel | None = None
    history: Curve | None = None


def plan(project: Project, *, candidates: bool = True) -> Plan:
    """Every check that needs no fitting: data, split, objective against the task, imports."""
    where = project.where
    ds = load_dataset(project.data, project.root, where=where)
    split = split_dataset(ds, project.data.split, where=where)
    objective = make_objective(
        project.objective, ds.task, project.objective_fingerprint(), where, classes=ds.classes
    )
    needed = np.concatenate([split.valid, split.test])
    entrants = build_ladder(project, ds, where)
    if candidates:
        entrants += resolve_candidates(project, ds, needed, where)
    human = None
    spec = project.baselines.human
    if spec is not None and spec.annotators:
        human = measure_annotators(
            project.resolve(spec.annotators), ds, objective.primary.name, given=spec.annotators, where=where
        )
    history = None
    if project.diagnosis.history:
        given = project.diagnosis.history
        history = read_history(project.resolve(given), objective.primary, given=given, where=where)
    return Plan(project, ds, split, objective, entrants, human, history)


def check_target(plan_: Plan, target: float | None) -> None:
    """A forecast target given on the command line must lie in the primary metric's range."""
    if target is not None:
        ref = plan_.objective.primary
        if not ref.lower <= target <= ref.upper:
            raise ProjectError(
                f"--target {target:g} is outside {ref.name}'s range [{ref.lower:g}, {ref.upper:g}]"
            )
