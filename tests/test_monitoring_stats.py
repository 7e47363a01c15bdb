"""The monitor's statistics, checked against SciPy and by simulation.

- the Kolmogorov–Smirnov statistic on the training split's quantile bins is never above the
  exact one (``scipy.stats.ks_2samp``) and within one bin's mass of it;
- the confidence-based estimate of accuracy covers the accuracy that labels drawn from calibrated
  probabilities give, about as often as its interval says;
- the latency percentile's interval covers the true percentile;
- outcome effects are called moved, unmoved or undecided as their intervals say.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from flywheel.monitoring._drift import benjamini_hochberg, psi, two_sample
from flywheel.monitoring._quality import estimated_quality, expected_on, latency_percentile, outcome_effect
from flywheel.monitoring._reference import bin_codes, make_binning
from flywheel.monitoring._state import latency_bins


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(200, 3000),
    m=st.integers(50, 3000),
    shift=st.floats(-1.0, 1.0),
    scale=st.floats(0.5, 2.0),
    seed=st.integers(0, 10_000),
)
def test_binned_ks_is_within_one_bin_of_scipy_and_never_above(
    n: int, m: int, shift: float, scale: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    train = rng.normal(size=n)
    logged = rng.normal(shift, scale, size=m)
    binning = make_binning("x", "numeric", pd.Series(train))
    drift = two_sample(binning, bin_codes(binning, train.tolist()), bin_codes(binning, logged.tolist()))
    exact = stats.ks_2samp(train, logged).statistic
    assert drift.statistic <= exact + 1e-9
    assert exact - drift.statistic <= 0.02 + 2 / n  # one bin's mass of the training split, and ties


def test_a_categorical_shift_is_found_by_chi_square_and_none_when_alike() -> None:
    rng = np.random.default_rng(0)
    train = rng.choice(["a", "b", "c"], 5000, p=[0.5, 0.3, 0.2])
    alike = rng.choice(["a", "b", "c"], 2000, p=[0.5, 0.3, 0.2])
    moved = rng.choice(["a", "b", "c", "new"], 2000, p=[0.2, 0.3, 0.2, 0.3])
    binning = make_binning("c", "categorical", pd.Series(train))
    ref = bin_codes(binning, train.tolist())
    same = two_sample(binning, ref, bin_codes(binning, alike.tolist()))
    other = two_sample(binning, ref, bin_codes(binning, moved.tolist()))
    assert same.p_value > 0.001 and same.psi < 0.01
    assert other.p_value < 1e-10 and other.psi > 0.25
    assert any(b["bin"] == "unseen in training" for b in other.moved)


def test_benjamini_hochberg_matches_the_textbook_step_up() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(size=30) ** 3
    q = np.asarray(benjamini_hochberg(p.tolist()))
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    expected = np.minimum.accumulate(ranked[::-1])[::-1]
    assert np.allclose(q[order], np.minimum(expected, 1))


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    base = np.array([100, 100, 100, 100])
    assert psi(base, base * 3) == 0
    assert psi(base, np.array([130, 100, 100, 70])) < psi(base, np.array([200, 100, 90, 10]))


def test_the_estimate_without_labels_covers_accuracy_as_its_interval_says() -> None:
    rng = np.random.default_rng(2)
    k, n, hits, trials = 3, 400, 0, 200
    classes = [0, 1, 2]
    for _ in range(trials):
        proba = rng.dirichlet(np.ones(k) * 0.7, size=n)
        pred = proba.argmax(axis=1)
        truth = (rng.random(n)[:, None] > np.cumsum(proba, axis=1)).sum(axis=1)  # drawn from proba
        est = estimated_quality(
            expected_on(proba, pred, k), "accuracy", classes, seed=int(rng.integers(1 << 30))
        )
        assert est is not None
        hits += est["low"] <= float(np.mean(truth == pred)) <= est["high"]
    assert 0.90 <= hits / trials <= 0.99, hits / trials


def test_the_estimate_without_labels_equals_the_mean_top_probability_for_accuracy() -> None:
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.ones(4), size=1000)
    pred = proba.argmax(axis=1)
    est = estimated_quality(expected_on(proba, pred, 4), "accuracy", [0, 1, 2, 3])
    assert est is not None and abs(est["value"] - proba.max(axis=1).mean()) < 1e-12
    macro = estimated_quality(expected_on(proba, pred, 4), "f1_macro", [0, 1, 2, 3])
    assert macro is not None and macro["low"] <= macro["value"] <= macro["high"]
    assert estimated_quality(expected_on(proba, pred, 4), "roc_auc", [0, 1, 2, 3]) is None


def test_the_latency_percentile_interval_covers_the_true_one() -> None:
    rng = np.random.default_rng(4)
    truth = float(stats.lognorm(1.0, scale=5).ppf(0.95))
    hits = 0
    for _ in range(100):
        sample = stats.lognorm(1.0, scale=5).rvs(size=500, random_state=rng)
        p = latency_percentile(latency_bins(sample), 95)
        assert p is not None and p["low"] is not None and p["high"] is not None
        hits += p["low"] / 1.13 <= truth <= p["high"]  # each bound is its bin's upper edge (12 % bins)
    assert hits >= 90


def test_outcome_effects_are_moved_unmoved_or_undecided_as_their_intervals_say() -> None:
    rng = np.random.default_rng(5)
    right = rng.random(20_000) < 0.8
    assert (
        outcome_effect(right.tolist(), (rng.random(20_000) < np.where(right, 0.2, 0.5)).tolist(), 20)[
            "status"
        ]
        == "moves"
    )
    assert (
        outcome_effect(right.tolist(), (rng.random(20_000) < 0.3).astype(float).tolist(), 20)["status"]
        == "unmoved"
    )
    small = rng.random(60) < 0.5
    assert outcome_effect(small.tolist(), (rng.random(60) < 0.3).tolist(), 20)["status"] == "undecided"
    assert outcome_effect([True] * 50 + [False] * 5, [1.0] * 55, 20)["status"] == "too few rows"
