"""Learning curves and the forecast of how many labels a target needs, and what they cost.

A learning curve is the optimized metric measured at geometric training-set
sizes, several seeds each, for one model family (the best candidate's). Parametric
curve families are fitted to it in *error space* (the distance to the metric's
perfect score, which falls as data grows), one of them is chosen by how well it
*extrapolates* — fitted on the smaller sizes, judged on the larger measured ones,
which is the use a forecast makes of it — and the chosen family, refitted on
every size, answers: how many training rows reach the objective's target, or at
what level the curve levels off when the target is out of reach.

The families are the ones the Learning Curve Database study (Mohr et al., 2022)
compared; ``mmf4`` and ``wbl4`` extrapolated best there, ``pow3`` (an inverse
power law with an asymptote) is the classic. Each is written as a decreasing
error curve with an asymptote ``c >= 0``.

The interval is a bootstrap of the fit: a wild bootstrap of the residuals
(training-sample noise, which shrinks with size) plus one shared shift per
replicate for the validation set's own sampling error (every point on the curve
is scored on the same validation rows, so that error moves the whole curve).
Model-selection uncertainty is not in the interval; the table of each family's
extrapolation error is kept so a reader can see how close the choice was.

Written by hand rather than with a library: no maintained package fits these
families with extrapolation-based selection and inverts them with an interval.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.optimize import least_squares

from flywheel.data import Dataset, Split
from flywheel.errors import DataError, FlywheelError
from flywheel.evaluation import Candidate
from flywheel.execution import Executor, LocalExecutor, Task
from flywheel.metrics import MetricRef, get_metric, score

__all__ = [
    "Curve",
    "CurveFamily",
    "CurveFit",
    "CurvePoint",
    "FAMILIES",
    "Forecast",
    "MAX_ROWS",
    "fit_curve",
    "forecast",
    "geometric_sizes",
    "measure_curve",
    "read_history",
    "select_family",
]

MAX_ROWS = 1e9  # beyond this many training rows a target counts as out of reach
_MIN_SIZES = 4


# --- curve families -----------------------------------------------------------------------------
#
# Every family is linear in two parameters (a scale ``a`` and an asymptote ``c``) once its one or
# two shape parameters are fixed. So a fit is a search over the shape parameters alone, with
# ``a, c >= 0`` solved in closed form at each (variable projection): a coarse grid finds the basin,
# a bounded least-squares polish finds the minimum. That is robust (no starting values to guess)
# and fast enough to refit a few hundred bootstrap replicates in a second.


@dataclass(frozen=True)
class CurveFamily:
    """An error curve e = a·f(x; θ) + c·g(x; θ) of the scaled size x = n / n_ref."""

    name: str
    formula: str
    basis: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray | None]]
    grids: tuple[np.ndarray, ...]  # candidate values of each shape parameter θ
    log_n: bool = False  # defined on n itself (ilog2), not on n / n_ref

    @property
    def n_params(self) -> int:
        """Number of free parameters: the shape parameters plus a (and c where the family has one)."""
        ones = self.basis(np.ones(2), np.array([g[0] for g in self.grids]))[1]
        return len(self.grids) + 1 + (ones is not None)

    def value(self, x: np.ndarray, theta: Sequence[float] | np.ndarray, a: float, c: float) -> np.ndarray:
        """The curve at ``x``."""
        f, g = self.basis(x, np.asarray(theta, dtype=float))
        return a * f + (c * g if g is not None else 0.0)


def _const(x: np.ndarray) -> np.ndarray:
    return np.ones_like(x)


def _pow2(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    return x ** (-t[0]), None


def _pow3(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    return x ** (-t[0]), _const(x)


def _pow4(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    return (x + t[1]) ** (-t[0]), _const(x)


def _exp3(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    return np.exp(-t[0] * x), _const(x)


def _wbl4(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    return np.exp(-t[0] * x ** t[1]), _const(x)


def _mmf4(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    xd = x ** t[1]
    return t[0] / (t[0] + xd), xd / (t[0] + xd)


def _ilog2(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    return 1.0 / np.log(np.maximum(x, 1.0001)), _const(x)


FAMILIES: dict[str, CurveFamily] = {
    f.name: f
    for f in (
        CurveFamily("pow2", "e = a·x^(−b)", _pow2, (np.geomspace(1e-3, 5, 80),)),
        CurveFamily("pow3", "e = c + a·x^(−b)", _pow3, (np.geomspace(1e-3, 5, 80),)),
        CurveFamily(
            "pow4",
            "e = c + a·(x + d)^(−b)",
            _pow4,
            (np.geomspace(1e-3, 5, 30), np.concatenate([[0.0], np.geomspace(1e-3, 10, 20)])),
        ),
        CurveFamily("exp3", "e = c + a·exp(−b·x)", _exp3, (np.geomspace(1e-2, 3e3, 80),)),
        CurveFamily(
            "wbl4", "e = c + a·exp(−b·x^d)", _wbl4, (np.geomspace(1e-2, 3e3, 30), np.geomspace(0.02, 3, 20))
        ),
        CurveFamily(
            "mmf4",
            "e = (a·b + c·x^d) / (b + x^d)",
            _mmf4,
            (np.geomspace(1e-6, 1e3, 30), np.geomspace(0.02, 5, 20)),
        ),
        CurveFamily("ilog2", "e = c + a / ln(n)", _ilog2, (), log_n=True),
    )
}


# --- fitting ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurveFit:
    """One family fitted to (size, error) points: shape parameters θ, scale a, asymptote c."""

    family: str
    theta: tuple[float, ...]
    a: float
    c: float
    n_ref: float
    rss: float

    @property
    def params(self) -> tuple[float, ...]:
        """All parameters: a, the shape parameters, c."""
        return (self.a, *self.theta, self.c)

    def error_at(self, n: Any) -> np.ndarray:
        """The fitted error at training size(s) ``n``."""
        fam = FAMILIES[self.family]
        arr = np.asarray(n, dtype=float)
        with np.errstate(all="ignore"):
            return fam.value(arr if fam.log_n else arr / self.n_ref, self.theta, self.a, self.c)

    @property
    def asymptote(self) -> float:
        """The error the curve levels off at as the data grows without bound."""
        return float(self.error_at(1e30)) if self.family == "mmf4" else self.c


def _project(
    f: np.ndarray, g: np.ndarray | None, e: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best a, c >= 0 for basis rows ``f`` (G × n) and ``g`` (G × n or None): (a, c, rss) per row."""
    fw, ew = f * w, e * w
    ff = np.einsum("ij,ij->i", fw, fw)
    fe = fw @ ew
    a_only = np.maximum(fe / np.where(ff > 0, ff, np.inf), 0.0)
    rss_a = ew @ ew - 2 * a_only * fe + a_only**2 * ff
    if g is None:
        return a_only, np.zeros_like(a_only), rss_a
    gw = g * w
    gg = np.einsum("ij,ij->i", gw, gw)
    fg = np.einsum("ij,ij->i", fw, gw)
    ge = gw @ ew
    c_only = np.maximum(ge / np.where(gg > 0, gg, np.inf), 0.0)
    rss_c = ew @ ew - 2 * c_only * ge + c_only**2 * gg
    det = ff * gg - fg**2
    with np.errstate(all="ignore"):
        a_both = (gg * fe - fg * ge) / det
        c_both = (ff * ge - fg * fe) / det
    ok = (det > 1e-14 * ff * gg) & (a_both >= 0) & (c_both >= 0)
    rss_both = np.where(
        ok,
        ew @ ew
        - 2 * (a_both * fe + c_both * ge)
        + a_both**2 * ff
        + 2 * a_both * c_both * fg
        + c_both**2 * gg,
        np.inf,
    )
    choice = np.argmin(np.stack([rss_both, rss_a, rss_c]), axis=0)
    a = np.choose(choice, [np.nan_to_num(a_both), a_only, np.zeros_like(a_only)])
    c = np.choose(choice, [np.nan_to_num(c_both), np.zeros_like(c_only), c_only])
    rss = np.choose(choice, [rss_both, rss_a, rss_c])
    return a, c, rss


def _weights(sizes: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """Inverse spread by size, from a smooth fit of log spread on log size.

    The seeds' spread is larger at small sizes; weighting by it keeps noisy small sizes from
    steering the fit. With a few seeds per size the raw spreads are too noisy to weight by (they
    under-cover the bootstrap), so the weights follow a straight line through them in log-log.
    """
    uniq = np.unique(sizes)
    sd = np.array([np.std(errors[sizes == s], ddof=1) if np.sum(sizes == s) > 1 else np.nan for s in uniq])
    ok = np.isfinite(sd) & (sd > 0)
    if ok.sum() < 3:
        return np.ones_like(errors)
    slope, intercept = np.polyfit(np.log(uniq[ok]), np.log(sd[ok]), 1)
    spread = np.exp(intercept + slope * np.log(sizes))
    return spread.mean() / spread


def fit_curve(
    sizes: Sequence[float] | np.ndarray,
    errors: Sequence[float] | np.ndarray,
    family: str,
    *,
    n_ref: float | None = None,
    weights: np.ndarray | None = None,
    start: Sequence[float] | None = None,
) -> CurveFit | None:
    """Weighted least-squares fit of one family; ``None`` when no finite fit exists.

    ``start`` (shape parameters θ) skips the grid search: a bootstrap refit starts from the fit.
    """
    fam = FAMILIES[family]
    n = np.asarray(sizes, dtype=float)
    e = np.asarray(errors, dtype=float)
    ref = float(n_ref or np.max(n))
    x = n if fam.log_n else n / ref
    w = np.ones_like(e) if weights is None else np.asarray(weights, dtype=float)
    with np.errstate(all="ignore"):
        if not fam.grids:
            f, g = fam.basis(x, np.empty(0))
            a, c, rss = _project(f[None, :], None if g is None else g[None, :], e, w)
            if not np.isfinite(rss[0]):
                return None
            return CurveFit(family, (), float(a[0]), float(c[0]), ref, float(rss[0]))
        if start is None:
            mesh = np.stack([m.ravel() for m in np.meshgrid(*fam.grids, indexing="ij")])  # θ × G
            f, g = fam.basis(x[None, :], mesh[:, :, None])
            g = None if g is None else np.broadcast_to(g, f.shape)
            _, _, rss = _project(f, g, e, w)
            rss = np.where(np.isfinite(rss), rss, np.inf)
            if not np.isfinite(rss).any():
                return None
            theta0 = mesh[:, int(np.argmin(rss))]
        else:
            theta0 = np.asarray(start, dtype=float)
        lows = np.array([gr.min() for gr in fam.grids])
        highs = np.array([gr.max() for gr in fam.grids])
        theta0 = np.clip(theta0, lows, highs)

        def resid(theta: np.ndarray) -> np.ndarray:
            fb, gb = fam.basis(x, theta)
            a, c, _ = _project(fb[None, :], None if gb is None else gb[None, :], e, w)
            out = (fam.value(x, theta, float(a[0]), float(c[0])) - e) * w
            return np.where(np.isfinite(out), out, 1e6)

        if np.all(highs > lows):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    theta = least_squares(resid, theta0, bounds=(lows, highs), x_scale="jac", max_nfev=60).x
                except (ValueError, FloatingPointError):
                    theta = theta0
        else:
            theta = theta0
        fb, gb = fam.basis(x, theta)
        a, c, rss = _project(fb[None, :], None if gb is None else gb[None, :], e, w)
    if not (np.isfinite(rss[0]) and np.isfinite(a[0]) and np.isfinite(c[0])):
        return None
    return CurveFit(family, tuple(float(t) for t in theta), float(a[0]), float(c[0]), ref, float(rss[0]))


def _extrapolation_errors(
    sizes: np.ndarray, errors: np.ndarray, families: Sequence[str]
) -> dict[str, float | None]:
    """Each family fitted on the smaller sizes, judged by its squared error on the larger ones."""
    uniq = np.unique(sizes)
    held = max(1, len(uniq) // 3)
    anchor = uniq[:-held]
    fit_mask = np.isin(sizes, anchor)
    out: dict[str, float | None] = {}
    for name in families:
        if FAMILIES[name].n_params >= len(anchor):  # as many parameters as sizes: no test of shape
            out[name] = None
            continue
        fit = fit_curve(
            sizes[fit_mask],
            errors[fit_mask],
            name,
            n_ref=float(uniq[-1]),
            weights=_weights(sizes[fit_mask], errors[fit_mask]),
        )
        if fit is None:
            out[name] = None
            continue
        means = np.array([errors[sizes == s].mean() for s in uniq[-held:]])
        out[name] = float(np.mean((fit.error_at(uniq[-held:]) - means) ** 2))
    return out


def select_family(
    sizes: np.ndarray, errors: np.ndarray, families: Sequence[str] | None = None
) -> tuple[str | None, dict[str, float | None]]:
    """The family that best extrapolates from the smaller sizes to the larger ones.

    Within 5 % of the best extrapolation error, the family with fewer parameters wins.
    """
    names = list(families or FAMILIES)
    table = _extrapolation_errors(sizes, errors, names)
    scored = [(v, FAMILIES[k].n_params, k) for k, v in table.items() if v is not None]
    if not scored:
        return None, table
    low = min(v for v, _, _ in scored)
    near = [s for s in scored if s[0] <= low * 1.05 + 1e-15]
    return min(near, key=lambda s: (s[1], s[0]))[2], table


# --- learning curves ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CurvePoint:
    """The metric at one training size and seed: on the rows trained on and on validation."""

    size: int
    seed: int
    train: float | None
    valid: float


@dataclass(frozen=True)
class Curve:
    """A learning curve: metric against training size (measured) or against step (a history file)."""

    metric: str
    greater_is_better: bool
    perfect: float
    axis: Literal["size", "step"]
    points: tuple[CurvePoint, ...]
    model: str
    split: str = "valid"
    valid_se: float = 0.0  # standard error of one point from the validation rows' own sampling
    notes: tuple[str, ...] = ()

    def error(self, values: Any) -> np.ndarray:
        """Metric values as distance to the perfect score (falls as the model improves)."""
        v = np.asarray(values, dtype=float)
        return self.perfect - v if self.greater_is_better else v - self.perfect

    def value(self, errors: Any) -> np.ndarray:
        """Errors back to metric values."""
        e = np.asarray(errors, dtype=float)
        return self.perfect - e if self.greater_is_better else self.perfect + e

    def summary(self) -> list[dict[str, Any]]:
        """Mean and spread of train and valid per size (or step)."""
        out = []
        for s in sorted({p.size for p in self.points}):
            at = [p for p in self.points if p.size == s]
            valid = np.array([p.valid for p in at])
            trains = [p.train for p in at if p.train is not None]
            out.append(
                {
                    "size": s,
                    "valid": float(valid.mean()),
                    "valid_sd": float(valid.std(ddof=1)) if len(valid) > 1 else 0.0,
                    "train": float(np.mean(trains)) if trains else None,
                    "n": len(at),
                }
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "metric": self.metric,
            "axis": self.axis,
            "model": self.model,
            "split": self.split,
            "points": self.summary(),
            "notes": list(self.notes),
        }


def geometric_sizes(n_train: int, count: int = 8, *, smallest: int | None = None) -> list[int]:
    """``count`` training sizes in geometric progression from a small share of train to all of it."""
    low = smallest if smallest is not None else max(20, n_train // 32)
    low = min(low, n_train)
    raw = np.geomspace(low, n_train, count)
    return sorted({round(v) for v in raw})


def _subsample(
    y: np.ndarray, rows: np.ndarray, size: int, classify: bool, rng: np.random.Generator
) -> np.ndarray:
    """``size`` of ``rows``, stratified by class (each class present in train keeps at least one row)."""
    if size >= len(rows):
        return rows
    if not classify:
        return np.sort(rng.choice(rows, size, replace=False))
    labels = y[rows].astype(str)
    classes, codes = np.unique(labels, return_inverse=True)
    counts = np.bincount(codes)
    quota = np.maximum(1, np.floor(counts * size / len(rows)).astype(int))
    short = size - quota.sum()
    if short > 0:  # hand the remainder to the largest classes, by their fractional share
        frac = counts * size / len(rows) - np.floor(counts * size / len(rows))
        for j in np.argsort(-frac)[:short]:
            quota[j] = min(counts[j], quota[j] + 1)
    picked = [
        rng.choice(rows[codes == j], min(quota[j], counts[j]), replace=False) for j in range(len(classes))
    ]
    return np.sort(np.concatenate(picked))


def _metric_value(ref: MetricRef, ds: Dataset, rows: np.ndarray, model: Any) -> float:
    from flywheel.evaluation import predict_rows

    pred, proba = predict_rows(model, ds, rows)
    classes = None if ds.classes is None else np.asarray(ds.classes)
    if get_metric(ref.name).needs == "scores" and proba is None:
        raise FlywheelError(f"{ref.name} needs class scores and the model gives none")
    return float(score(ds.y[rows], pred, proba, [ref.name], classes=classes, n_resamples=0)[ref.name].value)


def _curve_seed(
    cand: Candidate, ds: Dataset, split: Split, ref: MetricRef, sizes: Sequence[int], seed: int, rows_out: str
) -> list[CurvePoint]:
    """Fit at each size for one seed; score on the subsample trained on (up to 5,000 rows) and valid."""
    assert cand.make is not None
    rng = np.random.default_rng([seed, 7919])
    classify = ds.classes is not None
    evaluate_on = split.valid if rows_out == "valid" else split.test
    points = []
    for size in sizes:
        rows = _subsample(ds.y, split.train, size, classify, rng)
        model = cand.make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(ds.X.iloc[rows], ds.y[rows])
        seen = rows if len(rows) <= 5000 else np.sort(rng.choice(rows, 5000, replace=False))
        try:
            train = _metric_value(ref, ds, seen, model)
        except ValueError:
            train = None
        points.append(CurvePoint(len(rows), seed, train, _metric_value(ref, ds, evaluate_on, model)))
    return points


def measure_curve(
    cand: Candidate,
    ds: Dataset,
    split: Split,
    ref: MetricRef,
    *,
    sizes: int = 8,
    seeds: int = 3,
    executor: Executor | None = None,
    budget_s: float = 360.0,
    valid_se: float = 0.0,
) -> Curve:
    """The metric at geometric training sizes, ``seeds`` subsamples each, one process per seed.

    Raises
    ------
    FlywheelError
        When the candidate cannot be refitted (a rule or a predictions file), or every seed failed.
    """
    if cand.make is None:
        raise FlywheelError(f"{cand.name} is not a model flywheel fits, so it has no learning curve")
    where = "valid" if len(split.valid) else "test"
    grid = geometric_sizes(len(split.train), sizes)
    tasks = [
        Task(f"curve seed {s}", partial(_curve_seed, cand, ds, split, ref, grid, s, where), budget_s)
        for s in range(seeds)
    ]
    outcomes = (executor or LocalExecutor()).run(tasks)
    points = [p for o in outcomes if o.error is None for p in o.value]
    errors = [o.error for o in outcomes if o.error is not None]
    if not points:
        raise FlywheelError(
            f"the learning curve of {cand.name} failed: {errors[0] if errors else 'no points'}"
        )
    notes = tuple(f"seed failed: {e}" for e in dict.fromkeys(errors))
    metric = get_metric(ref.name)
    return Curve(
        ref.name, ref.greater_is_better, metric.best, "size", tuple(points), cand.name, where, valid_se, notes
    )


def read_history(path: Path, ref: MetricRef, *, given: str, where: str, model: str = "history") -> Curve:
    """A training history (CSV with columns step, train, valid) as a curve against step.

    Raises
    ------
    DataError
        On a missing or unreadable file, missing columns, non-numeric values or steps that do
        not strictly increase.
    """
    name = "diagnosis.history"
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in ("step", "train", "valid") if c not in header]
            if missing:
                raise DataError(
                    f"{where}: {name} {given!r} lacks column {missing[0]!r}; expected columns "
                    f"step, train, valid (got {', '.join(header) or 'none'})"
                )
            rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    except FileNotFoundError:
        raise DataError(f"{where}: {name} {given!r} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{where}: {name} {given!r} cannot be read: {exc}") from None
    values: list[tuple[float, float, float]] = []
    for i, row in enumerate(rows, start=2):
        try:
            values.append((float(row["step"]), float(row["train"]), float(row["valid"])))
        except ValueError:
            raise DataError(
                f"{where}: {name} {given!r} line {i}: step, train and valid must be numbers; "
                f"got {row['step']!r}, {row['train']!r}, {row['valid']!r}"
            ) from None
        if not all(math.isfinite(v) for v in values[-1]):
            raise DataError(f"{where}: {name} {given!r} line {i}: values must be finite")
    if len(values) < 2:
        raise DataError(f"{where}: {name} {given!r} needs at least 2 rows; got {len(values)}")
    steps = [v[0] for v in values]
    for i in range(1, len(steps)):
        if steps[i] <= steps[i - 1]:
            raise DataError(
                f"{where}: {name} {given!r} line {i + 2}: steps must strictly increase; "
                f"got {steps[i]:g} after {steps[i - 1]:g}"
            )
    for label, col in (("train", 1), ("valid", 2)):
        bad = [v[col] for v in values if not ref.lower <= v[col] <= ref.upper]
        if bad:
            raise DataError(
                f"{where}: {name} {given!r}: {label} value {bad[0]:g} is outside {ref.name}'s range "
                f"[{ref.lower:g}, {ref.upper:g}]; the history must hold the objective's metric"
            )
    points = tuple(CurvePoint(int(s), 0, tr, va) for s, tr, va in values)
    metric = get_metric(ref.name)
    return Curve(ref.name, ref.greater_is_better, metric.best, "step", points, model, "valid")


# --- the forecast -------------------------------------------------------------------------------


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

    @property
    def available(self) -> bool:
        """Whether the forecast holds a number (reachable, unreachable or met)."""
        return self.status != "unavailable"

    def describe(self) -> str:
        """One line for the terminal."""
        if self.status == "unavailable":
            return f"forecast unavailable: {self.reason}"
        if self.status == "met":
            return (
                f"target {self.target:g} already met "
                f"({self.metric} {self.current:.4g} on {self.n_train} rows)"
            )
        if self.status == "unreachable":
            band = _band(self.plateau_low, self.plateau_high)
            return (
                f"not reachable with this model family: the curve levels off at {self.metric} "
                f"{self.plateau:.4g}{band}, short of the target {self.target:g}"
            )
        assert self.needed is not None
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
) -> Forecast:
    """Fit the curve families, choose one by extrapolation, and invert it at ``target``.

    ``n_train`` is the number of training rows labelled today (default: the curve's largest
    size); the labels to buy are the rows needed beyond it.
    """
    if curve.axis != "size":
        raise ValueError("a forecast needs a curve against training size, not a training history")
    metric = get_metric(curve.metric)
    base: dict[str, Any] = {"metric": curve.metric, "target": target, "model": curve.model}
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
    plateau_e = np.array([b.asymptote for b in boots])
    grid = np.geomspace(max(sizes.min() / 2, 2.0), max(sizes.max() * 64, 10.0), 40)
    base.update(
        family=family,
        formula=FAMILIES[family].formula,
        params=fit.params,
        plateau=float(curve.value(fit.asymptote)),
        fitted=[{"size": float(n), "value": float(curve.value(fit.error_at(n)))} for n in grid],
    )
    plat = curve.value(np.quantile(plateau_e, [alpha, 1 - alpha], method="inverted_cdf"))
    base["plateau_low"], base["plateau_high"] = float(min(plat)), float(max(plat))
    gain = float(curve.value(fit.error_at(2 * n_now)) - curve.value(fit.error_at(n_now)))
    base["doubling_gain"] = gain if metric.greater_is_better else -gain
    base["cost_curve"] = _cost_curve(curve, fit, boots, n_now, cost_per_label, alpha)
    if target is None:
        return Forecast("unavailable", **base, reason="the objective has no target; pass --target")
    target_e = float(curve.error(target))
    if float(curve.error(base["current"])) <= target_e:
        return Forecast("met", **base)
    needed_b = np.array([_needed_many(b, np.array([target_e]))[0] for b in boots])
    base["reach_share"] = float(np.mean(np.isfinite(needed_b)))
    needed = _needed(fit, target_e, sizes.min())
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
