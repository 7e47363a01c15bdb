"""Constraints: each one met, broken or undecided, from a measurement and its interval.

A constraint is a bound on a metric (``latency_p95_ms: {max: 25}``, ``recall[class=1]: {min: 0.9}``).
A measurement is noisy, so it is judged with its interval, never its point alone: **met** when the
whole 95 % interval lies within the bound, **broken** when none of it does, and **undecided** when
the bound lies inside the interval — the same data on another run, or a busier machine, could land
on either side, so flywheel says so instead of letting chance decide. A metric with no interval
(size, memory, fit time) is judged on its value. With ``confidence: 0.9`` the user asked for the
interval's bound on the wrong side to hold, which is met or broken, never undecided. A metric that
could not be computed is **unmeasured**.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from flywheel.evaluation._evaluate import Evaluation
from flywheel.metrics import SYSTEMS_METRICS
from flywheel.project import Bound

__all__ = [
    "Violation",
    "check_constraint",
]

Status = Literal["broken", "undecided", "unmeasured"]


@dataclass(frozen=True)
class Violation:
    """A constraint a model breaks, cannot be decided on, or cannot be checked on.

    ``value`` is the measured value (None when unmeasured), ``by`` how far it lies outside the
    bound (broken only), ``interval`` the measurement's interval (undecided only).
    """

    metric: str
    bound: dict[str, float]
    value: float | None
    by: float | None
    status: Status = "broken"
    interval: tuple[float, float] | None = None

    def describe(self) -> str:
        """``latency_p95_ms 3.1 > max 2 (by 1.1)``, ``size_mb not measured``, or
        ``latency_p95_ms 24.6 [23.9, 26.1] undecided against max 25``.

        With a confidence level, the value is the interval's bound on the wrong side.
        """
        level = self.bound.get("confidence")
        at = f" at {level:.0%} confidence" if level is not None else ""
        if self.value is None:
            return f"{self.metric} not measured{at}"
        if self.status == "undecided" and self.interval is not None:
            low, high = self.interval
            limits = " and ".join(
                f"{side} {self.bound[side]:g}" for side in ("min", "max") if side in self.bound
            )
            return f"{self.metric} {self.value:.4g} [{low:.4g}, {high:.4g}] undecided against {limits}"
        side = "max" if "max" in self.bound and self.value > self.bound["max"] else "min"
        op = ">" if side == "max" else "<"
        return f"{self.metric}{at} {self.value:.4g} {op} {side} {self.bound[side]:g} (by {self.by:.3g})"


def _point(ev: Evaluation, metric: str, split: str) -> float | None:
    return ev.systems.get(metric) if metric in SYSTEMS_METRICS else ev.value(metric, split)


def _interval(ev: Evaluation, metric: str, split: str) -> tuple[float, float] | None:
    if metric in SYSTEMS_METRICS:
        return ev.intervals.get("systems", {}).get(metric)
    return ev.interval(metric, split)


def _confidence_value(ev: Evaluation, metric: str, bound: Bound, split: str) -> float | None:
    """With a confidence level: the interval's bound on the side that matters (the lower bound for
    a minimum, the upper for a maximum)."""
    if metric in SYSTEMS_METRICS:
        # Systems timings carry a 95% interval; other levels cannot be checked.
        interval = ev.intervals.get("systems", {}).get(metric) if bound.confidence == 0.95 else None
    else:
        interval = ev.bounds.get(split, {}).get(f"{metric}@{bound.confidence:g}")
    if interval is None:
        return None
    low, high = interval
    if bound.min is not None and bound.max is not None:
        return low if low < bound.min else high
    return low if bound.min is not None else high


def _outside(bound: Bound, low: float, high: float) -> bool:
    """Whether the whole of [low, high] lies outside the bound."""
    return (bound.min is not None and high < bound.min) or (bound.max is not None and low > bound.max)


def check_constraint(ev: Evaluation, metric: str, bound: Bound, split: str) -> Violation | None:
    """None when ``ev`` meets the constraint on ``split``; otherwise how it does not."""
    shown = bound.model_dump(exclude_none=True)
    if bound.confidence is not None:
        value = _confidence_value(ev, metric, bound, split)
        if value is None:
            return Violation(metric, shown, None, None, "unmeasured")
        return None if bound.holds(value) else Violation(metric, shown, value, bound.violation(value))
    value = _point(ev, metric, split)
    if value is None:
        return Violation(metric, shown, None, None, "unmeasured")
    interval = _interval(ev, metric, split)
    if interval is None:
        return None if bound.holds(value) else Violation(metric, shown, value, bound.violation(value))
    low, high = min(interval[0], value), max(interval[1], value)
    if bound.holds(low) and bound.holds(high):
        return None
    if _outside(bound, low, high):
        return Violation(metric, shown, value, bound.violation(value))
    return Violation(metric, shown, value, None, "undecided", (low, high))
