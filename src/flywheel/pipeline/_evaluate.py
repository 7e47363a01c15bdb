"""Evaluating all: every rung of the ladder and every candidate as an independent, time-boxed task."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from flywheel.evaluation import Candidate, Evaluation, evaluate
from flywheel.execution import Executor, Outcome, Task
from flywheel.pipeline._plan import Plan, Progress

__all__ = [
    "evaluate_all",
]


def evaluate_all(
    plan_: Plan, metrics: list[str], executor: Executor, progress: Progress | None
) -> list[Evaluation]:
    """Every rung and candidate as an independent task, each within its time budget."""
    budget = plan_.project.baselines.time_budget_s
    # The slow fits (learned models) start first, so the cheap rungs fill the gaps around them;
    # results come back in ladder order whatever the order they ran in.
    order = sorted(range(len(plan_.candidates)), key=lambda i: (plan_.candidates[i].stage != "model", -i))
    candidates = [plan_.candidates[i] for i in order]
    tasks = [
        Task(
            c.name,
            partial(
                evaluate, c, plan_.dataset, plan_.split, metrics, levels=plan_.objective.confidence_levels()
            ),
            budget,
        )
        for c in candidates
    ]

    def done(outcome: Outcome, finished: int, total: int) -> None:
        if progress:
            progress(f"done {outcome.name}", finished, total)

    if progress:
        progress("fitting " + ", ".join(c.name for c in plan_.candidates[:3]) + " …", 0, len(tasks))
    ran = executor.run(tasks, done)
    outcomes: list[Outcome] = [ran[0]] * len(ran)
    for position, outcome in zip(order, ran, strict=True):
        outcomes[position] = outcome
    return [_evaluation(cand, outcome) for cand, outcome in zip(plan_.candidates, outcomes, strict=True)]


def _evaluation(cand: Candidate, outcome: Outcome) -> Evaluation:
    """What a task returned, or a failed evaluation that says why."""
    if outcome.error is not None or not isinstance(outcome.value, Evaluation):
        return Evaluation(
            cand.name,
            cand.role,
            cand.kind,
            cand.description,
            cand.stage,
            error=outcome.error or "returned no evaluation",
        )
    # the wall time of the whole task: fit, predictions, intervals
    value = outcome.value
    return replace(value, systems={**value.systems, "wall_time_s": outcome.elapsed_s})
