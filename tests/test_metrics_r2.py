"""R² over many rows: the binned bootstrap of its squared errors and targets (``flywheel.metrics._r2``).

Past ``max_rows`` rows, ``score`` bootstraps R² over bins of the rows. Its intervals must agree
with ``scipy.stats.bootstrap`` on the same rows, heavy-tailed errors and targets included; the
resampled sums of ``(e², d, d²)`` must have the bootstrap's own expectation and covariance;
coverage of the population R² must be the nominal one; and the out-of-core scorer, merging its
statistics batch by batch (and partition by partition, from other shifts), must make the same
bins and give the same estimate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import r2_score

from flywheel.metrics import score, score_batches
from flywheel.metrics._r2 import R2Stats, r2_bins

NOISE = {
    "normal": lambda rng, n: rng.normal(size=n),
    "exponential": lambda rng, n: rng.exponential(size=n) - 1,
    "lognormal": lambda rng, n: rng.lognormal(0.0, 1.0, n),
    "student_t3": lambda rng, n: rng.standard_t(3, n),
}
TARGETS = {
    "normal": lambda rng, n: rng.normal(size=n),
    "lognormal": lambda rng, n: rng.lognormal(0.0, 1.0, n),  # a heavy right tail: SS_tot's skew
    "offset": lambda rng, n: 1_000 + rng.standard_t(3, n),  # spread small next to the magnitude
}


def _data(seed: int, target: str, noise: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = TARGETS[target](rng, n)
    return y, y + 0.5 * NOISE[noise](rng, n)


def _r2(y: np.ndarray, pred: np.ndarray, axis: int = -1) -> np.ndarray:
    """R² from its definition, along ``axis`` (scipy's resamples)."""
    residual = np.sum((y - pred) ** 2, axis=axis)
    total = np.sum((y - np.mean(y, axis=axis, keepdims=True)) ** 2, axis=axis)
    return np.asarray(1 - residual / total)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**16),
    st.sampled_from(sorted(TARGETS)),
    st.sampled_from(sorted(NOISE)),
    st.integers(2_000, 4_000),
)
def test_binned_r2_agrees_with_scipy_bootstrap(seed: int, target: str, noise: str, n: int) -> None:
    y, pred = _data(seed, target, noise, n)
    est = score(y, pred, metrics=["r2"], n_resamples=6000, max_rows=1_000, seed=seed)["r2"]
    assert est.note is not None and "binned bootstrap of R²" in est.note
    assert est.value == pytest.approx(r2_score(y, pred), rel=1e-12, abs=1e-12)
    res = stats.bootstrap(
        (y, pred),
        _r2,
        paired=True,
        vectorized=True,
        n_resamples=6000,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = res.confidence_interval.low, res.confidence_interval.high
    # Monte Carlo error of a 2.5% quantile of 6,000 resamples, both sides: under 0.1 standard error.
    tolerance = 0.3 * (high - low) / 3.92
    assert est.low == pytest.approx(low, abs=tolerance)
    assert est.high == pytest.approx(high, abs=tolerance)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**16),
    st.sampled_from(sorted(TARGETS)),
    st.sampled_from(sorted(NOISE)),
    st.integers(500, 20_000),
)
def test_resampled_sums_have_the_bootstrap_mean_and_covariance(
    seed: int, target: str, noise: str, n: int
) -> None:
    """Exact in expectation and covariance given the data (the law of total covariance), whatever the bins."""
    y, pred = _data(seed, target, noise, n)
    d = y - y.mean()
    rows = np.stack([(y - pred) ** 2, d, d * d])
    bins = r2_bins(y, pred)
    assert bins.counts.sum() == n
    assert np.allclose(bins.sums.sum(axis=0), rows.sum(axis=1), rtol=1e-9, atol=1e-9 * np.abs(rows).sum())
    b = 20_000
    sums = bins.resampled_sums(b, np.random.default_rng(seed))
    covariance = n * np.cov(rows, bias=True)  # the bootstrap covariance of sums of n rows
    sd = np.sqrt(np.diag(covariance))
    assert np.all(np.abs(sums.mean(axis=1) - rows.sum(axis=1)) <= 5 * sd / np.sqrt(b) + 1e-9 * sd)
    # The sample covariance of 20,000 draws: within a few percent of the true one (heavy tails: more).
    drawn = np.cov(sums, bias=True)
    assert np.allclose(np.diag(drawn), np.diag(covariance), rtol=0.1)
    assert np.all(np.abs(drawn - covariance) <= 0.1 * np.outer(sd, sd))


@pytest.mark.parametrize("noise", ["normal", "exponential"])
def test_binned_r2_interval_covers_the_population_value(noise: str) -> None:
    """Errors of variance 0.25 on a target of variance 1: the population R² is 0.75."""
    rng = np.random.default_rng(17)
    covered, sims = 0, 1000
    for i in range(sims):
        y = rng.normal(size=2_000)
        pred = y + 0.5 * NOISE[noise](rng, 2_000)
        est = score(y, pred, metrics=["r2"], n_resamples=400, seed=i, max_rows=500)["r2"]
        assert est.note is not None and "binned" in est.note
        covered += est.low <= 0.75 <= est.high  # type: ignore[operator]
    assert 0.93 <= covered / sims <= 0.97


def _stats_of(y: np.ndarray, pred: np.ndarray, sizes: list[int]) -> R2Stats:
    """Each batch its own statistics, merged in order, as Dask partitions are (each its own shift)."""
    parts, start = [], 0
    for size in sizes:
        part = R2Stats()
        part.add(y[start : start + size], y[start : start + size] - pred[start : start + size])
        parts.append(part)
        start += size
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    return merged


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**16),
    st.sampled_from(sorted(TARGETS)),
    st.sampled_from(sorted(NOISE)),
    st.lists(st.integers(1, 3_000), min_size=1, max_size=6),
)
def test_merged_statistics_make_the_bins_of_all_rows(
    seed: int, target: str, noise: str, sizes: list[int]
) -> None:
    y, pred = _data(seed, target, noise, sum(sizes))
    whole = r2_bins(y, pred)
    streamed = _stats_of(y, pred, sizes).bins()
    assert np.array_equal(streamed.counts, whole.counts)
    d = y - y.mean()
    scale = np.abs(np.stack([(y - pred) ** 2, d, d * d])).sum(axis=1)  # each sum's own size
    assert np.all(np.abs(streamed.sums - whole.sums) <= 1e-9 * scale)
    assert np.all(np.abs(streamed.totals - whole.totals) <= 1e-9 * scale)
    atol = 1e-12 * np.abs(whole.comoments).max()
    assert np.allclose(streamed.comoments, whole.comoments, rtol=1e-9, atol=atol)


@settings(max_examples=15, deadline=None)
@given(
    st.integers(0, 2**16),
    st.sampled_from(sorted(TARGETS)),
    st.sampled_from(sorted(NOISE)),
    st.integers(500, 4_000),
)
def test_score_batches_equals_score(seed: int, target: str, noise: str, batch: int) -> None:
    """Past the rows the out-of-core scorer keeps (8,192), the same bins, so the same estimate."""
    n = 10_000
    y, pred = _data(seed, target, noise, n)
    options: dict[str, Any] = {"n_resamples": 300, "seed": seed, "max_rows": 1_000}
    expected = score(y, pred, metrics=["r2"], **options)["r2"]
    batches = [(y[i : i + batch], pred[i : i + batch]) for i in range(0, n, batch)]
    got = score_batches(batches, ["r2"], **options)["r2"]
    assert (got.method, got.note, got.n) == (expected.method, expected.note, expected.n)
    for part in ("value", "low", "high"):
        u, v = getattr(expected, part), getattr(got, part)
        assert abs(u - v) <= 1e-12 * max(1.0, abs(u)), part


def test_a_heavy_tailed_target_gets_bins_of_its_own() -> None:
    """Rows far from ȳ with small errors are binned apart from the bulk, by their side and octave."""
    y, pred = _data(5, "lognormal", "normal", 50_000)
    bins = r2_bins(y, pred)
    means = bins.sums / bins.counts[:, None]
    target_tail = means[1:, 2] > 10 * bins.totals[2] / len(y)  # d² far above its mean
    assert target_tail.any() and bins.counts[0] > 0.9 * len(y)


def test_a_constant_target_scores_as_scikit_learn_does() -> None:
    rng = np.random.default_rng(8)
    y, pred = np.full(5_000, 2.0), 2.0 + rng.normal(size=5_000)
    est = score(y, pred, metrics=["r2"], max_rows=1_000)["r2"]
    assert est.value == r2_score(y, pred) == 0.0
    assert est.low == est.high == 0.0 and est.note is not None and "no resample changed" in est.note


def test_few_distinct_pairs_are_still_resampled_exactly() -> None:
    """Past ``max_rows``, few distinct (target, error) pairs keep the exact cell resampling (and BCa)."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 10, 5_000).astype(float)
    pred = y + rng.integers(-3, 4, 5_000)
    est = score(y, pred, metrics=["r2"], max_rows=1_000)["r2"]
    assert est.note is None and est.method == "bca"
