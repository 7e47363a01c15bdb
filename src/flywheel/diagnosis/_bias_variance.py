"""Bias and variance against human level: which part of the error to work on first.

The terms are Andrew Ng's (*Machine Learning Yearning*). Errors are distances to the
metric's perfect score (1 − accuracy, or the RMSE itself), so every component is
"how much better it could be":

- avoidable bias = training error − human-level error (human level stands in for the
  optimal error);
- variance = validation error − training error (or − train-dev error when the project
  holds out a train-dev split: rows from the training distribution the model never saw);
- data mismatch = validation error − train-dev error.

Each estimate carries an interval. The errors come from different rows (independent
samples), so the interval of a difference is combined from the two intervals with the
MOVER method (Zou & Donner, 2008), which keeps the asymmetry of each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from flywheel.metrics import MetricRef

__all__ = ["BiasVariance", "Component", "Level", "bias_variance"]

_Error = tuple[float, float | None, float | None]  # an error with its interval (low, high)


@dataclass(frozen=True)
class Level:
    """A metric value with its interval (score units) and where it came from."""

    value: float
    low: float | None = None
    high: float | None = None
    source: str = "measured"  # "measured" or "declared"

    def error(self, ref: MetricRef) -> tuple[float, float | None, float | None]:
        """The distance to the perfect score, with the interval flipped where needed."""
        best = ref.best
        if ref.greater_is_better:
            return (
                best - self.value,
                None if self.high is None else best - self.high,
                (None if self.low is None else best - self.low),
            )
        return (
            self.value - best,
            None if self.low is None else self.low - best,
            (None if self.high is None else self.high - best),
        )


@dataclass(frozen=True)
class Component:
    """One part of the error (avoidable bias, variance, data mismatch), with its interval."""

    name: str
    value: float
    low: float | None
    high: float | None

    @property
    def significant(self) -> bool:
        """Whether the interval lies above zero."""
        return self.low is not None and self.low > 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {**self.__dict__, "significant": self.significant}


def _mover(
    a: tuple[float, float | None, float | None], b: tuple[float, float | None, float | None]
) -> Component:
    """a − b for independent estimates, interval by MOVER (an exact side counts as zero width)."""
    (pa, la, ua), (pb, lb, ub) = a, b
    d = pa - pb
    if la is None or ua is None:
        la = ua = pa
    if lb is None or ub is None:
        lb = ub = pb
    low = d - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
    high = d + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
    return Component("", d, low, high)


_BIAS_ACTIONS = (
    "Train a bigger model (more trees, leaves or layers; a more flexible family)",
    "Add better features (error analysis of the training mistakes shows which)",
    "Train longer (more iterations; a later early-stopping point)",
    "Reduce regularisation",
)
_VARIANCE_ACTIONS = (
    "Get more training data",
    "Add regularisation (a smaller learning rate, fewer leaves, stronger L2)",
    "Stop training early on the validation score",
    "Select fewer features",
)
_MISMATCH_ACTIONS = (
    "Collect training data that looks like production (like the valid/test rows)",
    "Find how training and validation rows differ (error analysis of train-dev vs valid)",
    "Weight or synthesise training rows to resemble the validation distribution",
)
# What each dominant component suggests, most promising first (copied into each result).
_DOMINANT_ACTIONS: dict[str, tuple[str, ...]] = {
    "avoidable bias": _BIAS_ACTIONS,
    "variance": _VARIANCE_ACTIONS,
    "both": (_BIAS_ACTIONS[0], _VARIANCE_ACTIONS[0], _BIAS_ACTIONS[1], _VARIANCE_ACTIONS[1]),
    "data mismatch": _MISMATCH_ACTIONS,
    "near human level": (
        "Error analysis of the remaining mistakes against human labels; progress from here is slow",
    ),
    "none": (),
    "unknown": ("Declare or measure human level (baselines.human) to tell avoidable bias from noise",),
}


@dataclass(frozen=True)
class BiasVariance:
    """Errors and their components for the best model, with the dominant one and its actions."""

    metric: str
    model: str
    errors: dict[str, tuple[float, float | None, float | None]]  # human/train/train_dev/valid
    components: list[Component]
    dominant: Literal[
        "avoidable bias", "variance", "both", "data mismatch", "near human level", "none", "unknown"
    ]
    summary: str
    actions: list[str] = field(default_factory=list)
    human_source: str | None = None
    bias_bounds: tuple[float, float] | None = None  # without a human baseline
    notes: list[str] = field(default_factory=list)
    # Every component that counts (significant and at least the margin), largest first.
    acting: list[str] = field(default_factory=list)

    def component(self, name: str) -> Component | None:
        """The component called ``name``, if measured."""
        return next((c for c in self.components if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "metric": self.metric,
            "model": self.model,
            "errors": {k: list(v) for k, v in self.errors.items()},
            "components": [c.to_dict() for c in self.components],
            "dominant": self.dominant,
            "summary": self.summary,
            "actions": self.actions,
            "acting": self.acting,
            "human_source": self.human_source,
            "bias_bounds": list(self.bias_bounds) if self.bias_bounds else None,
            "notes": self.notes,
        }


def bias_variance(
    ref: MetricRef,
    *,
    train: Level,
    valid: Level,
    train_dev: Level | None = None,
    human: Level | None = None,
    best_baseline: Level | None = None,
    tolerance: float = 0.0,
    model: str = "model",
) -> BiasVariance:
    """Split the model's error into avoidable bias, variance and data mismatch.

    ``tolerance`` is the smallest component worth acting on (the objective's margin);
    a component counts when its interval lies above zero and its value reaches the tolerance.
    Without ``human``, avoidable bias is bounded: below by training error minus the lowest error
    any system reached (``best_baseline``; the optimal error is no higher), above by the training
    error itself (a perfect score as the optimum).
    """
    e_train, e_valid = train.error(ref), valid.error(ref)
    errors = {"train": e_train}
    notes: list[str] = []
    components: list[Component] = []
    bounds = None
    if human is not None:
        e_human = human.error(ref)
        errors = {"human": e_human, **errors}
        components.append(_named("avoidable bias", _mover(e_train, e_human)))
        if e_valid[0] < e_human[0]:
            notes.append(
                "the model beats human level on validation: human level no longer bounds the optimal "
                "error, and progress from here is harder to steer"
            )
    else:
        bounds = _bias_bounds(ref, e_train, best_baseline)
        notes.append(
            "no human baseline: avoidable bias cannot be separated from unavoidable error; it lies "
            f"between {bounds[0]:.4g} and {bounds[1]:.4g} (declare baselines.human to separate them)"
        )
    if train_dev is not None:
        e_dev = train_dev.error(ref)
        errors["train_dev"] = e_dev
        components.append(_named("variance", _mover(e_dev, e_train)))
        components.append(_named("data mismatch", _mover(e_valid, e_dev)))
    else:
        components.append(_named("variance", _mover(e_valid, e_train)))
    errors["valid"] = e_valid
    dominant = _dominant(components, bounds, tolerance, human is not None)
    acting = _acting(components, bounds, tolerance)
    return BiasVariance(
        ref.name,
        model,
        errors,
        components,
        dominant,
        _summary(dominant, acting, components, bounds, ref, tolerance),
        _actions(dominant, acting),
        human.source if human is not None else None,
        bounds,
        notes,
        acting,
    )


def _named(name: str, diff: Component) -> Component:
    """The difference ``diff`` (from :func:`_mover`) under its component's name."""
    return Component(name, diff.value, diff.low, diff.high)


def _bias_bounds(ref: MetricRef, e_train: _Error, best_baseline: Level | None) -> tuple[float, float]:
    """Bounds on avoidable bias without human level.

    At least the training error minus the lowest error any system reached (the optimal error is
    no higher), at most the training error itself (a perfect score as the optimum).
    """
    lowest = e_train[0]
    if best_baseline is not None:
        lowest = min(lowest, best_baseline.error(ref)[0])
    return (max(0.0, e_train[0] - lowest), max(0.0, e_train[0]))


# A component equal to the margin counts: the subtraction behind it is off by floating-point error
# (0.99 - 0.98 is 0.010000000000000009), so the comparison allows this much.
_EPSILON = 1e-9


def _counts(c: Component, tolerance: float) -> bool:
    """Whether a component is worth acting on: its interval lies above zero and it reaches the margin."""
    return c.significant and c.value >= tolerance - _EPSILON


def _acting(components: list[Component], bounds: tuple[float, float] | None, tolerance: float) -> list[str]:
    """Every component that counts, largest first; without human level, bias by its lower bound."""
    values = {c.name: c.value for c in components if _counts(c, tolerance)}
    if bounds is not None and bounds[0] > 0 and bounds[0] >= tolerance - _EPSILON:
        values["avoidable bias"] = bounds[0]
    return sorted(values, key=lambda name: -values[name])


def _actions(dominant: str, acting: list[str]) -> list[str]:
    """The dominant component's actions, then the first of every other component that counts."""
    out = list(_DOMINANT_ACTIONS[dominant])
    for name in acting:
        first = _DOMINANT_ACTIONS[name][0]
        if first not in out:
            out.append(first)
    return out


def _dominant(
    components: list[Component], bounds: tuple[float, float] | None, tolerance: float, has_human: bool
) -> Any:
    """The component to work on first.

    The largest significant one, or "both" when bias and variance are close; without human
    level, judged against the bounds on avoidable bias.
    """
    acting = [c for c in components if _counts(c, tolerance)]
    if not has_human and not any(c.name == "avoidable bias" for c in components):
        assert bounds is not None
        return _dominant_without_human(components, acting, bounds, tolerance)
    if not acting:
        return "near human level" if has_human else "none"
    top = max(acting, key=lambda c: c.value)
    pair = {c.name: c.value for c in acting if c.name in ("avoidable bias", "variance")}
    # "Both" only for bias and variance themselves, when they lead and the smaller is at least half
    # the larger; a large data mismatch beside them is named on its own.
    if len(pair) == 2 and top.name in pair and min(pair.values()) >= 0.5 * max(pair.values()):
        return "both"
    return top.name


def _dominant_without_human(
    components: list[Component], acting: list[Component], bounds: tuple[float, float], tolerance: float
) -> str:
    """The dominant component when avoidable bias is only bounded, not measured."""
    variance = next(c for c in components if c.name == "variance")
    mismatch = next((c for c in acting if c.name == "data mismatch"), None)
    if mismatch is not None and mismatch.value >= max(variance.value, bounds[1]):
        return "data mismatch"
    if variance in acting and variance.value >= bounds[1]:
        return "variance"
    if bounds[0] >= max(tolerance, variance.value if variance in acting else 0.0) and bounds[0] > 0:
        return "avoidable bias"
    if variance in acting or bounds[1] >= tolerance:
        return "unknown"
    return "none"


def _summary(
    dominant: str,
    acting: list[str],
    components: list[Component],
    bounds: tuple[float, float] | None,
    ref: MetricRef,
    tolerance: float,
) -> str:
    parts = ", ".join(
        f"{c.name} {c.value:.4g}"
        + (f" [{c.low:.4g}, {c.high:.4g}]" if c.low is not None and c.high is not None else "")
        for c in components
    )
    if bounds is not None:
        parts = f"avoidable bias between {bounds[0]:.4g} and {bounds[1]:.4g}, " + parts
    lead = {
        "avoidable bias": "high avoidable bias: the model underfits the training data",
        "variance": "high variance: the model does not generalise from training to validation",
        "both": "both high bias and high variance",
        "data mismatch": "data mismatch: validation rows differ from the training distribution",
        "near human level": f"near human level: {_quiet(components, acting, tolerance)}",
        "none": f"no gap to act on: {_quiet(components, acting, tolerance)}",
        "unknown": "bias cannot be told from unavoidable error without a human baseline",
    }[dominant]
    led = {"both": ("avoidable bias", "variance")}.get(dominant, (dominant,))
    others = [name for name in acting if name not in led]
    if others:
        lead += f"; {' and '.join(others)} {'counts' if len(others) == 1 else 'count'} too"
    return f"{lead} ({ref.name} error: {parts})"


def _quiet(components: list[Component], acting: list[str], tolerance: float) -> str:
    """Why nothing is acted on, in words the printed intervals agree with."""
    small = [c.name for c in components if c.significant and c.name not in acting]
    if not small:
        return "no component is significantly above zero"
    verb = "is" if len(small) == 1 else "are"
    return f"{' and '.join(small)} {verb} above zero but below the margin {tolerance:g}"
