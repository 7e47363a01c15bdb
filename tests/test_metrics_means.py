"""Per-row metrics over many rows: means by the binned bootstrap, the median by its exact one.

Past ``max_rows`` rows, ``score`` bootstraps log loss, Brier, MAE, MSE, RMSE, MAPE and pinball
over bins of their per-row values (``flywheel.metrics._means``), and reads the median absolute
error's interval off its exact bootstrap distribution (``flywheel.metrics._median``). Their
intervals must agree with ``scipy.stats.bootstrap`` on the same values; the binned means must
have the bootstrap's own expectation and variance; coverage must be the nominal one; and the
out-of-core scorer's bins, merged batch by batch, must be the same bins.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from flywheel.metrics import METRICS, parse_metric, score
from flywheel.metrics._means import MeanStats, is_mean, mean_bins
from flywheel.metrics._statistics import Prepared, row_keys

NOISE = {
    "normal": lambda rng, n: rng.normal(size=n),
    "exponential": lambda rng, n: rng.exponential(size=n),
    "lognormal": lambda rng, n: rng.lognormal(0.0, 1.0, n),
    "student_t3": lambda rng, n: rng.standard_t(3, n),
}


def _regression(seed: int, kind: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    return y, y + NOISE[kind](rng, n)


def _rows(name: str, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """The per-row values each metric is the mean of, written out from their definitions."""
    err = y - pred
    if name == "mae":
        return np.abs(err)
    if name in ("mse", "rmse"):
        return err**2
    return np.maximum(0.8 * err, -0.2 * err)  # pinball at q = 0.8


def _scipy_interval(rows: np.ndarray, root: bool, seed: int) -> tuple[float, float]:
    def statistic(a: np.ndarray, axis: int) -> np.ndarray:
        mean = np.mean(a, axis=axis)
        return np.sqrt(mean) if root else mean

    res = stats.bootstrap(
        (rows,),
        statistic,
        vectorized=True,
        n_resamples=6000,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return res.confidence_interval.low, res.confidence_interval.high


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from(sorted(NOISE)), st.integers(2_000, 4_000))
def test_binned_intervals_agree_with_scipy_bootstrap(seed: int, kind: str, n: int) -> None:
    y, pred = _regression(seed, kind, n)
    names = ["mae", "mse", "rmse", "pinball[q=0.8]"]
    ours = score(y, pred, metrics=names, n_resamples=6000, max_rows=1_000, seed=seed)
    for name in names:
        est = ours[name]
        assert est.note is not None and "binned bootstrap of the mean" in est.note, name
        low, high = _scipy_interval(_rows(name.partition("[")[0], y, pred), name == "rmse", seed)
        # Monte Carlo error of a 2.5% quantile of 6,000 resamples, both sides: under 0.1 standard error.
        tolerance = 0.3 * (high - low) / 3.92
        assert est.low == pytest.approx(low, abs=tolerance), name
        assert est.high == pytest.approx(high, abs=tolerance), name


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**16), st.integers(2_000, 4_000))
def test_binned_log_loss_and_brier_agree_with_scipy_bootstrap(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-(1.2 * (2 * y - 1) + 1.5 * rng.normal(size=n))))
    ours = score(y, None, p, ["log_loss", "brier"], n_resamples=6000, max_rows=1_000, seed=seed)
    chosen = np.where(y == 1, p, 1 - p)
    for name, rows in (("log_loss", -np.log(chosen)), ("brier", (p - y) ** 2)):
        low, high = _scipy_interval(rows, False, seed)
        tolerance = 0.3 * (high - low) / 3.92
        assert ours[name].low == pytest.approx(low, abs=tolerance), name
        assert ours[name].high == pytest.approx(high, abs=tolerance), name


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from(sorted(NOISE)), st.integers(500, 20_000))
def test_binned_draws_have_the_bootstrap_mean_and_variance(seed: int, kind: str, n: int) -> None:
    """Exact in expectation and variance given the data (the law of total variance), whatever the bins."""
    y, pred = _regression(seed, kind, n)
    rows = _rows("mse", y, pred)
    bins = mean_bins(rows.copy())
    assert bins.counts.sum() == n and bins.sums.sum() == pytest.approx(rows.sum(), rel=1e-12)
    assert bins.squares == pytest.approx(np.sum((rows - rows.mean()) ** 2), rel=1e-9)
    b = 20_000
    draws = bins.draws(b, np.random.default_rng(seed), root=False)
    variance = rows.var() / n  # the bootstrap variance of a mean of n rows
    assert draws.mean() == pytest.approx(rows.mean(), abs=5 * np.sqrt(variance / b))
    # The sample variance of 20,000 draws is within a few percent of the true one (heavy tails: more).
    assert draws.var() == pytest.approx(variance, rel=0.1)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**16),
    st.sampled_from(sorted(NOISE)),
    st.lists(st.integers(1, 3_000), min_size=1, max_size=6),
)
def test_streamed_bins_equal_the_bins_of_all_rows(seed: int, kind: str, sizes: list[int]) -> None:
    y, pred = _regression(seed, kind, sum(sizes))
    rows = _rows("mae", y, pred)
    whole = mean_bins(rows.copy())
    parts, start = [], 0
    for size in sizes:  # each batch its own stats, merged in order, as Dask partitions are
        part = MeanStats()
        part.add(rows[start : start + size])
        parts.append(part)
        start += size
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    streamed = merged.bins(float(rows.sum()))
    assert np.array_equal(streamed.counts, whole.counts)
    assert np.allclose(streamed.sums, whole.sums, rtol=1e-12, atol=1e-9)
    assert streamed.squares == pytest.approx(whole.squares, rel=1e-10)


def test_binned_interval_covers_the_population_value() -> None:
    rng = np.random.default_rng(13)
    truth = {"mae": np.sqrt(2 / np.pi), "rmse": 1.0}  # E|e| and sqrt(E e²) for standard normal errors
    covered = dict.fromkeys(truth, 0)
    sims = 1000
    for i in range(sims):
        y = rng.normal(size=2_000)
        est = score(y, y + rng.normal(size=2_000), metrics=list(truth), n_resamples=400, seed=i, max_rows=500)
        for name, value in truth.items():
            assert est[name].note is not None and "binned" in est[name].note
            covered[name] += est[name].low <= value <= est[name].high  # type: ignore[operator]
    for name, count in covered.items():
        assert 0.93 <= count / sims <= 0.97, name


def test_few_distinct_values_are_still_resampled_exactly() -> None:
    """Past ``max_rows``, values with few distinct values keep the exact cell resampling (and BCa)."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 10, 5_000).astype(float)
    pred = y + rng.integers(-3, 4, 5_000)
    est = score(y, pred, metrics=["mae"], max_rows=1_000)["mae"]
    assert est.note is None and est.method == "bca"


def test_a_sample_with_few_distinct_values_does_not_hide_many() -> None:
    """The probe looks at a spread sample of the values; values it does not see still count."""
    n = 100_000
    err = np.random.default_rng(4).normal(size=n)
    err[:: n // 8192] = 1.0  # every value the probe looks at is the same
    est = score(np.zeros(n), err, metrics=["mae"], max_rows=1_000)["mae"]
    assert est.note is not None and "binned bootstrap of the mean" in est.note


def test_the_means_are_the_metrics_whose_value_is_a_mean_of_rows() -> None:
    probe = Prepared("regression", 2, None, np.array([1.0, 2.0]), np.array([1.5, 2.5]))
    k = 3
    classes = Prepared(
        "classification",
        2,
        np.arange(k),
        np.array([0, 2]),
        np.array([0, 1]),
        np.full((2, k), 1 / k),
    )
    for name, metric in METRICS.items():
        if metric.family not in ("proba", "regression"):
            assert not is_mean(parse_metric(name)), name
            continue
        ref = parse_metric(name)
        _, make_fn = row_keys(ref, probe if metric.family == "regression" else classes)
        assert is_mean(ref) == (make_fn.__name__ in ("_mean", "_root_mean")), name


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from(sorted(NOISE)), st.integers(2_000, 4_000))
def test_exact_median_interval_agrees_with_scipy_bootstrap(seed: int, kind: str, n: int) -> None:
    y, pred = _regression(seed, kind, n)
    est = score(y, pred, metrics=["median_ae"], max_rows=1_000)["median_ae"]
    assert est.note is not None and "exact bootstrap distribution of the median" in est.note
    res = stats.bootstrap(
        (np.abs(y - pred),),
        np.median,
        vectorized=True,
        n_resamples=6000,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = res.confidence_interval.low, res.confidence_interval.high
    tolerance = 0.3 * (high - low) / 3.92
    assert est.low == pytest.approx(low, abs=tolerance) and est.high == pytest.approx(high, abs=tolerance)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_median_interval_is_the_limit_of_resampling(seed: int) -> None:
    """The same order statistics as the quantiles of 200,000 resampled medians (give or take one)."""
    rng = np.random.default_rng(seed)
    n = 301
    values = rng.exponential(size=n)
    est = score(np.zeros(n), values, metrics=["median_ae"], max_rows=100)["median_ae"]
    draws = (rng.integers(0, n, (10_000, n)) for _ in range(20))  # 200,000 resamples, 10,000 at a time
    medians = np.concatenate([np.median(values[rows], axis=1) for rows in draws])
    low, high = np.percentile(medians, [2.5, 97.5], method="inverted_cdf")
    ordered = np.sort(values)
    for ours, theirs in ((est.low, low), (est.high, high)):
        assert abs(int(np.searchsorted(ordered, ours)) - int(np.searchsorted(ordered, theirs))) <= 1


def test_exact_median_interval_covers_the_population_value() -> None:
    truth = stats.norm.ppf(0.75)  # the median of |e| for standard normal errors
    rng = np.random.default_rng(21)
    sims = 1000
    covered = 0
    for _ in range(sims):
        est = score(np.zeros(2_001), rng.normal(size=2_001), metrics=["median_ae"], max_rows=500)["median_ae"]
        covered += est.low <= truth <= est.high  # type: ignore[operator]
    assert 0.93 <= covered / sims <= 0.97
