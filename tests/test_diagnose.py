"""Diagnosis: bias/variance on constructed cases, curve readings, weak classes and segments, actions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import false_discovery_control, fisher_exact
from sklearn.metrics import recall_score

from flywheel.diagnosis import (
    Action,
    Curve,
    CurvePoint,
    Finding,
    Level,
    benjamini_hochberg,
    bias_variance,
    next_actions,
    read_curve,
    weak_classes,
    weak_segments,
)
from flywheel.diagnosis._bias_variance import _BIAS_ACTIONS, _MISMATCH_ACTIONS
from flywheel.metrics import parse_metric, wilson_interval

ACCURACY = parse_metric("accuracy")
RMSE = parse_metric("rmse")


def level(value: float, n: int = 5000) -> Level:
    """An accuracy measured on ``n`` rows, with its Wilson interval."""
    low, high = wilson_interval(value * n, n)
    return Level(value, low, high)


@pytest.mark.parametrize(
    ("train", "valid", "train_dev", "human", "dominant"),
    [
        (0.80, 0.79, None, 0.98, "avoidable bias"),
        (0.99, 0.85, None, 0.985, "variance"),
        (0.90, 0.80, None, 0.99, "both"),
        (0.97, 0.85, 0.965, 0.98, "data mismatch"),
        (0.975, 0.972, None, 0.976, "near human level"),
    ],
)
def test_bias_variance_on_constructed_cases(
    train: float, valid: float, train_dev: float | None, human: float, dominant: str
) -> None:
    bv = bias_variance(
        ACCURACY,
        train=level(train),
        valid=level(valid),
        train_dev=level(train_dev) if train_dev is not None else None,
        human=level(human),
        tolerance=0.01,
    )
    assert bv.dominant == dominant, bv.summary
    bias = bv.component("avoidable bias")
    assert bias is not None and bias.value == pytest.approx(human - train)
    if train_dev is None:
        assert bv.component("variance").value == pytest.approx(train - valid)  # type: ignore[union-attr]
    else:
        assert bv.component("variance").value == pytest.approx(train - train_dev)  # type: ignore[union-attr]
        assert bv.component("data mismatch").value == pytest.approx(train_dev - valid)  # type: ignore[union-attr]
    if dominant in ("avoidable bias", "variance", "data mismatch", "both"):
        assert bv.actions
    assert list(bv.errors) == ["human", "train", *(["train_dev"] if train_dev else []), "valid"]


def test_a_gap_within_noise_is_not_acted_on() -> None:
    """50 validation rows: a 4-point gap is not significant, so nothing dominates."""
    bv = bias_variance(ACCURACY, train=level(0.96, 50), valid=level(0.92, 50), human=level(0.95, 50))
    assert bv.dominant == "near human level"
    variance = bv.component("variance")
    assert variance is not None and not variance.significant
    assert variance.low is not None and variance.low < 0 < variance.high  # type: ignore[operator]


def test_without_human_level_bias_is_bounded_not_guessed() -> None:
    bv = bias_variance(
        ACCURACY, train=level(0.80), valid=level(0.79), best_baseline=level(0.90), tolerance=0.01
    )
    assert bv.component("avoidable bias") is None
    assert bv.bias_bounds == pytest.approx((0.10, 0.20))  # the baseline proves 0.10 of it avoidable
    assert bv.dominant == "avoidable bias"
    assert any("cannot be separated" in n for n in bv.notes)
    high_variance = bias_variance(ACCURACY, train=level(0.999), valid=level(0.90), tolerance=0.01)
    assert high_variance.dominant == "variance"
    unclear = bias_variance(ACCURACY, train=level(0.90), valid=level(0.895), tolerance=0.01)
    assert unclear.dominant == "unknown"


def test_errors_of_lower_is_better_metrics() -> None:
    bv = bias_variance(
        RMSE,
        train=Level(2.0, 1.9, 2.1),
        valid=Level(5.0, 4.6, 5.4),
        human=Level(1.8, 1.7, 1.9),
        tolerance=0.05,
    )
    assert bv.component("variance").value == pytest.approx(3.0)  # type: ignore[union-attr]
    assert bv.dominant == "variance"


@settings(max_examples=50, deadline=None)
@given(st.floats(0.5, 0.99), st.floats(0.5, 0.99), st.integers(30, 3000), st.integers(30, 3000))
def test_component_intervals_hold_the_point_and_are_wider_than_each_part(
    a: float, b: float, n_a: int, n_b: int
) -> None:
    bv = bias_variance(ACCURACY, train=level(a, n_a), valid=level(b, n_b))
    var = bv.component("variance")
    assert var is not None and var.low is not None and var.high is not None
    assert var.low <= var.value <= var.high
    for part in (level(a, n_a), level(b, n_b)):
        assert var.high - var.low >= (part.high - part.low) - 1e-12  # type: ignore[operator]


def _curve(rows: list[tuple[int, float | None, float]], axis: str = "size", seeds: int = 3) -> Curve:
    rng = np.random.default_rng(0)
    points = tuple(
        CurvePoint(size, k, train, valid + (rng.normal(0, 0.002) if axis == "size" else 0.0))
        for size, train, valid in rows
        for k in range(seeds if axis == "size" else 1)
    )
    return Curve("accuracy", True, 1.0, axis, points, "m")  # type: ignore[arg-type]


def test_curve_readings() -> None:
    under = read_curve(_curve([(100, 0.62, 0.60), (200, 0.63, 0.61), (400, 0.63, 0.61)]), baseline=0.70)
    assert under[0].kind == "underfitting"
    over = read_curve(_curve([(100, 1.0, 0.80), (200, 1.0, 0.82), (400, 1.0, 0.83)]), baseline=0.70)
    kinds = {f.kind for f in over}
    assert "overfitting" in kinds and "more data pays" in kinds
    flat = read_curve(_curve([(100, 0.91, 0.90), (200, 0.905, 0.90), (400, 0.902, 0.9001)]), baseline=0.70)
    assert {f.kind for f in flat} == {"levelled off"}
    history = _curve(
        [(1, 0.80, 0.78), (2, 0.88, 0.84), (3, 0.93, 0.86), (4, 0.97, 0.83), (5, 0.99, 0.80)], "step"
    )
    stop = read_curve(history, baseline=0.70)
    assert any(f.kind == "stop early" and "step 3" in f.text for f in stop)


def test_weak_classes_match_sklearn_and_the_weak_one_comes_first() -> None:
    rng = np.random.default_rng(1)
    y = rng.choice(["a", "b", "c"], size=900)
    pred = y.copy()
    wrong = (y == "c") & (rng.random(900) < 0.4)  # class c is missed 40 % of the time
    pred[wrong] = "a"
    pred[(y != "c") & (rng.random(900) < 0.03)] = "b"
    out = weak_classes(ACCURACY, y, pred, None, ["a", "b", "c"])
    assert out[0].label == "c" and out[0].weak
    assert not any(c.weak for c in out[1:])
    sk = recall_score(y, pred, labels=["a", "b", "c"], average=None)
    for c in out:
        assert c.recall == pytest.approx(sk[["a", "b", "c"].index(c.label)], abs=1e-12)
        assert c.recall_low <= c.recall <= c.recall_high
    assert out[0].gain is not None and out[0].gain > 0.05  # raising c's recall to the others' wins >5 points


def test_benjamini_hochberg_matches_scipy() -> None:
    rng = np.random.default_rng(2)
    for _ in range(20):
        p = rng.random(int(rng.integers(1, 200))) ** 2
        assert np.allclose(benjamini_hochberg(p), false_discovery_control(p, method="bh"))


def _segment_frame(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x1": rng.random(n),
            "x2": rng.normal(size=n),
            "colour": rng.choice(["red", "green", "blue"], size=n),
            "x3": rng.integers(0, 5, size=n),
        }
    )


KINDS = {"x1": "numeric", "x2": "numeric", "colour": "categorical", "x3": "numeric"}


def test_a_planted_weak_segment_is_found() -> None:
    rng = np.random.default_rng(3)
    frame = _segment_frame(3000, rng)
    y = rng.choice(["yes", "no"], size=3000)
    p_err = np.where((frame["x1"] > 0.75) & (frame["colour"] == "red"), 0.45, 0.08)
    pred = np.where(rng.random(3000) < p_err, np.where(y == "yes", "no", "yes"), y)
    segments, searched = weak_segments(ACCURACY, frame, KINDS, y, pred, None, ["no", "yes"])
    assert segments, searched
    top = segments[0]
    assert "x1" in top.description and "colour = red" in top.description
    assert top.error > 0.3 and top.rest < 0.12 and top.q_value <= 0.1
    assert top.gain is not None and 0 < top.gain <= top.gain_if_perfect  # type: ignore[operator]
    assert searched["tested"] > 50


def test_no_weak_segment_means_few_false_discoveries() -> None:
    """Errors independent of the features: BH keeps runs with any finding rare (here ≤ 20 %)."""
    with_findings = 0
    runs = 30
    for seed in range(runs):
        rng = np.random.default_rng(100 + seed)
        frame = _segment_frame(1000, rng)
        y = rng.choice(["yes", "no"], size=1000)
        pred = np.where(rng.random(1000) < 0.15, np.where(y == "yes", "no", "yes"), y)
        segments, _ = weak_segments(ACCURACY, frame, KINDS, y, pred, None, ["no", "yes"])
        with_findings += bool(segments)
    assert with_findings / runs <= 0.2


def test_regression_segments_use_the_loss() -> None:
    rng = np.random.default_rng(4)
    frame = _segment_frame(2000, rng)
    y = rng.normal(size=2000) * 10
    noise = np.where(frame["x3"] == 4, 6.0, 1.0)
    pred = y + rng.normal(size=2000) * noise
    segments, _ = weak_segments(RMSE, frame, KINDS, y, pred)
    assert segments and "x3 = 4" in segments[0].description
    assert segments[0].gain is not None and segments[0].gain > 0


def test_too_few_rows_to_slice() -> None:
    rng = np.random.default_rng(5)
    frame = _segment_frame(40, rng)
    y = rng.choice(["a", "b"], size=40)
    segments, searched = weak_segments(ACCURACY, frame, KINDS, y, y[::-1].copy(), None, ["a", "b"])
    assert segments == [] and "too few rows" in searched["note"]


def test_actions_rank_decisions_first_then_by_gain() -> None:
    bv = bias_variance(ACCURACY, train=level(0.99), valid=level(0.85), human=level(0.985), tolerance=0.01)
    actions = next_actions(
        bv=bv,
        findings=[Finding("underfitting", "below the baselines", 0.02)],
        need_ml="no",
        best_simple="keywords",
    )
    assert actions[0].priority == 0 and "keywords" in actions[0].title
    gains = [a.gain for a in actions[1:]]
    assert gains == sorted(gains, reverse=True)  # type: ignore[type-var]
    assert actions[1].kind == "variance"
    assert isinstance(actions[1], Action) and actions[1].to_dict()["gain"] == pytest.approx(0.14, abs=1e-9)


def test_every_component_that_counts_is_named_with_its_action() -> None:
    """Bias and mismatch both large, variance small: not "both bias and variance", and mismatch is named."""
    bv = bias_variance(
        ACCURACY,
        train=level(0.88),
        train_dev=level(0.86),
        valid=level(0.78),
        human=level(0.98),
        tolerance=0.005,
    )
    assert bv.acting == ["avoidable bias", "data mismatch", "variance"]
    assert bv.dominant == "avoidable bias"
    assert "both" not in bv.summary
    assert (
        bv.summary.startswith("high avoidable bias") and "data mismatch and variance count too" in bv.summary
    )
    assert _MISMATCH_ACTIONS[0] in bv.actions and _BIAS_ACTIONS[0] == bv.actions[0]


def test_a_component_equal_to_the_margin_counts_whatever_the_rounding() -> None:
    """Errors 0.02 - 0.01 give 0.010000000000000009, 0.93 - 0.92 give 0.009999999999999898: both count."""
    for train, human in ((0.98, 0.99), (0.07, 0.08)):
        bv = bias_variance(
            ACCURACY,
            train=level(train, 10**6),
            valid=level(train, 10**6),
            human=level(human, 10**6),
            tolerance=0.01,
        )
        assert bv.acting == ["avoidable bias"], (train, human, bv.component("avoidable bias"))


def test_a_significant_component_below_the_margin_is_not_called_insignificant() -> None:
    bv = bias_variance(
        ACCURACY,
        train=level(0.975, 10**5),
        valid=level(0.972, 10**5),
        human=level(0.976, 10**5),
        tolerance=0.01,
    )
    variance = bv.component("variance")
    assert variance is not None and variance.significant
    assert bv.dominant == "near human level" and bv.acting == []
    assert "no component is significantly above zero" not in bv.summary
    assert "variance is above zero but below the margin 0.01" in bv.summary


def test_the_curve_reads_no_overfitting_when_the_variance_interval_includes_zero() -> None:
    """The curve and the bias/variance split read the same evidence: a gap within noise is no overfitting."""
    curve = _curve([(100, 1.0, 0.80), (200, 1.0, 0.82), (400, 1.0, 0.83)])
    assert "overfitting" in [f.kind for f in read_curve(curve, baseline=0.70)]
    assert "overfitting" in [f.kind for f in read_curve(curve, baseline=0.70, variance=(0.12, 0.22))]
    assert "overfitting" not in [f.kind for f in read_curve(curve, baseline=0.70, variance=(-0.01, 0.35))]


def test_one_miss_in_ten_is_not_a_weak_class() -> None:
    """Iris: 9/10 recall for one class beside perfect others is no evidence of a weak class."""
    y = np.array(["setosa"] * 10 + ["versicolor"] * 10 + ["virginica"] * 10)
    pred = y.copy()
    pred[0] = "versicolor"
    out = weak_classes(ACCURACY, y, pred, None, ["setosa", "versicolor", "virginica"])
    setosa = next(c for c in out if c.label == "setosa")
    assert setosa.recall == pytest.approx(0.9) and not setosa.weak
    assert setosa.gain == 0.0  # nothing claimed for a difference within noise
    table = [[1, 9], [0, 20]]
    assert setosa.p_value == pytest.approx(fisher_exact(table, alternative="greater").pvalue)


def test_a_weak_class_claims_only_the_gain_its_interval_supports() -> None:
    """The gain lifts the class's recall to the rest's from the top of its interval, not its point."""
    rng = np.random.default_rng(1)
    y = rng.choice(["a", "b", "c"], size=900)
    pred = y.copy()
    pred[(y == "c") & (rng.random(900) < 0.4)] = "a"
    weak = next(c for c in weak_classes(ACCURACY, y, pred, None, ["a", "b", "c"]) if c.label == "c")
    point_lift = (1.0 - weak.recall) * weak.support / len(y)  # what lifting the point to 1.0 would claim
    assert weak.weak and weak.q_value is not None and weak.q_value <= 0.1
    assert weak.gain is not None and 0 < weak.gain < point_lift
    assert weak.gain == pytest.approx(np.floor((1.0 - weak.recall_high) * weak.support) / len(y))
