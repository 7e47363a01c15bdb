"""Learning-curve families, fitting them, and choosing the one that extrapolates best.

Parametric curve families are fitted to a learning curve in *error space* (the
distance to the metric's perfect score, which falls as data grows), and one of them
is chosen by how well it *extrapolates* — fitted on the smaller sizes, judged on
the larger measured ones, which is the use a forecast makes of it
(:mod:`flywheel.diagnosis._forecast` inverts the chosen one).

The families are the ones the Learning Curve Database study (Mohr et al., 2022)
compared; ``mmf4`` and ``wbl4`` extrapolated best there, ``pow3`` (an inverse
power law with an asymptote) is the classic. Each is written as a decreasing
error curve with an asymptote ``c >= 0``.

Written by hand rather than with a library: no maintained package fits these
families with extrapolation-based selection and inverts them with an interval.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares

__all__ = ["CurveFamily", "CurveFit", "FAMILIES", "degenerate", "fit_curve", "holdout", "select_family"]

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


def degenerate(fit: CurveFit) -> str | None:
    """Why a fit is no honest description of its curve, or ``None`` when it is one.

    A shape parameter at the end of its range means the optimiser wanted to go further: the family
    cannot bend the way the points do. An asymptote pinned at zero error (the perfect score with
    enough data) in a family that has one is the same family without it, fitted with a constraint
    doing the work; ``pow2`` is that hypothesis stated honestly. A flat fit (``a = 0``) has no
    shape to be degenerate in.
    """
    fam = FAMILIES[fit.family]
    if fit.a <= 0:
        return None
    for i, (value, grid) in enumerate(zip(fit.theta, fam.grids, strict=True)):
        low, high = float(grid.min()), float(grid.max())
        if low == 0.0 and value == 0.0:  # pow4 with d = 0 is pow3: allowed
            continue
        if abs(value - low) <= 1e-6 * max(abs(low), 1e-12):
            return f"shape parameter {i + 1} at the lower end of its range"
        if abs(value - high) <= 1e-6 * abs(high):
            return f"shape parameter {i + 1} at the upper end of its range"
    has_c = fam.basis(np.ones(2), np.array([g[0] for g in fam.grids]))[1] is not None
    if has_c and fit.c <= 1e-4 * fit.a:  # zero up to the optimiser's tolerance
        return "asymptote pinned at the perfect score"
    return None


def holdout(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sizes a family is fitted on and the larger ones its extrapolation is judged on.

    The largest third of the distinct sizes (at least one) is held out.
    """
    uniq = np.unique(sizes)
    held = max(1, len(uniq) // 3)
    return uniq[:-held], uniq[-held:]


def _extrapolation_errors(
    sizes: np.ndarray, errors: np.ndarray, families: Sequence[str]
) -> dict[str, float | None]:
    """Each family fitted on the smaller sizes, judged by its squared error on the larger ones."""
    anchor, held_sizes = holdout(sizes)
    held = len(held_sizes)
    uniq = np.unique(sizes)
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
