"""What to do next: every action the diagnosis supports, in one ranked list.

Decisions come first whatever they win (ML does not beat the simple rung, the target is
met); then the actions of the dominant error component, of the curve's readings, of the
forecast, and of the weakest segments and classes, ranked by how much of the optimized
metric each could win. :class:`Diagnosis` holds the evidence with its actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flywheel.diagnosis._bias_variance import (
    _BIAS_ACTIONS,
    _MISMATCH_ACTIONS,
    _VARIANCE_ACTIONS,
    BiasVariance,
)
from flywheel.diagnosis._curves import Curve, Finding
from flywheel.diagnosis._forecast import Forecast
from flywheel.diagnosis._plots import Confusion, Reliability
from flywheel.diagnosis._weak_spots import WeakClass, WeakSegment

__all__ = ["Action", "Diagnosis", "next_actions"]


@dataclass(frozen=True)
class Action:
    """One thing to do next, why, and how much of the optimized metric it could win."""

    title: str
    why: str
    kind: str  # bias, variance, mismatch, data, segment, class, rules, target, model
    gain: float | None = None  # in the optimized metric's units (positive = better)
    cost: float | None = None
    priority: int = 1  # 0 goes first whatever the gain (no ML needed, target met)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Diagnosis:
    """Everything that says what to do next, with the single most valuable action first."""

    metric: str
    model: str | None
    split: str
    bias_variance: BiasVariance | None = None
    curve: Curve | None = None
    curve_findings: list[Finding] = field(default_factory=list)
    history: Curve | None = None
    history_findings: list[Finding] = field(default_factory=list)
    classes: list[WeakClass] = field(default_factory=list)
    segments: list[WeakSegment] = field(default_factory=list)
    searched: dict[str, Any] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    confusion: Confusion | None = None
    reliability: Reliability | None = None

    @property
    def lead(self) -> Action | None:
        """The single most valuable action."""
        return self.actions[0] if self.actions else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "metric": self.metric,
            "model": self.model,
            "split": self.split,
            "bias_variance": self.bias_variance.to_dict() if self.bias_variance else None,
            "curve": self.curve.to_dict() if self.curve else None,
            "curve_findings": [f.to_dict() for f in self.curve_findings],
            "history": self.history.to_dict() if self.history else None,
            "history_findings": [f.to_dict() for f in self.history_findings],
            "classes": [c.to_dict() for c in self.classes],
            "segments": [s.to_dict() for s in self.segments],
            "searched": self.searched,
            "actions": [a.to_dict() for a in self.actions],
            "notes": self.notes,
            "confusion": self.confusion.to_dict() if self.confusion else None,
            "reliability": self.reliability.to_dict() if self.reliability else None,
        }


def next_actions(
    *,
    bv: BiasVariance | None = None,
    findings: Sequence[Finding] = (),
    forecast: Forecast | None = None,
    classes: Sequence[WeakClass] = (),
    segments: Sequence[WeakSegment] = (),
    need_ml: str | None = None,
    target_met: bool | None = None,
    best_simple: str | None = None,
) -> list[Action]:
    """Every action the evidence supports, ranked: decisions first, then by the metric they could win."""
    out = [
        *_decisions(need_ml, target_met, best_simple),
        *_component_actions(bv, forecast),
        *_finding_actions(findings),
        *_forecast_actions(forecast),
        *_segment_actions(segments),
        *_class_actions(classes),
    ]
    return sorted(out, key=lambda a: (a.priority, -(a.gain if a.gain is not None else -1.0)))


def _decisions(need_ml: str | None, target_met: bool | None, best_simple: str | None) -> list[Action]:
    """Decisions that go first whatever the gain: ship the simple rung, or promote (target met)."""
    out: list[Action] = []
    if need_ml == "no":
        out.append(
            Action(
                f"Ship the simple rung ({best_simple}) or improve it: ML does not beat it by the margin",
                "the ladder's paired comparison on test",
                "rules",
                priority=0,
            )
        )
    if target_met:
        out.append(
            Action(
                "The target is met: gate and promote the best candidate, then watch it in production",
                "the best model's interval clears the objective's target",
                "target",
                priority=0,
            )
        )
    return out


def _component_actions(bv: BiasVariance | None, forecast: Forecast | None) -> list[Action]:
    """The first action of every error component that counts, largest first."""
    if bv is None:
        return []
    out: list[Action] = []
    for name in bv.acting:
        comp = bv.component(name)
        kind = {"avoidable bias": "bias", "variance": "variance", "data mismatch": "mismatch"}[name]
        first = {"bias": _BIAS_ACTIONS, "variance": _VARIANCE_ACTIONS, "mismatch": _MISMATCH_ACTIONS}[kind]
        out.append(
            Action(
                first[0] if kind != "variance" or forecast is None else "Get more training data",
                f"{name} is {comp.value:.4g} of {bv.metric} error" if comp is not None else bv.summary,
                kind,
                comp.value if comp is not None else None,
            )
        )
    return out


def _finding_actions(findings: Sequence[Finding]) -> list[Action]:
    """Work on the model when the curve underfits; stop earlier when the history peaked."""
    out: list[Action] = []
    for f in findings:
        if f.kind == "underfitting":
            out.append(Action("Work on the model before collecting data", f.text, "model", f.gain))
        elif f.kind == "stop early":
            out.append(
                Action("Stop training earlier (early stopping on validation)", f.text, "variance", f.gain)
            )
    return out


def _forecast_actions(forecast: Forecast | None) -> list[Action]:
    """Label the rows the target needs, change the model when it is out of reach, or double the data."""
    if forecast is not None and forecast.too_far:
        return [
            Action(
                "Work on the model or the features: labels alone would take more than 100× the rows in hand",
                forecast.describe(),
                "model",
                None,
            )
        ]
    if forecast is not None and forecast.status == "reachable" and forecast.needed is not None:
        cost = f" for about {forecast.cost:,.0f}" if forecast.cost is not None else ""
        gain = forecast.doubling_gain
        return [
            Action(
                f"Label about {forecast.labels_to_buy:,.0f} more rows{cost} to reach the target",
                forecast.describe(),
                "data",
                abs(forecast.target - forecast.current)
                if forecast.target is not None and forecast.current is not None
                else gain,
                forecast.cost,
            )
        ]
    if forecast is not None and forecast.status == "unreachable":
        return [
            Action(
                "Change the model family or the features: more data of this kind levels off "
                "short of the target",
                forecast.describe(),
                "model",
                None,
            )
        ]
    if forecast is not None and forecast.doubling_gain is not None and forecast.doubling_gain > 0:
        return [
            Action(
                f"Double the training rows ({forecast.n_train:,} more labels)",
                f"the fitted curve gains {forecast.doubling_gain:+.4g} from twice the rows",
                "data",
                forecast.doubling_gain,
                forecast.n_train * forecast.cost_per_label if forecast.cost_per_label is not None else None,
            )
        ]
    return []


def _segment_actions(segments: Sequence[WeakSegment]) -> list[Action]:
    """Collect and label more rows like each of the three weakest segments."""
    return [
        Action(
            f"Fix the weak segment {seg.description}: collect and label more rows like it",
            f"{seg.rows} rows, error {seg.error:.3g} vs {seg.rest:.3g} elsewhere (q = {seg.q_value:.2g})",
            "segment",
            seg.gain,
        )
        for seg in segments[:3]
    ]


def _class_actions(classes: Sequence[WeakClass]) -> list[Action]:
    """Label more examples of each of the three weakest classes (recall significantly low)."""
    return [
        Action(
            f"Label more examples of class {c.label}",
            f"recall {c.recall:.3g} [{c.recall_low:.3g}, {c.recall_high:.3g}] on {c.support} rows, "
            "significantly below the other classes",
            "class",
            c.gain,
        )
        for c in [c for c in classes if c.weak][:3]
    ]
