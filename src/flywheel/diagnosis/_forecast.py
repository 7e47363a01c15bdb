"""The forecast: how many training rows the objective's target needs, and what the labels cost.

The curve family chosen by extrapolation (:mod:`flywheel.diagnosis._families`),
refitted on every size of the measured learning curve, answers: how many training
rows reach the objective's target, or at what level the curve levels off when the
target is out of reach.

The interval is a bootstrap of the fit: a wild bootstrap of the residuals
(training-sample noise, which shrinks with size) plus one shared shift per
replicate for the validation set's own sampling error (every point on the curve
is scored on the same validation rows, so that error moves the whole curve).
Model-selection uncertainty is not in the interval; the table of each family's
extrapolation error is kept so a reader can see how close the choice was.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from flywheel.diagnosis._curves import Curve
from flywheel.diagnosis._families import FAMILIES, CurveFit, _weights, fit_curve, select_family
from flywheel.errors import FlywheelError
from flywheel.metrics import get_metric

__all__ = ["Forecast", "MAX_ROWS", "forecast"]

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
    reach_share: float | None = None  # share of bootstrap replicates in which the target is reachable
    confidence: float = 0.9
    families: dict[str, float | None] = field(default_factory=dict)
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
        out["text"] = self.describe()
        return out


def _beats(curve: Curve, value: float, floor: float) -> bool:
    """Whether ``value`` is better than ``floor`` in the curve's direction."""
    return value > floor if curve.greater_is_better else value < floor


def _band(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return ""
    return f" ({low:.4g}–{high:.4g})"


def _needed(fit: CurveFit, target_error: float, n_min: float) -> float:
    """Smallest training size whose fitted error reaches ``target_error`` (inf when none below MAX_ROWS)."""
    if float(fit.error_at(MAX_ROWS)) > target_error:
        return math.inf
    lo, hi = math.log(max(n_min, 2.0)), math.log(MAX_ROWS)
    if float(fit.error_at(math.exp(lo))) <= target_error:
        return math.exp(lo)
    for _ in range(60):  # bisection in log n: every family is monotone in n
        mid = (lo + hi) / 2
        if float(fit.error_at(math.exp(mid))) <= target_error:
            hi = mid
        else:
            lo = mid
    return math.exp(hi)


_GRID = np.geomspace(2.0, MAX_ROWS, 3000)  # 0.7 % apart: fine enough for the ends of an interval


def _needed_many(fit: CurveFit, target_errors: np.ndarray) -> np.ndarray:
    """``_needed`` for many targets at once, read off a fine grid of sizes (inf where out of reach)."""
    with np.errstate(all="ignore"):
        errs = np.minimum.accumulate(np.nan_to_num(fit.error_at(_GRID), nan=np.inf))
    # errs falls with n: the first grid size at or below each target.
    idx = np.searchsorted(-errs, -np.asarray(target_errors, dtype=float), side="left")
    out = np.full(len(idx), math.inf)
    ok = idx < len(_GRID)
    out[ok] = _GRID[idx[ok]]
    return out


def _bootstrap(
    sizes: np.ndarray,
    errors: np.ndarray,
    fit: CurveFit,
    valid_se: float,
    n_boot: int,
    seed: int,
) -> list[CurveFit]:
    """Refits on residual-bootstrap replicates of the points, each shifted by one validation-noise draw.

    Residuals are standardised by the fit's weights, resampled, and scaled back, so a noisy small
    size lends its spread to no other size; they are inflated for the parameters fitted.
    """
    rng = np.random.default_rng(seed)
    fitted = fit.error_at(sizes)
    w = _weights(sizes, errors)
    standard = (errors - fitted) * w
    standard = standard - standard.mean()
    inflate = math.sqrt(len(errors) / max(len(errors) - len(fit.params), 1))
    out = []
    for _ in range(n_boot):
        shift = rng.normal(0.0, valid_se) if valid_se > 0 else 0.0
        sample = fitted + rng.choice(standard, len(errors)) * inflate / w + shift
        refit = fit_curve(sizes, sample, fit.family, n_ref=fit.n_ref, weights=w, start=fit.theta)
        if refit is not None:
            out.append(refit)
    return out


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
    family, table = select_family(sizes, errors, families)
    base["families"] = table
    if family is None:
        return Forecast(
            "unavailable", **base, reason="no curve family could be fitted to the measured points"
        )
    fit = fit_curve(sizes, errors, family, n_ref=float(sizes.max()), weights=_weights(sizes, errors))
    if fit is None:
        return Forecast("unavailable", **base, reason=f"the {family} fit did not converge")
    boots = _bootstrap(sizes, errors, fit, curve.valid_se, n_boot, seed)
    if len(boots) < n_boot // 2:
        return Forecast(
            "unavailable", **base, reason=f"the {family} fit did not converge on resampled points"
        )
    alpha = (1 - confidence) / 2
    base.update(_fitted(curve, fit, boots, sizes, n_now, alpha, metric.greater_is_better))
    base["cost_curve"] = _cost_curve(curve, fit, boots, n_now, cost_per_label, alpha)
    if target is None:
        return Forecast("unavailable", **base, reason="the objective has no target; pass --target")
    return _invert(curve, fit, boots, float(target), sizes, base, alpha)


def _fitted(
    curve: Curve,
    fit: CurveFit,
    boots: list[CurveFit],
    sizes: np.ndarray,
    n_now: int,
    alpha: float,
    greater_is_better: bool,
) -> dict[str, Any]:
    """What the chosen fit says whatever the target.

    Its plateau with an interval, the curve to draw, and the gain from twice today's training rows.
    """
    fam = fit.family
    plateau_e = np.array([b.asymptote for b in boots])
    grid = np.geomspace(max(sizes.min() / 2, 2.0), max(sizes.max() * 64, 10.0), 40)
    plat = curve.value(np.quantile(plateau_e, [alpha, 1 - alpha], method="inverted_cdf"))
    gain = float(curve.value(fit.error_at(2 * n_now)) - curve.value(fit.error_at(n_now)))
    return {
        "family": fam,
        "formula": FAMILIES[fam].formula,
        "params": fit.params,
        "plateau": float(curve.value(fit.asymptote)),
        "fitted": [{"size": float(n), "value": float(curve.value(fit.error_at(n)))} for n in grid],
        "plateau_low": float(min(plat)),
        "plateau_high": float(max(plat)),
        "doubling_gain": gain if greater_is_better else -gain,
    }


def _invert(
    curve: Curve,
    fit: CurveFit,
    boots: list[CurveFit],
    target: float,
    sizes: np.ndarray,
    base: dict[str, Any],
    alpha: float,
) -> Forecast:
    """The forecast at ``target``: met already, out of reach, or the rows (and cost) it needs."""
    n_now, cost_per_label = base["n_train"], base["cost_per_label"]
    target_e = float(curve.error(target))
    if float(curve.error(base["current"])) <= target_e:
        return Forecast("met", **base)
    needed_b = np.array([_needed_many(b, np.array([target_e]))[0] for b in boots])
    base["reach_share"] = float(np.mean(np.isfinite(needed_b)))
    needed = _needed(fit, target_e, sizes.min())
    if not math.isfinite(needed) and fit.asymptote < target_e:
        # The fit levels off beyond the target yet never reaches it in range: not "short of it".
        return Forecast(
            "unavailable",
            **base,
            reason=f"the {fit.family} fit levels off at {curve.metric} {base['plateau']:.4g}, beyond the "
            f"target {target:g}, but reaches it only past {MAX_ROWS:,.0f} rows: no honest forecast",
        )
    if not math.isfinite(needed):
        return Forecast("unreachable", **base)
    # inf sorts last: an open upper end
    low, high = np.quantile(needed_b, [alpha, 1 - alpha], method="inverted_cdf")
    buy = max(0.0, needed - n_now)
    cost = cost_low = cost_high = None
    if cost_per_label is not None:
        cost = buy * cost_per_label
        cost_low = max(0.0, float(low) - n_now) * cost_per_label
        cost_high = max(0.0, float(high) - n_now) * cost_per_label if math.isfinite(high) else None
    return Forecast(
        "reachable",
        **base,
        needed=needed,
        needed_low=float(low) if math.isfinite(low) else None,
        needed_high=float(high) if math.isfinite(high) else None,
        labels_to_buy=buy,
        cost=cost,
        cost_low=cost_low,
        cost_high=cost_high,
    )


def _cost_curve(
    curve: Curve,
    fit: CurveFit,
    boots: list[CurveFit],
    n_now: int,
    cost_per_label: float | None,
    alpha: float,
) -> list[dict[str, float | None]]:
    """Rows needed and their cost for targets between today's level and the plateau."""
    now_e = float(fit.error_at(n_now))
    floor_e = fit.asymptote
    if now_e <= floor_e:
        return []
    targets_e = now_e - np.linspace(0.05, 0.95, 19) * (now_e - floor_e)  # closing 5 % … 95 % of the gap
    per = np.array([_needed_many(b, targets_e) for b in boots])  # replicates × targets
    lows, highs = np.quantile(per, [alpha, 1 - alpha], axis=0, method="inverted_cdf")
    out: list[dict[str, float | None]] = []
    for j, target_e in enumerate(targets_e):
        n = _needed(fit, float(target_e), 2.0)
        if not math.isfinite(n):
            continue
        buy = max(0.0, n - n_now)
        out.append(
            {
                "target": float(curve.value(target_e)),
                "needed": n,
                "needed_low": float(lows[j]) if math.isfinite(lows[j]) else None,
                "needed_high": float(highs[j]) if math.isfinite(highs[j]) else None,
                "cost": buy * cost_per_label if cost_per_label is not None else None,
            }
        )
    return out
