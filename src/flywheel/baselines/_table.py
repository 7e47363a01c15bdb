"""The ladder table: every rung, candidate and declared baseline on one scale, with its gain and its price.

``gain`` is the improvement over the dummy as a share of the headroom from the
dummy to the ceiling; ``step`` is what each rung costs over the one before it. A latency step
is ``None`` (shown ≈) when the two rungs' timings are not distinguishable
(:func:`flywheel.evaluation.latency_differs`): a difference inside the noise is no price.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from flywheel.evaluation import Evaluation, latency_differs
from flywheel.metrics import MetricRef

__all__ = [
    "ladder_table",
]

Gain = Callable[[float | None], float | None]
_STEP_METRICS = ("latency_p95_ms", "size_mb", "fit_time_s")


def ladder_table(
    evaluations: Sequence[Evaluation],
    metric: MetricRef,
    declared: Sequence[dict[str, Any]],
    human: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every rung, candidate and declared baseline on one scale (test split).

    ``gain`` is the improvement over the dummy as a share of the headroom from
    the dummy to the ceiling (the best known level: human level, or a declared or measured
    result beyond it, else the metric's best value): 0 is no better than a constant, 1 is the
    ceiling, and no rung is past it.
    ``step`` holds what each rung costs over the rung before it in latency, size and fit time.
    """
    name = metric.name
    dummy = next((e for e in evaluations if e.ok and e.stage == "constant"), None)
    floor = dummy.value(name, "test") if dummy is not None else None
    human_value = (human or {}).get("value")
    ceiling = _ceiling(metric, declared, human_value)
    measured = [v for e in evaluations if e.ok and (v := e.value(name, "test")) is not None]
    if measured and math.isfinite(ceiling):  # a model past human level shows it is no ceiling
        ceiling = max([ceiling, *measured]) if metric.greater_is_better else min([ceiling, *measured])

    def gain(value: float | None) -> float | None:
        if value is None or floor is None or ceiling == floor or not math.isfinite(ceiling):
            return None
        return (value - floor) / (ceiling - floor)

    rows = _evaluated_rows(evaluations, name, gain)
    if human is not None:
        rows.append(
            {
                "name": "human (annotators)",
                "kind": "human",
                "role": "measured",
                "value": human_value,
                "low": human.get("low"),
                "high": human.get("high"),
                "gain": gain(human_value),
            }
        )
    rows.extend(_declared_rows(declared, name, gain))
    return rows


def _ceiling(metric: MetricRef, declared: Sequence[dict[str, Any]], human_value: Any) -> float:
    """The best level known to be reachable: human level (measured, else declared), or a declared
    result beyond it; with neither, the metric's best value.

    A published result better than human level shows human level is no ceiling: measuring gains
    against it would give that result more than 100 % of the headroom.
    """
    declared_human = next((d["values"].get(metric.name) for d in declared if d["kind"] == "human"), None)
    human = human_value if human_value is not None else declared_human
    if human is None:
        return float(metric.best)
    known = [float(human)] + [
        float(d["values"][metric.name])
        for d in declared
        if d["kind"] != "human" and d["values"].get(metric.name) is not None
    ]
    return max(known) if metric.greater_is_better else min(known)


def _step(e: Evaluation, previous: Evaluation, metric: str) -> float | None:
    """What ``e`` costs over ``previous`` in ``metric``; None for timings the noise cannot tell apart."""
    spans = e.intervals.get("systems", {}), previous.intervals.get("systems", {})
    if metric in spans[0] and metric in spans[1]:
        a = {metric: e.systems[metric], f"{metric}_interval": spans[0][metric]}
        b = {metric: previous.systems[metric], f"{metric}_interval": spans[1][metric]}
        if not latency_differs(a, b, key=metric):
            return None
    return e.systems[metric] - previous.systems[metric]


def _evaluated_rows(evaluations: Sequence[Evaluation], name: str, gain: Gain) -> list[dict[str, Any]]:
    """A row per rung and candidate; a failed one shows its error, each baseline its step up."""
    rows: list[dict[str, Any]] = []
    previous: Evaluation | None = None
    for e in evaluations:
        if not e.ok:
            rows.append({"name": e.name, "kind": e.stage, "role": e.role, "error": e.error})
            continue
        value = e.value(name, "test")
        low, high = e.interval(name, "test") or (None, None)
        step = None
        if previous is not None and e.role == "baseline":
            step = {
                m: _step(e, previous, m) for m in _STEP_METRICS if m in e.systems and m in previous.systems
            }
        rows.append(
            {
                "name": e.name,
                "kind": e.stage,
                "role": e.role,
                "value": value,
                "low": low,
                "high": high,
                "gain": gain(value),
                "step": step,
                "systems": dict(e.systems),
            }
        )
        if e.role == "baseline":
            previous = e
    return rows


def _declared_rows(declared: Sequence[dict[str, Any]], name: str, gain: Gain) -> list[dict[str, Any]]:
    """A row per declared baseline that reports this metric."""
    rows: list[dict[str, Any]] = []
    for d in declared:
        value = d["values"].get(name)
        if value is not None:
            interval = d.get("intervals", {}).get(name) or (None, None)
            rows.append(
                {
                    "name": d["name"],
                    "kind": d["kind"],
                    "role": "declared",
                    "value": value,
                    "low": interval[0],
                    "high": interval[1],
                    "gain": gain(value),
                }
            )
    return rows
