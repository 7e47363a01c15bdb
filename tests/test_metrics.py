"""The metric registry: names, directions, and values that agree with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from flywheel.metrics import METRICS, compute_metrics, metric_names


def test_every_metric_declares_direction_range_and_task() -> None:
    for m in METRICS.values():
        assert m.lower < m.upper
        assert m.tasks
        assert m.best in (m.lower, m.upper)
    # scikit-learn's naming convention: *_error / *_loss are lower-is-better.
    for name in ("log_loss", "max_error", "mae", "rmse", "brier"):
        assert not METRICS[name].greater_is_better
    assert set(metric_names("regression")).isdisjoint(metric_names("binary"))


@pytest.mark.filterwarnings("ignore::UserWarning")  # the reference warns on absent classes
@settings(max_examples=50, deadline=None)
@given(
    st.integers(2, 5).flatmap(
        lambda k: st.tuples(
            st.just(k), st.lists(st.integers(0, k - 1), min_size=20, max_size=80), st.integers(0, 2**16)
        )
    )
)
def test_label_metrics_match_sklearn(case: tuple[int, list[int], int]) -> None:
    k, y_list, seed = case
    rng = np.random.default_rng(seed)
    y = np.array(y_list)
    pred = np.where(rng.random(len(y)) < 0.6, y, rng.integers(0, k, len(y)))
    classes = np.arange(k)
    got = compute_metrics(
        ["accuracy", "balanced_accuracy", "f1_macro", "precision_weighted", "mcc"], y, pred, None, classes
    )
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["f1_macro"] == pytest.approx(
        skm.f1_score(y, pred, labels=classes, average="macro", zero_division=0)
    )
    assert got["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))


def test_score_metrics_use_the_class_order() -> None:
    y = np.array(["b", "a", "b", "a", "b"])
    proba = np.array([[0.2, 0.8], [0.7, 0.3], [0.4, 0.6], [0.6, 0.4], [0.9, 0.1]])  # columns: a, b
    classes = np.array(["a", "b"])
    got = compute_metrics(["roc_auc", "log_loss", "brier"], y, np.array(["b"] * 5), proba, classes)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y == "b", proba[:, 1]))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=classes))
    assert got["brier"] == pytest.approx(skm.brier_score_loss(y == "b", proba[:, 1]))


def test_score_metrics_are_none_without_scores() -> None:
    y = np.array([0, 1, 1])
    assert compute_metrics(["roc_auc", "accuracy"], y, y, None, np.array([0, 1])) == {
        "roc_auc": None,
        "accuracy": 1.0,
    }


def test_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y, pred = rng.normal(size=50), rng.normal(size=50)
    got = compute_metrics(["rmse", "mae", "r2"], y, pred, None, np.array([]))
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred))
