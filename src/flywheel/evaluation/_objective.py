"""The objective: one metric to optimize, the others as constraints, and the verdict.

Models are chosen by one number. The objective ranks candidates by the
``optimize`` metric on the selection split (valid, or test when there is no
valid split), after checking every constraint; a model that breaks a constraint
is listed with the constraints it breaks and by how much, never silently
dropped. The verdict compares the chosen model's *test* score with the success
target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from flywheel.errors import ProjectError
from flywheel.evaluation._constraints import Violation, check_constraint
from flywheel.evaluation._evaluate import Evaluation
from flywheel.metrics import (
    CLASSIFICATION,
    REGRESSION,
    Metric,
    MetricRef,
    is_metric,
    metric_names,
    parse_metric,
)
from flywheel.project import PROJECT_FILE, Bound, ObjectiveSpec

__all__ = [
    "COMPOSITE",
    "Objective",
    "Ranking",
    "Standing",
    "Verdict",
    "distinguish",
    "judge",
    "make_objective",
    "normalise",
    "rank",
    "weight_sensitivity",
    "with_composite",
]


COMPOSITE = MetricRef(
    "objective",
    Metric(
        "objective",
        CLASSIFICATION | REGRESSION,
        True,
        "labels",
        -math.inf,
        1.0,  # the ceiling; a model better than human level scores above it
        "composite",
        "weighted average of metrics normalised so the dummy scores 0 and the ceiling 1",
    ),
)


@dataclass(frozen=True)
class Objective:
    """The optimized metric, the success target and the constraints, checked against the task."""

    optimize: MetricRef
    target: float | None
    constraints: dict[str, Bound]
    version: str
    weights: dict[str, float] = field(default_factory=dict)

    @property
    def weighted(self) -> bool:
        """Whether models are ranked by a weighted average of normalised metrics."""
        return bool(self.weights)

    @property
    def primary(self) -> MetricRef:
        """The one real metric that stands for the objective: the optimized one, or the heaviest weight."""
        if not self.weights:
            return self.optimize
        return parse_metric(max(self.weights, key=lambda m: self.weights[m]))

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b`` on the optimized metric."""
        return a > b if self.optimize.greater_is_better else a < b

    def meets_target(self, value: float) -> bool:
        """Whether ``value`` reaches the success target."""
        assert self.target is not None
        return value >= self.target if self.optimize.greater_is_better else value <= self.target

    def quality_metrics(self) -> list[str]:
        """Quality metrics the objective needs computed: optimized or weighted first, then constrained."""
        head = list(self.weights) if self.weights else [self.optimize.name]
        return head + [m for m in self.constraints if is_metric(m) and m not in head]

    def confidence_levels(self) -> dict[str, float]:
        """Quality metrics whose constraint must hold at a confidence level, and that level."""
        return {
            m: b.confidence for m, b in self.constraints.items() if b.confidence is not None and is_metric(m)
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "optimize": self.optimize.name,
            "weights": dict(self.weights),
            "greater_is_better": self.optimize.greater_is_better,
            "target": self.target,
            "version": self.version,
            "constraints": {k: b.model_dump(exclude_none=True) for k, b in self.constraints.items()},
        }


def make_objective(
    spec: ObjectiveSpec,
    task: str,
    version: str,
    where: str = PROJECT_FILE,
    classes: Sequence[Any] | None = None,
) -> Objective:
    """Check the objective's metrics against the task (and classes) and build an :class:`Objective`."""
    head = (
        [("objective.optimize", spec.optimize)]
        if spec.optimize
        else [(f"objective.weights.{m}", m) for m in spec.weights]
    )
    names = head + [(f"objective.constraints.{m}", m) for m in spec.constraints if is_metric(m)]
    known = [str(c) for c in classes] if classes is not None else None
    for field_name, name in names:
        ref = parse_metric(name)
        if not ref.applies_to(task):
            raise ProjectError(
                f"{where}: {field_name} {name!r} does not apply to a {task} target; "
                f"allowed: {', '.join(metric_names(task))}"
            )
        if ref.metric.name in ("precision", "recall", "f1") and ref.class_label is None and task != "binary":
            raise ProjectError(
                f"{where}: {field_name} {name!r} is for binary targets; use {name}_macro or {name}[class=...]"
            )
        if ref.class_label is not None and known is not None and ref.class_label not in known:
            raise ProjectError(
                f"{where}: {field_name} {name!r} names class {ref.class_label!r}, which the target "
                f"does not have; classes: {', '.join(known[:10])}"
            )
    if spec.weights:
        return Objective(COMPOSITE, spec.target, dict(spec.constraints), version, dict(spec.weights))
    assert spec.optimize is not None
    metric = parse_metric(spec.optimize)
    if spec.target is not None and not metric.lower <= spec.target <= metric.upper:
        raise ProjectError(
            f"{where}: objective.target must lie in [{metric.lower:g}, {metric.upper:g}] for "
            f"{metric.name}; got {spec.target}"
        )
    return Objective(metric, spec.target, dict(spec.constraints), version)


@dataclass(frozen=True)
class Standing:
    """A model's place in the ranking."""

    name: str
    role: str
    value: float | None
    test_value: float | None
    feasible: bool | None  # None: a constraint is undecided or could not be measured
    violations: tuple[Violation, ...] = ()
    rank: int | None = None
    interval: tuple[float, float] | None = None
    test_interval: tuple[float, float] | None = None
    # Against the best model on the selection split: the paired comparison, and whether the
    # best is distinguishably better (None for the best itself or when it could not be compared).
    versus_best: dict[str, Any] | None = None
    distinguishable: bool | None = None

    @property
    def undecided(self) -> tuple[Violation, ...]:
        """The constraints whose interval straddles their limit."""
        return tuple(v for v in self.violations if v.status == "undecided")

    @property
    def eligible(self) -> bool:
        """No constraint broken and every one measured: met, or undecided (said as such)."""
        return self.feasible is not False and all(v.status == "undecided" for v in self.violations)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "name": self.name,
            "role": self.role,
            "rank": self.rank,
            "value": self.value,
            "interval": list(self.interval) if self.interval else None,
            "test_value": self.test_value,
            "test_interval": list(self.test_interval) if self.test_interval else None,
            "feasible": self.feasible,
            "violations": [v.describe() for v in self.violations],
            "constraint_checks": [
                {"metric": v.metric, "status": v.status, "value": v.value, "by": v.by, "bound": v.bound}
                for v in self.violations
            ],
            "undecided": [v.metric for v in self.undecided],
            "versus_best": self.versus_best,
            "distinguishable": self.distinguishable,
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


def _standing(ev: Evaluation, obj: Objective, split: str) -> Standing:
    checked = (check_constraint(ev, metric, bound, split) for metric, bound in obj.constraints.items())
    violations = tuple(v for v in checked if v is not None)
    broken = any(v.status == "broken" for v in violations)
    feasible = False if broken else (None if violations else True)
    name = obj.optimize.name
    return Standing(
        ev.name,
        ev.role,
        ev.value(name, split),
        ev.value(name, "test"),
        feasible,
        violations,
        interval=ev.interval(name, split),
        test_interval=ev.interval(name, "test"),
    )


def rank(evaluations: Sequence[Evaluation], obj: Objective, selection_split: str) -> Ranking:
    """Rank models by the optimized metric on ``selection_split``, constraints first.

    Order: models that meet every constraint or are undecided on some (an interval that
    straddles a limit never demotes a model: it is said, in the standing and the verdict),
    then those with a constraint that could not be measured, then those that break one; within
    each, best optimized value first; failed models last. The best model is the first of the
    first group with a value.
    """
    sign = -1.0 if obj.optimize.greater_is_better else 1.0
    standings = [_standing(ev, obj, selection_split) for ev in evaluations if ev.ok]

    def group(s: Standing) -> int:
        return 0 if s.eligible else (2 if s.feasible is False else 1)

    standings.sort(key=lambda s: (group(s), s.value is None, sign * s.value if s.value is not None else 0.0))
    ranked = tuple(replace(s, rank=i + 1) for i, s in enumerate(standings))
    best = next((s.name for s in ranked if s.eligible and s.value is not None), None)
    return Ranking(ranked, selection_split, best)


def distinguish(ranking: Ranking, comparisons: dict[str, dict[str, Any]]) -> Ranking:
    """Attach each model's paired comparison with the best (``verdict`` better/worse/inconclusive).

    ``comparisons[name]`` compares the best model (A) with ``name`` (B); the best is
    distinguishably better only when that verdict is ``better``.
    """
    out = []
    for s in ranking.standings:
        comp = comparisons.get(s.name)
        if comp is None:
            out.append(s)
        else:
            out.append(replace(s, versus_best=comp, distinguishable=comp["verdict"] == "better"))
    return replace(ranking, standings=tuple(out))


def judge(ranking: Ranking, obj: Objective) -> Verdict:
    """The best model's test score against the target, with its interval.

    Pass when the whole interval reaches the target, fail when none of it does,
    inconclusive when the target lies inside the interval (more test rows would
    decide). Without an interval the point value decides. A model that reaches the
    target while a constraint is undecided is inconclusive too, with the constraint named.
    """
    if ranking.best is None:
        return Verdict("inconclusive", "no model satisfies every constraint")
    best = next(s for s in ranking.standings if s.name == ranking.best)
    metric = obj.optimize.name
    if obj.target is None:
        return Verdict(
            "inconclusive", "no success target declared (objective.target)", best.name, best.test_value
        )
    if best.test_value is None:
        return Verdict("inconclusive", f"{metric} could not be computed on test", best.name)
    shown = f"{best.test_value:.4f}"
    if best.test_interval is not None:
        low, high = best.test_interval
        shown += f" [{low:.4f}, {high:.4f}]"
        ends = [obj.meets_target(low), obj.meets_target(high)]
        if all(ends) or not any(ends):
            ok = all(ends)
        else:
            reason = (
                f"{best.name}: test {metric} {shown} contains the target {obj.target:g}; "
                "more test rows would decide"
            )
            return Verdict("inconclusive", reason, best.name, best.test_value, obj.target)
    else:
        ok = obj.meets_target(best.test_value)
    op = (">=" if ok else "<") if obj.optimize.greater_is_better else ("<=" if ok else ">")
    reason = f"{best.name}: test {metric} {shown} {op} target {obj.target:g}"
    if ok and best.undecided:
        # The target is met, but a constraint cannot be called met or broken: no pass on chance.
        reason += f"; but {_undecided_text(best)}"
        return Verdict("inconclusive", reason, best.name, best.test_value, obj.target)
    if best.undecided:
        reason += f"; also {_undecided_text(best)}"
    return Verdict("pass" if ok else "fail", reason, best.name, best.test_value, obj.target)


def _undecided_text(standing: Standing) -> str:
    """What is undecided and what would decide it."""
    said = "; ".join(v.describe() for v in standing.undecided)
    return f"{said} (its interval straddles the limit: measure on the serving machine, or add confidence:)"


# --- weighted objectives -------------------------------------------------------------------------


def normalise(value: float, floor: float, ceiling: float) -> float | None:
    """``value`` on a scale where the dummy (``floor``) is 0 and the ceiling is 1.

    Works for either direction: for an error the ceiling is below the floor.

    >>> normalise(0.75, 0.5, 1.0)
    0.5
    >>> normalise(2.0, 4.0, 0.0)
    0.5
    """
    if ceiling == floor or not (math.isfinite(floor) and math.isfinite(ceiling)):
        return None
    return (value - floor) / (ceiling - floor)


def _composite(
    ev: Evaluation,
    split: str,
    weights: Mapping[str, float],
    floors: Mapping[str, float],
    ceilings: Mapping[str, float],
) -> float | None:
    total, weight_sum = 0.0, 0.0
    for metric, weight in weights.items():
        value = ev.value(metric, split)
        if value is None or metric not in floors:
            return None
        scaled = normalise(value, floors[metric], ceilings[metric])
        if scaled is None:
            return None
        total += weight * scaled
        weight_sum += weight
    return total / weight_sum if weight_sum > 0 else None


def with_composite(
    evaluations: Sequence[Evaluation],
    obj: Objective,
    ceilings: Mapping[str, float],
    weights: Mapping[str, float] | None = None,
) -> list[Evaluation]:
    """Add the weighted objective (metric ``objective``) to every evaluation's metrics.

    Each weighted metric is normalised so the dummy (the first constant rung)
    scores 0 and the ceiling scores 1, so metrics on different scales combine
    honestly. ``ceilings`` maps metric -> human level where declared; others use
    the metric's best value.
    """
    weights = dict(weights or obj.weights)
    dummy = next((e for e in evaluations if e.ok and e.stage == "constant"), None)
    out = []
    for ev in evaluations:
        if not ev.ok or dummy is None:
            out.append(ev)
            continue
        metrics = {split: dict(values) for split, values in ev.metrics.items()}
        for split in metrics:
            floors = {m: v for m in weights if (v := dummy.value(m, split)) is not None}
            tops = {m: ceilings.get(m, parse_metric(m).best) for m in weights}
            metrics[split][COMPOSITE.name] = _composite(ev, split, weights, floors, tops)
        out.append(replace(ev, metrics=metrics))
    return out


def weight_sensitivity(
    evaluations: Sequence[Evaluation],
    obj: Objective,
    ceilings: Mapping[str, float],
    selection_split: str,
    change: float = 0.2,
) -> list[dict[str, Any]]:
    """How the ranking moves when each weight changes by ±``change`` (default 20 %)."""
    base = rank(with_composite(evaluations, obj, ceilings), obj, selection_split)
    base_order = [s.name for s in base.standings]
    out = []
    for metric in obj.weights:
        for factor in (1 + change, 1 - change):
            weights = {**obj.weights, metric: obj.weights[metric] * factor}
            moved = rank(with_composite(evaluations, obj, ceilings, weights), obj, selection_split)
            order = [s.name for s in moved.standings]
            out.append(
                {
                    "metric": metric,
                    "change": f"{factor - 1:+.0%}",
                    "best": moved.best,
                    "best_changes": moved.best != base.best,
                    "order_changes": order != base_order,
                    "order": order,
                }
            )
    return out
