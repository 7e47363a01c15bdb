"""``compare``: model A against model B on the same rows, every resample shared, with a verdict.

The verdict is read off the interval of A's improvement over B against a
margin; when it is inconclusive the comparison also says the minimum
detectable effect and about how many more labelled rows would decide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.special import ndtri

from flywheel.metrics._bootstrap import (
    DEFAULT_MAX_ROWS,
    MULTINOMIAL_CELLS,
    bootstrap_interval,
    interval_note,
    jackknife_accelerations,
    resampled,
)
from flywheel.metrics._cells import Cells, joint_cells
from flywheel.metrics._inputs import prepare
from flywheel.metrics._registry import METRICS, MetricRef, parse_metric
from flywheel.metrics._statistics import Prepared, build_cells

__all__ = [
    "Comparison",
    "ComparisonVerdict",
    "MAX_ROWS_FACTOR",
    "compare",
    "rows_to_decide",
]

ComparisonVerdict = Literal["better", "worse", "inconclusive"]


@dataclass(frozen=True)
class Comparison:
    """Model A against model B on the same rows, for one metric.

    ``difference`` is A - B in the metric's units; ``improvement`` is the same
    difference oriented so that positive means A is better (it is B - A for a
    lower-is-better metric). ``low``/``high`` bound the improvement; ``margin``
    is in improvement units: positive asks for superiority by at least that much,
    negative for non-inferiority within that much.
    """

    metric: str
    a: float
    b: float
    difference: float
    improvement: float
    low: float
    high: float
    p_value: float
    margin: float
    verdict: ComparisonVerdict
    n: int
    confidence: float
    method: str
    min_detectable_effect: float | None  # None when the two models agree on every resample
    more_rows_needed: int | None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


_Z_POWER = ndtri(0.8)
MAX_ROWS_FACTOR = 100  # rows-to-decide past this many times the rows in hand are not printed as counts


def compare(
    y_true: Any,
    a: Any,
    b: Any,
    metric: str,
    margin: float = 0.0,
    *,
    classes: Any = None,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> Comparison:
    """Compare model A with model B on the same rows, sharing every resample.

    ``a`` and ``b`` are predicted labels or values, or class scores when the
    metric needs scores. The verdict is ``better`` when the interval of A's
    improvement over B lies above ``margin``, ``worse`` when it lies below,
    else ``inconclusive`` (with the minimum detectable effect at this n and
    about how many more labelled rows would decide).

    Examples
    --------
    >>> y = [0, 1] * 50
    >>> c = compare(y, y, [0] * 100, "accuracy", n_resamples=200)
    >>> c.verdict, c.improvement
    ('better', 0.5)
    """
    ref = _metric_ref(metric)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence}")
    pa, pb = _prepare_pair(y_true, a, b, ref, metric, classes)
    sign = 1.0 if ref.greater_is_better else -1.0
    ca, cb = build_cells(ref, pa), build_cells(ref, pb)
    va, vb = ca.value(), cb.value()
    improvement = sign * (va - vb)
    draws, accel, label = _paired_draws(ref, pa, pb, (ca, cb), sign, improvement, n_resamples, seed, max_rows)
    low, high, used = bootstrap_interval(improvement, draws, confidence, accel)
    if low is None or high is None:
        raise ValueError(f"{metric} is undefined on these rows for one of the models; cannot compare")
    finite = draws[np.isfinite(draws)]
    p_value = float((np.sum(finite <= margin) + 1) / (len(finite) + 1))
    verdict: ComparisonVerdict = "better" if low > margin else "worse" if high < margin else "inconclusive"
    n = pa.n
    mde, more = _detectable(finite, n, confidence, abs(improvement - margin), verdict)
    return Comparison(
        metric,
        va,
        vb,
        va - vb,
        improvement,
        low,
        high,
        p_value,
        margin,
        verdict,
        n,
        confidence,
        used,
        mde,
        more,
        interval_note(n, low, high, label)
        if mde is not None
        else "the two models score the same on every resample: no number of rows would tell them apart",
    )


def _metric_ref(metric: str) -> MetricRef:
    """The metric to compare on; only registered names (bracket parameters included)."""
    ref = parse_metric(metric) if metric in METRICS or "[" in metric else None
    if ref is None:
        raise ValueError(f"metric: unknown metric {metric!r}; allowed: {', '.join(sorted(METRICS))}")
    return ref


def _prepare_pair(
    y_true: Any, a: Any, b: Any, ref: MetricRef, metric: str, classes: Any
) -> tuple[Prepared, Prepared]:
    """Both models' predictions checked against the same truth; B gets A's classes."""
    needs_scores = ref.metric.needs == "scores"
    pa, _ = prepare(y_true, None if needs_scores else a, a if needs_scores else None, [metric], classes)
    pb, _ = prepare(
        y_true,
        None if needs_scores else b,
        b if needs_scores else None,
        [metric],
        pa.classes if pa.classes is not None else None,
    )
    return pa, pb


def _paired_draws(
    ref: MetricRef,
    pa: Prepared,
    pb: Prepared,
    cells: tuple[Cells, Cells],
    sign: float,
    improvement: float,
    n_resamples: int,
    seed: int,
    max_rows: int,
) -> tuple[np.ndarray, float | None, str | None]:
    """Resampled improvements (both models on the same resampled rows), BCa's acceleration, and a note.

    Over many cells and more than ``max_rows`` rows, a subsample of ``max_rows``
    rows is resampled and its deviations shrunk (the m-out-of-n bootstrap).
    """
    ca, cb = cells

    def combine(values: list[np.ndarray]) -> np.ndarray:
        return sign * (values[0] - values[1])

    rng = np.random.default_rng(seed)
    n = pa.n
    if n > max_rows and ca.n_cells + cb.n_cells > MULTINOMIAL_CELLS:
        rows = np.sort(rng.choice(n, size=max_rows, replace=False))
        sa, sb = build_cells(ref, pa.take(rows)), build_cells(ref, pb.take(rows))
        joint = joint_cells([sa, sb], combine)
        center, scale = sign * (sa.value() - sb.value()), math.sqrt(max_rows / n)
        label: str | None = f"m-out-of-n bootstrap on {max_rows} of {n} rows"
    else:
        joint = joint_cells([ca, cb], combine)
        center, scale, label = improvement, 1.0, None
    draws = improvement + scale * (resampled([joint], n_resamples, rng)[0] - center)
    accel = jackknife_accelerations([joint])[0] if scale == 1.0 else None
    return draws, accel, label


def rows_to_decide(comparison: Mapping[str, Any], what: str = "labelled") -> str:
    """How many more rows would decide an inconclusive comparison, said plainly ("" when none would).

    Beyond :data:`MAX_ROWS_FACTOR` times the rows compared the figure is an extrapolation too far
    to print as a count: it is said as such.

    >>> rows_to_decide({"more_rows_needed": 1_434_804, "n": 944})
    'more than 100× the 944 rows compared would be needed to decide'
    >>> rows_to_decide({"more_rows_needed": 500, "n": 944}, "test")
    'about 500 more test rows would decide'
    """
    more, n = comparison.get("more_rows_needed"), comparison.get("n") or 0
    if not more:
        return ""
    if more > MAX_ROWS_FACTOR * n:
        return f"more than {MAX_ROWS_FACTOR}× the {n:,} rows compared would be needed to decide"
    return f"about {more:,} more {what} rows would decide"


def _detectable(
    finite: np.ndarray, n: int, confidence: float, gap: float, verdict: ComparisonVerdict
) -> tuple[float | None, int | None]:
    """The minimum detectable effect at this n (80% power), and about how many more rows would decide.

    Both are None when every resampled difference is the same (two models that agree on every
    row): no effect is detectable and no number of rows would decide.
    """
    se = float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0
    if se == 0:
        return None, None
    z = ndtri(1 - (1 - confidence) / 2)
    mde = float((z + _Z_POWER) * se)
    more: int | None = None
    if verdict == "inconclusive" and gap > 0 and se > 0:
        more = max(0, math.ceil(n * (z * se / gap) ** 2) - n)
    return mde, more
