"""The forecast: how many training rows the objective's target needs, and what the labels cost.

The curve families, blended by how well each extrapolates (:mod:`flywheel.diagnosis._blend`)
and refitted on every size of the measured learning curve, answer: how many training rows
reach the objective's target, or at what level the curve levels off when the target is out of
reach. The interval counts the fit, the choice of family, the seeds, the extrapolation's own
error on this curve and the validation rows' noise; :func:`extrapolate` gives the same band at
any size, which is how its calibration is checked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.stats import norm

from flywheel.diagnosis._blend import Blend, blend
from flywheel.diagnosis._curves import Curve
from flywheel.diagnosis._families import FAMILIES
from flywheel.errors import FlywheelError
from flywheel.metrics import get_metric

__all__ = ["Forecast", "MAX_ROWS", "extrapolate", "forecast"]

HAND_FACTOR = 100  # rows needed past this many times the rows in hand are not a plan
MAX_ROWS = 1e9  # beyond this many training rows a target counts as out of reach
_MIN_SIZES = 4


@dataclass(frozen=True)
class Forecast:
    """Training rows needed to reach the target, with an interval, and what the missing labels cost.

    ``status``: ``reachable`` (``needed`` is set), ``unreachable`` (the curve levels off short of
    the target, at ``plateau``), ``met`` (the target is met already) or ``unavailable`` (no
    honest number: ``reason`` says why).
    """

    status: Literal["reachable", "unreachable", "met", "unavailable"]
    metric: str
    target: float | None
    reason: str | None = None
    model: str | None = None
    family: str | None = None
    formula: str | None = None
    params: tuple[float, ...] = ()
    n_train: int = 0
    current: float | None = None
    needed: float | None = None
    needed_low: float | None = None
    needed_high: float | None = None  # None with status reachable: above MAX_ROWS in some replicates
    plateau: float | None = None
    plateau_low: float | None = None
    plateau_high: float | None = None
    cost_per_label: float | None = None
    labels_to_buy: float | None = None
    cost: float | None = None
    cost_low: float | None = None
    cost_high: float | None = None
    reach_share: float | None = None  # chance the plateau lies beyond the target (normal approximation)
    confidence: float = 0.9
    families: dict[str, float | None] = field(default_factory=dict)  # each family's extrapolation error
    weights: dict[str, float] = field(default_factory=dict)  # the blend's weight of each family
    excluded: dict[str, str] = field(default_factory=dict)  # degenerate fits left out, and why
    fitted: list[dict[str, float]] = field(default_factory=list)  # the fitted curve, for drawing
    cost_curve: list[dict[str, float | None]] = field(default_factory=list)  # needed and cost per target
    doubling_gain: float | None = None  # metric gain from twice the training rows, on the fitted curve
    split: str = "valid"  # where the curve's scores (and so ``current``) were measured

    @property
    def available(self) -> bool:
        """Whether the forecast holds a number (reachable, unreachable or met)."""
        return self.status != "unavailable"

    @property
    def too_far(self) -> bool:
        """Reachable only past :data:`HAND_FACTOR` times the training rows in hand: no plan to buy labels."""
        return self.status == "reachable" and (self.needed or 0) > HAND_FACTOR * max(self.n_train, 1)

    def blend_text(self) -> str:
        """The families blended, heaviest first, and those left out: one line."""
        parts = " · ".join(f"{k} {w:.2f}" for k, w in sorted(self.weights.items(), key=lambda kv: -kv[1]))
        out = f"{parts} (weighted by how well each extrapolated this curve)"
        if self.excluded:
            out += "; left out: " + ", ".join(f"{k} ({why})" for k, why in self.excluded.items())
        return out

    def describe(self) -> str:
        """One line for the terminal."""
        if self.status == "unavailable":
            return f"forecast unavailable: {self.reason}"
        if self.status == "met":
            # The curve is scored on validation; the verdict on test may still fall short of it.
            return (
                f"target {self.target:g} already met on the {self.split} split by the learning curve "
                f"({self.metric} {self.current:.4g} with {self.n_train:,} training rows); "
                "the verdict is judged on test"
            )
        if self.status == "unreachable":
            band = _band(self.plateau_low, self.plateau_high)
            return (
                f"not reachable with this model family: the curve levels off at {self.metric} "
                f"{self.plateau:.4g}{band}, short of the target {self.target:g}"
            )
        assert self.needed is not None
        if self.too_far:
            return (
                f"{self.metric} {self.target:g} needs more than {HAND_FACTOR}× the {self.n_train:,} "
                f"training rows in hand (the curve says about {self.needed:,.0f}): an extrapolation that "
                "far is no plan"
            )
        high = f"{self.needed_high:,.0f}" if self.needed_high is not None else f"more than {MAX_ROWS:,.0f}"
        low = f"{self.needed_low:,.0f}" if self.needed_low is not None else "?"
        cost = ""
        if self.cost is not None:
            cost = f"; {self.labels_to_buy:,.0f} more labels cost {self.cost:,.0f}"
        return (
            f"{self.metric} {self.target:g} needs about {self.needed:,.0f} training rows "
            f"({low}–{high}, {self.confidence:.0%}){cost}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        out = dict(self.__dict__)
        out["params"] = list(self.params)
        out["max_rows"] = MAX_ROWS  # the limits the text may name, stored with it
        out["hand_factor"] = HAND_FACTOR
        out["text"] = self.describe()
        return out


def _beats(curve: Curve, value: float, floor: float) -> bool:
    """Whether ``value`` is better than ``floor`` in the curve's direction."""
    return value > floor if curve.greater_is_better else value < floor


def _band(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return ""
    return f" ({low:.4g}–{high:.4g})"


_GRID = np.geomspace(2.0, MAX_ROWS, 3000)  # 0.7 % apart: fine enough for the ends of an interval


def _first_reach(errors_on_grid: np.ndarray, target_errors: np.ndarray) -> np.ndarray:
    """The first grid size whose error is at or below each target (inf where none is)."""
    errs = np.minimum.accumulate(np.nan_to_num(errors_on_grid, nan=np.inf))
    idx = np.searchsorted(-errs, -np.asarray(target_errors, dtype=float), side="left")
    out = np.full(len(idx), math.inf)
    ok = idx < len(_GRID)
    out[ok] = _GRID[idx[ok]]
    return out


def _needed(fit: Blend, target_error: float, n_min: float) -> float:
    """Smallest training size whose blended error reaches ``target_error`` (inf when none below MAX_ROWS)."""
    if float(fit.error_at(MAX_ROWS)[0]) > target_error:
        return math.inf
    lo, hi = math.log(max(n_min, 2.0)), math.log(MAX_ROWS)
    if float(fit.error_at(math.exp(lo))[0]) <= target_error:
        return math.exp(lo)
    for _ in range(60):  # bisection in log n: the blend of monotone curves is monotone in n
        mid = (lo + hi) / 2
        if float(fit.error_at(math.exp(mid))[0]) <= target_error:
            hi = mid
        else:
            lo = mid
    return math.exp(hi)


def forecast(
    curve: Curve,
    target: float | None,
    *,
    n_train: int | None = None,
    cost_per_label: float | None = None,
    confidence: float = 0.9,
    n_boot: int = 200,
    seed: int = 0,
    families: Sequence[str] | None = None,
    floor: float | None = None,
) -> Forecast:
    """Fit the curve families, choose one by extrapolation, and invert it at ``target``.

    ``n_train`` is the number of training rows labelled today (default: the curve's largest
    size); the labels to buy are the rows needed beyond it. ``floor`` is the dummy's score: a
    curve that never beats it is not extrapolated (no honest forecast).
    """
    if curve.axis != "size":
        raise ValueError("a forecast needs a curve against training size, not a training history")
    metric = get_metric(curve.metric)
    base: dict[str, Any] = {
        "metric": curve.metric,
        "target": target,
        "model": curve.model,
        "split": curve.split,
    }
    base["cost_per_label"] = cost_per_label
    base["confidence"] = confidence
    sizes = np.array([p.size for p in curve.points], dtype=float)
    values = np.array([p.valid for p in curve.points], dtype=float)
    n_now = int(n_train or sizes.max())
    base["n_train"] = n_now
    largest = values[sizes == sizes.max()]
    base["current"] = float(largest.mean())
    if target is not None and not metric.lower <= target <= metric.upper:
        raise FlywheelError(
            f"target {target:g} is outside {curve.metric}'s range [{metric.lower:g}, {metric.upper:g}]"
        )
    if len(np.unique(sizes)) < _MIN_SIZES:
        return Forecast(
            "unavailable",
            **base,
            reason=f"too little data to fit a curve: {len(np.unique(sizes))} training sizes, need at least "
            f"{_MIN_SIZES} (add labelled rows or lower the test/valid shares)",
        )
    if floor is not None and not any(_beats(curve, v, floor) for v in values):
        return Forecast(
            "unavailable",
            **base,
            reason=f"the curve never beats the dummy's {curve.metric} {floor:.4g}: no honest forecast "
            "(work on the model before counting labels)",
        )
    errors = curve.error(values)
    fitted = blend(
        errors=errors, sizes=sizes, families=families, valid_se=curve.valid_se, n_boot=n_boot, seed=seed
    )
    if isinstance(fitted, str):
        return Forecast("unavailable", **base, reason=f"no honest forecast: {fitted}")
    base["families"] = fitted.families
    base["weights"] = fitted.weights
    base["excluded"] = fitted.excluded
    plateau = float(curve.value(fitted.asymptote))
    if not metric.lower <= plateau <= metric.upper:
        return Forecast(
            "unavailable",
            **base,
            reason=f"no honest forecast: the curve levels off at {curve.metric} {plateau:.4g}, outside "
            f"the metric's range [{metric.lower:g}, {metric.upper:g}]",
        )
    base.update(_fitted(curve, fitted, n_now, confidence, metric.greater_is_better))
    base["cost_curve"] = _cost_curve(curve, fitted, n_now, cost_per_label, confidence)
    if target is None:
        return Forecast("unavailable", **base, reason="the objective has no target; pass --target")
    return _invert(curve, fitted, float(target), sizes, base, confidence)


def _fitted(
    curve: Curve, fit: Blend, n_now: int, confidence: float, greater_is_better: bool
) -> dict[str, Any]:
    """What the blend says whatever the target.

    Its plateau with an interval, the curve to draw with its band, and the gain from twice
    today's training rows.
    """
    top = fit.top
    z = float(norm.ppf(0.5 + confidence / 2))
    spread = z * fit.asymptote_sd()
    plat = curve.value(np.array([max(fit.asymptote - spread, 0.0), fit.asymptote + spread]))
    sizes = np.array([p.size for p in curve.points], dtype=float)
    grid = np.geomspace(max(sizes.min() / 2, 2.0), max(sizes.max() * 64, 10.0), 40)
    point, good, bad = fit.band(grid, confidence)
    gain = float(curve.value(fit.error_at(2 * n_now))[0] - curve.value(fit.error_at(n_now))[0])
    return {
        "family": top,
        "formula": FAMILIES[top].formula,
        "params": fit.fits[top].params,
        "plateau": float(curve.value(fit.asymptote)),
        "fitted": [
            {
                "size": float(n),
                "value": float(curve.value(p)),
                "low": float(min(curve.value(g), curve.value(b))),
                "high": float(max(curve.value(g), curve.value(b))),
            }
            for n, p, g, b in zip(grid, point, good, bad, strict=True)
        ],
        "plateau_low": float(min(plat)),
        "plateau_high": float(max(plat)),
        "doubling_gain": gain if greater_is_better else -gain,
    }


def _invert(
    curve: Curve,
    fit: Blend,
    target: float,
    sizes: np.ndarray,
    base: dict[str, Any],
    confidence: float,
) -> Forecast:
    """The forecast at ``target``: met already, out of reach, or the rows (and cost) it needs.

    The rows' interval runs from where the optimistic end of the band first reaches the target to
    where the pessimistic end does; the band counts the validation rows' own noise, because the
    target is judged on other rows.
    """
    n_now, cost_per_label = base["n_train"], base["cost_per_label"]
    target_e = float(curve.error(target))
    if float(curve.error(base["current"])) <= target_e:
        return Forecast("met", **base)
    _, good, bad = fit.band(_GRID, confidence, population=True)
    low, high = (float(_first_reach(e, np.array([target_e]))[0]) for e in (good, bad))
    needed = _needed(fit, target_e, sizes.min())
    low = max(low, min(needed, n_now))  # reached below today's rows at best: "maybe with what you have"
    base["reach_share"] = float(norm.cdf((target_e - fit.asymptote) / max(fit.asymptote_sd(), 1e-12)))
    if not math.isfinite(needed) and fit.asymptote < target_e:
        # The fit levels off beyond the target yet never reaches it in range: not "short of it".
        return Forecast(
            "unavailable",
            **base,
            reason=f"no honest forecast: the blended fit levels off at {curve.metric} "
            f"{base['plateau']:.4g}, beyond the target {target:g}, but reaches it only past "
            f"{MAX_ROWS:,.0f} rows",
        )
    if not math.isfinite(needed):
        return Forecast("unreachable", **base)
    buy = max(0.0, needed - n_now)
    cost = cost_low = cost_high = None
    if cost_per_label is not None:
        cost = buy * cost_per_label
        cost_low = max(0.0, low - n_now) * cost_per_label if math.isfinite(low) else None
        cost_high = max(0.0, high - n_now) * cost_per_label if math.isfinite(high) else None
    return Forecast(
        "reachable",
        **base,
        needed=needed,
        needed_low=min(low, needed) if math.isfinite(low) else None,
        needed_high=max(high, needed) if math.isfinite(high) else None,
        labels_to_buy=buy,
        cost=cost,
        cost_low=cost_low,
        cost_high=cost_high,
    )


def _cost_curve(
    curve: Curve,
    fit: Blend,
    n_now: int,
    cost_per_label: float | None,
    confidence: float,
) -> list[dict[str, float | None]]:
    """Rows needed and their cost for targets between today's level and the plateau."""
    now_e = float(fit.error_at(n_now)[0])
    floor_e = fit.asymptote
    if now_e <= floor_e:
        return []
    targets_e = now_e - np.linspace(0.05, 0.95, 19) * (now_e - floor_e)  # closing 5 % … 95 % of the gap
    _, good, bad = fit.band(_GRID, confidence, population=True)
    lows, highs = _first_reach(good, targets_e), _first_reach(bad, targets_e)
    out: list[dict[str, float | None]] = []
    for j, target_e in enumerate(targets_e):
        n = _needed(fit, float(target_e), 2.0)
        if not math.isfinite(n):
            continue
        buy = max(0.0, n - n_now)
        low = max(float(lows[j]), min(n, n_now))
        out.append(
            {
                "target": float(curve.value(target_e)),
                "needed": n,
                "needed_low": min(low, n) if math.isfinite(low) else None,
                "needed_high": max(float(highs[j]), n) if math.isfinite(highs[j]) else None,
                "labels_to_buy": buy,
                "cost": buy * cost_per_label if cost_per_label is not None else None,
            }
        )
    return out


def extrapolate(
    curve: Curve,
    sizes: Sequence[float],
    *,
    confidence: float = 0.8,
    n_boot: int = 200,
    seed: int = 0,
    families: Sequence[str] | None = None,
) -> list[tuple[float, float, float]]:
    """The curve's value at ``sizes`` (a mean over as many seeds, on the same validation rows):
    (point, low, high) per size, the central ``confidence`` interval, in metric units.

    Raises
    ------
    FlywheelError
        When the curve has fewer than four sizes or no family fits it honestly.
    """
    pts = np.array([p.size for p in curve.points], dtype=float)
    if len(np.unique(pts)) < _MIN_SIZES:
        raise FlywheelError(f"too little data to fit a curve: {len(np.unique(pts))} training sizes")
    values = np.array([p.valid for p in curve.points], dtype=float)
    fit = blend(
        pts, curve.error(values), families=families, valid_se=curve.valid_se, n_boot=n_boot, seed=seed
    )
    if isinstance(fit, str):
        raise FlywheelError(f"no honest forecast: {fit}")
    point, good, bad = fit.band(np.asarray(sizes, dtype=float), confidence)
    out = []
    for p, g, b in zip(curve.value(point), curve.value(good), curve.value(bad), strict=True):
        out.append((float(p), float(min(g, b)), float(max(g, b))))
    return out
