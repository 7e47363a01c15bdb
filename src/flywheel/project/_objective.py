"""The objective section: one metric to optimize (or a weighted average of several), a success
target, and constraints with their bounds.

Metric names are checked against the metric engine's names, so a typo is an error with a close
match rather than a metric that silently never appears.
"""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator, model_validator

from flywheel.metrics import SYSTEMS_METRICS, is_metric, metric_names, parse_metric
from flywheel.project._strict import _hint, _one_of, _range_words, _Strict

__all__ = [
    "Bound",
    "ObjectiveSpec",
]


class Bound(_Strict):
    """A constraint's bounds; with ``confidence``, the interval's bound must hold, not the point."""

    min: float | None = None
    max: float | None = None
    confidence: float | None = Field(default=None, gt=0, lt=1)

    @model_validator(mode="after")
    def _some_bound(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("needs min or max; got neither")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min must not exceed max; got min={self.min}, max={self.max}")
        return self

    def holds(self, value: float) -> bool:
        """Whether ``value`` lies within the bounds."""
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def violation(self, value: float) -> float:
        """How far ``value`` lies outside the bounds (0 when it holds)."""
        if self.min is not None and value < self.min:
            return self.min - value
        if self.max is not None and value > self.max:
            return value - self.max
        return 0.0


_PARAMETRIZED = "precision[class=C], recall[class=C], f1[class=C], pinball[q=Q]"


def _check_quality_metric(name: str) -> str:
    names = metric_names()
    if not is_metric(name):
        raise ValueError(
            f"must be one of {_one_of(names)} or {_PARAMETRIZED}; got {name!r}{_hint(name, names)}"
        )
    return name


class ObjectiveSpec(_Strict):
    """One metric to optimize (or a weighted average of several), a success target, and constraints."""

    optimize: str | None = None
    weights: dict[str, float] = Field(default_factory=dict)
    target: float | None = None
    constraints: dict[str, Bound] = Field(default_factory=dict)
    # Why the formula is what it is; recorded in the objective's history, not part of the formula.
    reason: str | None = None

    @field_validator("optimize")
    @classmethod
    def _known_metric(cls, v: str | None) -> str | None:
        return None if v is None else _check_quality_metric(v)

    @field_validator("target")
    @classmethod
    def _target_in_range(cls, v: float | None, info: ValidationInfo) -> float | None:
        optimize = info.data.get("optimize")
        if v is not None and optimize is not None:
            metric = parse_metric(optimize).metric
            if not metric.lower <= v <= metric.upper:
                words = _range_words(metric.lower, metric.upper)
                raise ValueError(f"must {words} for {metric.name}; got {v:g}")
        return v

    @field_validator("weights")
    @classmethod
    def _valid_weights(cls, v: dict[str, float]) -> dict[str, float]:
        for name, weight in v.items():
            _check_quality_metric(name)
            if weight < 0:
                raise ValueError(f"must be >= 0; got {name}: {weight:g}")
        if v and sum(v.values()) <= 0:
            raise ValueError(f"must not all be zero; got {v}")
        return v

    @field_validator("constraints")
    @classmethod
    def _known_constraints(cls, v: dict[str, Bound]) -> dict[str, Bound]:
        allowed = metric_names() + sorted(SYSTEMS_METRICS)
        for name in v:
            if not is_metric(name) and name not in SYSTEMS_METRICS:
                raise ValueError(
                    f"names an unknown metric; allowed: {_one_of(allowed, 40)}; "
                    f"got {name!r}{_hint(name, allowed)}"
                )
        return v

    @model_validator(mode="after")
    def _one_formula(self) -> ObjectiveSpec:
        if (self.optimize is None) == (not self.weights):
            got = "both" if self.optimize is not None else "neither"
            raise ValueError(f"needs optimize (one metric) or weights (several), not both; got {got}")
        return self

    def metrics(self) -> list[str]:
        """Quality metrics the objective names (the optimized or weighted ones, then constrained ones)."""
        head = [self.optimize] if self.optimize is not None else list(self.weights)
        return head + [m for m in self.constraints if is_metric(m) and m not in head]
