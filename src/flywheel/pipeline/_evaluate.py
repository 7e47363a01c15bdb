"""Evaluating all: every rung of the ladder and every candidate as an independent, time-boxed task.

On the local executor a task does everything: fit, predict, score, time, pickle the artifact. On
any other (a Dask cluster) a task fits, predicts and scores, and the run's own process finishes
the evaluation: it pickles the models (their size, the candidates' artifacts), which a worker
cannot do for a model of the project's own classes (it holds the project's modules by value, not
by name), and, when the workers may be other machines, times each model's latency. Latency timed
on whichever worker a task landed on would be that machine's: two models timed on different
machines, or this run and a local one, could not be compared, and a latency constraint would be
judged on whatever hardware the cluster had free. So latency is always this machine's; fit time
and memory are measured with the fit.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from flywheel.evaluation import Candidate, Evaluation, evaluate, evaluate_elsewhere, finish_here
from flywheel.execution import Executor, LocalExecutor, Outcome, Task
from flywheel.pipeline._plan import Plan, Progress

__all__ = [
    "evaluate_all",
]


_WAVES_ROWS = 100_000  # above this many training rows the learned models run after the cheap rungs


def evaluate_all(
    plan_: Plan, metrics: list[str], executor: Executor, progress: Progress | None
) -> list[Evaluation]:
    """Every rung and candidate as an independent task, each within its time budget."""
    budget = plan_.project.baselines.budget_for(len(plan_.split.train))
    in_task = isinstance(executor, LocalExecutor)  # its processes import the project's modules by name
    time_here = not getattr(executor, "same_machine", True)
    # On a large training set, two waves: the cheap rungs together, then the learned models, so a
    # lone long fit (the ladder's boosted trees: minutes) starts with every core's threads instead
    # of one and no core idles beside it (:class:`LocalExecutor`). On a small one, one wave with
    # the models first and the cheap rungs filling the gaps: there the overlap saves more than a
    # second thread would. Results come back in ladder order.
    models = [i for i, c in reversed(list(enumerate(plan_.candidates))) if c.stage == "model"]
    cheap = [i for i, c in enumerate(plan_.candidates) if c.stage != "model"]
    waves = [cheap, models] if len(plan_.split.train) > _WAVES_ROWS else [models + cheap]
    levels = plan_.objective.confidence_levels()
    fn = evaluate if in_task else partial(evaluate_elsewhere, latency=not time_here)
    tasks = [
        Task(c.name, partial(fn, c, plan_.dataset, plan_.split, metrics, levels=levels), budget)
        for c in plan_.candidates
    ]
    finished = 0

    def done(outcome: Outcome, _finished: int, _total: int) -> None:
        nonlocal finished
        finished += 1
        if progress:
            progress(f"done {outcome.name}", finished, len(tasks))

    if progress:
        progress("fitting " + ", ".join(c.name for c in plan_.candidates[:3]) + " …", 0, len(tasks))
    ran: dict[int, Outcome] = {}
    for wave in waves:
        if wave:
            ran.update(zip(wave, executor.run([tasks[i] for i in wave], done), strict=True))
    outcomes = [ran[i] for i in range(len(tasks))]
    if not in_task:
        outcomes = [
            _finished_here(plan_, c, o, time_here) for c, o in zip(plan_.candidates, outcomes, strict=True)
        ]
    return [_evaluation(cand, outcome) for cand, outcome in zip(plan_.candidates, outcomes, strict=True)]


def _finished_here(plan_: Plan, cand: Candidate, outcome: Outcome, time_here: bool) -> Outcome:
    """The outcome of :func:`evaluate_elsewhere` finished in this process (artifact, latency if asked).

    Latency is timed one model at a time on one core, as a local run times each on its share of
    the cores (one each, by default).
    """
    if outcome.error is not None or not isinstance(outcome.value, tuple):
        return outcome
    from threadpoolctl import threadpool_limits

    ev, model = outcome.value
    try:
        with threadpool_limits(limits=1):
            ev = finish_here(ev, model, cand, plan_.dataset, plan_.split, latency=time_here)
    except Exception as exc:  # the evaluation stands, without what could not be made
        line = (str(exc).strip().splitlines() or [""])[0]
        ev = replace(ev, notes=(*ev.notes, f"artifact or latency not made: {type(exc).__name__}: {line}"))
    return replace(outcome, value=ev)


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
