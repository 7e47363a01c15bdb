"""The objective: one metric to optimize, the others as constraints, and the verdict.

Models are chosen by one number. The objective ranks candidates by the
``optimize`` metric on the selection split (valid, or test when there is no
valid split), after checking every constraint; a model that breaks a constraint
is listed with the constraints it breaks and by how much, never silently
dropped. The verdict compares the chosen model's *test* score with the success
target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from flywheel.errors import ProjectError
from flywheel.evaluate import Evaluation
from flywheel.metrics import METRICS, Metric, metric_names
from flywheel.project import PROJECT_FILE, Bound, ObjectiveSpec
from flywheel.systems import SYSTEMS_METRICS

__all__ = [
    "Objective",
    "Ranking",
    "Standing",
    "Verdict",
    "Violation",
    "judge",
    "make_objective",
    "rank",
]


@dataclass(frozen=True)
class Objective:
    """The optimized metric, the success target and the constraints, checked against the task."""

    optimize: Metric
    target: float | None
    constraints: dict[str, Bound]
    version: str

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b`` on the optimized metric."""
        return a > b if self.optimize.greater_is_better else a < b

    def meets_target(self, value: float) -> bool:
        """Whether ``value`` reaches the success target."""
        assert self.target is not None
        return value >= self.target if self.optimize.greater_is_better else value <= self.target

    def quality_metrics(self) -> list[str]:
        """Quality metrics the objective needs computed: optimize first, then constrained ones."""
        return [self.optimize.name] + [
            m for m in self.constraints if m in METRICS and m != self.optimize.name
        ]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "optimize": self.optimize.name,
            "greater_is_better": self.optimize.greater_is_better,
            "target": self.target,
            "version": self.version,
            "constraints": {k: b.model_dump(exclude_none=True) for k, b in self.constraints.items()},
        }


def make_objective(spec: ObjectiveSpec, task: str, version: str, where: str = PROJECT_FILE) -> Objective:
    """Check the objective's metrics against the task and build an :class:`Objective`."""
    allowed = metric_names(task)
    for field_name, name in [("objective.optimize", spec.optimize)] + [
        (f"objective.constraints.{m}", m) for m in spec.constraints if m in METRICS
    ]:
        if name not in allowed:
            raise ProjectError(
                f"{where}: {field_name} {name!r} does not apply to a {task} target; "
                f"allowed: {', '.join(allowed)}"
            )
    metric = METRICS[spec.optimize]
    if spec.target is not None and not metric.lower <= spec.target <= metric.upper:
        raise ProjectError(
            f"{where}: objective.target must lie in [{metric.lower}, {metric.upper}] for "
            f"{metric.name}; got {spec.target}"
        )
    return Objective(metric, spec.target, dict(spec.constraints), version)


@dataclass(frozen=True)
class Violation:
    """A constraint a model breaks, or cannot be checked on (``value`` is None)."""

    metric: str
    bound: dict[str, float]
    value: float | None
    by: float | None

    def describe(self) -> str:
        """``latency_p95_ms 3.1 > max 2 (by 1.1)`` or ``size_mb not measured``."""
        if self.value is None:
            return f"{self.metric} not measured"
        side = "max" if "max" in self.bound and self.value > self.bound["max"] else "min"
        op = ">" if side == "max" else "<"
        return f"{self.metric} {self.value:.4g} {op} {side} {self.bound[side]:g} (by {self.by:.3g})"


@dataclass(frozen=True)
class Standing:
    """A model's place in the ranking."""

    name: str
    role: str
    value: float | None
    test_value: float | None
    feasible: bool | None  # None: a constraint could not be checked
    violations: tuple[Violation, ...] = ()
    rank: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "name": self.name,
            "role": self.role,
            "rank": self.rank,
            "value": self.value,
            "test_value": self.test_value,
            "feasible": self.feasible,
            "violations": [v.describe() for v in self.violations],
        }


@dataclass(frozen=True)
class Ranking:
    """Every model in order: feasible ones by the optimized metric, then the rest."""

    standings: tuple[Standing, ...]
    selection_split: str
    best: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "selection_split": self.selection_split,
            "best": self.best,
            "standings": [s.to_dict() for s in self.standings],
        }


@dataclass(frozen=True)
class Verdict:
    """Whether the chosen model reaches the success target on test."""

    status: Literal["pass", "fail", "inconclusive"]
    reason: str
    model: str | None = None
    value: float | None = None
    target: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "status": self.status,
            "reason": self.reason,
            "model": self.model,
            "value": self.value,
            "target": self.target,
        }


def _constraint_value(ev: Evaluation, metric: str, split: str) -> float | None:
    if metric in SYSTEMS_METRICS:
        return ev.systems.get(metric)
    return ev.value(metric, split)


def _standing(ev: Evaluation, obj: Objective, split: str) -> Standing:
    violations = []
    unknown = False
    for metric, bound in obj.constraints.items():
        value = _constraint_value(ev, metric, split)
        if value is None:
            unknown = True
            violations.append(Violation(metric, bound.model_dump(exclude_none=True), None, None))
        elif not bound.holds(value):
            violations.append(
                Violation(metric, bound.model_dump(exclude_none=True), value, bound.violation(value))
            )
    broken = any(v.value is not None for v in violations)
    feasible = False if broken else (None if unknown else True)
    return Standing(
        ev.name,
        ev.role,
        ev.value(obj.optimize.name, split),
        ev.value(obj.optimize.name, "test"),
        feasible,
        tuple(violations),
    )


def rank(evaluations: Sequence[Evaluation], obj: Objective, selection_split: str) -> Ranking:
    """Rank feasible models by the optimized metric on ``selection_split``.

    Order: feasible, then those whose constraints could not all be checked, then
    infeasible; within each, best optimized value first; failed models last.
    The best model is the first feasible one with a value.
    """
    sign = -1.0 if obj.optimize.greater_is_better else 1.0
    group = {True: 0, None: 1, False: 2}
    standings = [_standing(ev, obj, selection_split) for ev in evaluations if ev.ok]
    standings.sort(
        key=lambda s: (group[s.feasible], s.value is None, sign * s.value if s.value is not None else 0.0)
    )
    ranked = tuple(
        Standing(s.name, s.role, s.value, s.test_value, s.feasible, s.violations, i + 1)
        for i, s in enumerate(standings)
    )
    best = next((s.name for s in ranked if s.feasible and s.value is not None), None)
    return Ranking(ranked, selection_split, best)


def judge(ranking: Ranking, obj: Objective) -> Verdict:
    """Pass or fail the best model's test score against the target."""
    if ranking.best is None:
        return Verdict("inconclusive", "no model satisfies every constraint")
    best = next(s for s in ranking.standings if s.name == ranking.best)
    if obj.target is None:
        return Verdict(
            "inconclusive", "no success target declared (objective.target)", best.name, best.test_value
        )
    if best.test_value is None:
        return Verdict("inconclusive", f"{obj.optimize.name} could not be computed on test", best.name)
    ok = obj.meets_target(best.test_value)
    op = (">=" if ok else "<") if obj.optimize.greater_is_better else ("<=" if ok else ">")
    reason = f"{best.name}: test {obj.optimize.name} {best.test_value:.4f} {op} target {obj.target:g}"
    return Verdict("pass" if ok else "fail", reason, best.name, best.test_value, obj.target)
