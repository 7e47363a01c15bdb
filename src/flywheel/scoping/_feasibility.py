"""Feasibility: the three cost drivers of an ML project, each from its evidence lines.

Data availability, the accuracy requirement and problem difficulty are each scored 0
(infeasible) to 1 (easy), with a range that is wide where the evidence is thin. Declared lines
come from ``flywheel.yaml``; measured ones from a run as stored (the ladder, the objective, the
forecast, the class counts) and from the personal-data scan.
"""

from __future__ import annotations

import math
from typing import Any

from flywheel.metrics import parse_metric
from flywheel.project import Project
from flywheel.scoping._evidence import Driver, Evidence, _best, _clip, _combine
from flywheel.scoping._personal_data import PersonalData

__all__: list[str] = []

_LEVEL = {"low": 1.0, "medium": 0.5, "high": 0.0}


def _best_baseline(run: dict[str, Any], metric: str, hib: bool) -> float | None:
    values = [
        r["value"]
        for r in run.get("ladder", [])
        if r.get("role") == "baseline" and r.get("kind") != "model" and r.get("value") is not None
    ]
    if not values:
        return None
    return max(values) if hib else min(values)


def _declared_human(project: Project, metric: str) -> float | None:
    human = project.baselines.human
    return None if human is None else human.values.get(metric)


def _data_driver(project: Project, run: dict[str, Any] | None, pii: list[PersonalData]) -> Driver:
    """Data availability: rows in hand against rows needed, the cost of the missing labels, rare
    classes, how the data changes, and columns that look like personal data."""
    fc = (run or {}).get("forecast") or {}
    n_train = (run or {}).get("split", {}).get("train")
    lines = [
        *_rows_lines(run, fc, n_train),
        *_label_cost_lines(project, fc),
        *_class_lines(run, n_train),
        *_stability_lines(project),
        *(_personal_data_line(p) for p in pii),
    ]
    return _combine("data availability", lines)


def _rows_lines(run: dict[str, Any] | None, fc: dict[str, Any], n_train: Any) -> list[Evidence]:
    """The labelled training rows against what the forecast says the target needs."""
    status = fc.get("status")
    if status == "reachable" and fc.get("needed"):
        return [_reachable_line(fc, n_train)]
    if status == "met":
        return [Evidence(f"{n_train:,} labelled training rows already reach the target", "measured", 1.0)]
    if status == "unreachable":
        return [
            Evidence(
                "more rows do not reach the target with this model family "
                f"(levels off at {fc.get('plateau'):.4g})",
                "measured",
                0.1,
                0.0,
                0.3,
            )
        ]
    if run is not None:
        return [Evidence(f"{n_train:,} labelled training rows; no forecast of rows needed", "measured")]
    return []


def _reachable_line(fc: dict[str, Any], n_train: Any) -> Evidence:
    """The share of the rows needed already in hand, on a log scale."""
    ratio = n_train / fc["needed"] if n_train else 0.0

    def rows_score(needed: float | None) -> float | None:
        if not needed or not n_train:
            return None
        return _clip(1 + math.log10(min(1.0, n_train / needed)) / 2)

    high_needed = fc.get("needed_high")
    return Evidence(
        f"{n_train:,} labelled training rows; the target needs about {fc['needed']:,.0f} "
        f"({ratio:.0%} of it in hand)",
        "measured",
        rows_score(fc["needed"]),
        rows_score(high_needed) if high_needed else 0.0,
        rows_score(fc.get("needed_low")),
        values={"share_in_hand": ratio},
    )


def _label_cost_lines(project: Project, fc: dict[str, Any]) -> list[Evidence]:
    """What a label costs, and what the missing ones cost against the declared value."""
    label_cost = project.costs.label
    if label_cost is None:
        return []
    missing_cost = fc.get("cost") if fc.get("status") == "reachable" else None
    value = project.impact.value_per_year
    if missing_cost is not None and value:
        return [
            Evidence(
                f"the missing labels cost about {missing_cost:,.0f} ({label_cost:g} per label, declared) "
                f"against a declared value of {value:,.0f} a year",
                "measured",
                _clip(1 - missing_cost / value),
            )
        ]
    return [Evidence(f"a label costs {label_cost:g}", "declared")]


def _class_lines(run: dict[str, Any] | None, n_train: Any) -> list[Evidence]:
    """Classes with fewer than 10 training rows (estimated from the class counts and the split)."""
    classes = (run or {}).get("data", {}).get("classes") or {}
    if not (classes and n_train):
        return []
    total = sum(classes.values())
    share = n_train / total if total else 0.0
    rare = [c for c, n in classes.items() if n * share < 10]
    text = (
        f"{len(rare)} of {len(classes)} classes have fewer than 10 training rows ({', '.join(rare[:5])})"
        if rare
        else f"every class has at least 10 training rows (smallest: {min(classes.values()) * share:.0f})"
    )
    values = {"rare_classes": float(len(rare)), "smallest_class_rows": min(classes.values()) * share}
    return [Evidence(text, "measured", _clip(1 - len(rare) / len(classes)), flag=bool(rare), values=values)]


def _stability_lines(project: Project) -> list[Evidence]:
    """How the data changes over time, as declared."""
    stability = project.data.stability
    if stability is None:
        return []
    return [
        Evidence(
            f"the data is {stability}",
            "declared",
            {"stable": 1.0, "seasonal": 0.6, "drifting": 0.3}[stability],
        )
    ]


def _personal_data_line(p: PersonalData) -> Evidence:
    """A column that looks like personal data: a flag for a person, and half a point."""
    return Evidence(
        f"column {p.column!r} looks like personal data ({p.kind}, {p.share:.0%} of values): "
        "check consent, retention and access before using it",
        "measured",
        0.5,
        flag=True,
    )


def _target_position(target: float, baseline: float, perfect: float) -> float:
    """Where the target lies between the best baseline (0) and a perfect score (1)."""
    span = perfect - baseline
    return (target - baseline) / span if span else 1.0


def _accuracy_driver(project: Project, run: dict[str, Any] | None) -> Driver:
    """The accuracy requirement: where the target lies between the best baseline and a perfect
    score, against human level, what errors cost, and how fast rows needed grow with the target."""
    lines: list[Evidence] = []
    spec = project.objective
    metric = spec.optimize or (max(spec.weights, key=lambda m: spec.weights[m]) if spec.weights else None)
    if metric is None:
        return _combine("accuracy requirement", lines)
    ref = parse_metric(metric)
    target = spec.target if spec.optimize else None
    human = _declared_human(project, metric)
    measured_human = ((run or {}).get("human") or {}).get("value")
    if measured_human is not None:
        human = measured_human
    baseline = _best_baseline(run, metric, ref.greater_is_better) if run else None
    if target is not None:
        if baseline is not None:
            pos = _target_position(target, baseline, ref.best)
            lines.append(
                Evidence(
                    f"the target {metric} {target:g} closes {pos:.0%} of the gap from the best baseline "
                    f"({baseline:.4g}) to a perfect score",
                    "measured",
                    _clip(1 - pos),
                    values={"gap_closed": pos},
                )
            )
        else:
            pos = _target_position(target, ref.lower if ref.greater_is_better else ref.upper, ref.best)
            pos = pos if math.isfinite(pos) else 0.5
            lines.append(
                Evidence(
                    f"the target is {metric} {target:g} (no baseline measured yet)",
                    "declared",
                    _clip(1 - pos),
                )
            )
        if human is not None and (target > human if ref.greater_is_better else target < human):
            lines.append(
                Evidence(
                    f"the target {target:g} is beyond human level ({human:.4g}): few systems get there",
                    "measured" if measured_human is not None else "declared",
                    0.2,
                    flag=True,
                )
            )
    else:
        lines.append(
            Evidence("no success target: the requirement is not stated (objective.target)", "declared")
        )
    lines += _error_cost_lines(project, run, metric)
    lines += _cost_curve_lines(run, metric)
    return _combine("accuracy requirement", lines)


def _error_cost_lines(project: Project, run: dict[str, Any] | None, metric: str) -> list[Evidence]:
    """What the best model's errors cost a year, against the declared value (accuracy only)."""
    lines: list[Evidence] = []
    best = _best(run) if run else None
    volume, wrong = project.impact.volume_per_year, project.costs.wrong_prediction
    if best is not None and metric == "accuracy" and best.get("test_value") is not None and volume and wrong:
        error = 1 - best["test_value"]
        cost = error * volume * wrong
        value = project.impact.value_per_year
        lines.append(
            Evidence(
                f"at the best model's error rate ({error:.2%}, measured) errors cost about "
                f"{cost:,.0f} a year "
                f"({volume:,.0f} predictions × {wrong:g} each, declared)",
                "measured",
                _clip(1 - cost / value) if value else None,
                values={"error_rate": error, "error_cost": cost},
            )
        )
    return lines


def _cost_curve_lines(run: dict[str, Any] | None, metric: str) -> list[Evidence]:
    """How fast the rows needed grow as the target rises: each point costs more than the last."""
    lines: list[Evidence] = []
    fc = (run or {}).get("forecast") or {}
    curve = fc.get("cost_curve") or []
    if len(curve) >= 4:
        first, last = curve[0], curve[-1]
        lines.append(
            Evidence(
                f"rows needed grow {last['needed'] / first['needed']:,.0f}× from {metric} "
                f"{first['target']:.4g} "
                f"to {last['target']:.4g}: each point of {metric} costs more than the last",
                "measured",
                values={"growth": last["needed"] / first["needed"]},
            )
        )
    return lines


def _difficulty_driver(project: Project, run: dict[str, Any] | None) -> Driver:
    """Problem difficulty: the declared levels, the gap from the best baseline to the target, and
    the learning curve's slope."""
    d = project.difficulty
    lines = [
        Evidence(f"output complexity {d.output}", "declared", _LEVEL[d.output]),
        Evidence(f"reliability need {d.reliability}", "declared", _LEVEL[d.reliability]),
        Evidence(f"generalisation need {d.generalization}", "declared", _LEVEL[d.generalization]),
    ]
    spec = project.objective
    if run is not None and spec.optimize and spec.target is not None:
        ref = parse_metric(spec.optimize)
        baseline = _best_baseline(run, spec.optimize, ref.greater_is_better)
        if baseline is not None:
            pos = _target_position(spec.target, baseline, ref.best)
            lines.append(
                Evidence(
                    f"the best baseline ({baseline:.4g}) is {abs(spec.target - baseline):.4g} short "
                    "of the target",
                    "measured",
                    _clip(1 - pos),
                    values={"shortfall": abs(spec.target - baseline)},
                )
            )
        fc = run.get("forecast") or {}
        gain, current = fc.get("doubling_gain"), fc.get("current")
        if gain is not None and current is not None:
            remaining = abs(spec.target - current)
            share = gain / remaining if remaining else 1.0
            lines.append(
                Evidence(
                    f"twice the training rows would gain {gain:+.4g} {spec.optimize} ({share:.0%} of the "
                    "remaining gap): the learning curve's slope",
                    "measured",
                    _clip(share),
                    values={"share_of_gap": share},
                )
            )
    return _combine("problem difficulty", lines)
