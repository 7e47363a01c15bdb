"""The confusion and calibration tables against scikit-learn, and the shared Plotly figures drawn
from a stored run: every number a chart shows is the stored one."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix

from flywheel.diagnosis import confusion, reliability
from flywheel.metrics import wilson_interval
from flywheel.report import (
    calibration_figure,
    confusion_figure,
    cost_figure,
    figure_json,
    learning_curve_figure,
    log_ticks,
    run_figures,
)


@settings(max_examples=40, deadline=None)
@given(
    k=st.integers(2, 7),
    n=st.integers(1, 300),
    seed=st.integers(0, 2**31 - 1),
)
def test_confusion_equals_scikit_learn(k: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    classes = [f"c{i}" for i in range(k)]
    y, pred = rng.choice(classes, n), rng.choice(classes, n)
    table = confusion(y, pred, classes)
    assert table.labels == classes and table.folded == 0
    assert np.array_equal(np.array(table.matrix), confusion_matrix(y, pred, labels=classes))


def test_confusion_folds_rare_classes_and_keeps_every_row() -> None:
    rng = np.random.default_rng(3)
    classes = list(range(30))
    y = rng.zipf(1.6, 5000) % 30
    pred = np.where(rng.random(5000) < 0.7, y, rng.integers(0, 30, 5000))
    table = confusion(y, pred, classes, limit=20)
    assert len(table.labels) == 20 and table.labels[-1] == "(other classes)" and table.folded == 11
    m = np.array(table.matrix)
    assert m.sum() == 5000
    full = confusion_matrix(y, pred, labels=classes)
    kept = [int(c) for c in table.labels[:-1]]
    support = np.bincount(y, minlength=30)
    assert min(support[kept]) >= max(np.delete(support, kept))  # the most frequent classes are kept
    assert np.array_equal(m[:-1, :-1], full[np.ix_(kept, kept)])
    assert m[:-1].sum(axis=1).tolist() == support[kept].tolist()


def test_confusion_counts_unknown_predictions_as_other() -> None:
    table = confusion(np.array(["a", "b", "a"]), np.array(["a", "zzz", "b"]), ["a", "b"])
    assert table.labels == ["a", "b", "(other classes)"] and table.folded == 0
    assert table.matrix == [[1, 1, 0], [0, 0, 1], [0, 0, 0]]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 400), seed=st.integers(0, 2**31 - 1))
def test_binary_reliability_equals_calibration_curve(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.random(n).round(2)  # ties on the bin edges (0.1, 0.2, ...) are common
    y = np.where(rng.random(n) < p, "yes", "no")
    table = reliability(y, np.column_stack([1 - p, p]), ["no", "yes"])
    assert table is not None and table.kind == "positive" and table.positive == "yes"
    true, predicted = calibration_curve(y == "yes", p, n_bins=10, strategy="uniform")
    assert np.allclose([b["observed"] for b in table.bins], true)
    assert np.allclose([b["predicted"] for b in table.bins], predicted)
    assert sum(b["rows"] for b in table.bins) == n
    ece = sum(b["rows"] * abs(b["observed"] - b["predicted"]) for b in table.bins) / n
    assert table.ece == pytest.approx(ece)
    for b in table.bins:
        low, high = wilson_interval(round(b["observed"] * b["rows"]), b["rows"])
        assert (b["observed_low"], b["observed_high"]) == pytest.approx((low, high))


def test_multiclass_reliability_bins_the_top_class() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet([1, 1, 1], 500)
    classes = ["a", "b", "c"]
    top = proba.argmax(axis=1)
    y = np.array(classes)[np.where(rng.random(500) < proba.max(axis=1), top, (top + 1) % 3)]
    table = reliability(y, proba, classes)
    assert table is not None and table.kind == "top" and table.positive is None
    true, predicted = calibration_curve(y == np.array(classes)[top], proba.max(axis=1), n_bins=10)
    assert np.allclose([b["observed"] for b in table.bins], true)
    assert np.allclose([b["predicted"] for b in table.bins], predicted)
    assert table.ece < 0.1  # drawn calibrated: the error is sampling noise
    assert reliability(y, proba[:, :1], classes) is None and reliability(y[:0], proba[:0], classes) is None


@pytest.mark.parametrize(("low", "high"), [(20, 90), (313, 3300), (1, 1e9), (265, 299), (0.5, 0.7)])
def test_log_ticks_are_round_few_and_inside(low: float, high: float) -> None:
    ticks = log_ticks(low, high)
    values = ticks["tickvals"]
    assert 3 <= len(values) <= 8 and all(low <= v <= high for v in values)
    assert values == sorted(values) and len(ticks["ticktext"]) == len(values)
    for v, text in zip(values, ticks["ticktext"], strict=True):
        assert float(text.replace(",", "")) == pytest.approx(v, rel=5e-3)


def _run() -> dict:
    fitted = [{"size": s, "value": 1 - 0.5 * s**-0.5} for s in (20, 40, 80, 160, 320)]
    return {
        "objective": {"optimize": "accuracy", "target": 0.95},
        "ladder": [
            {"name": "dummy", "role": "baseline", "kind": "dummy", "value": 0.4, "low": 0.3, "high": 0.5},
            {"name": "human", "role": "declared", "kind": "human", "value": 0.97, "low": None, "high": None},
            {"name": "forest", "role": "candidate", "kind": "model", "value": 0.9, "low": 0.85, "high": 0.94},
        ],
        "ranking": {"standings": [{"rank": 1, "name": "forest", "value": 0.91, "interval": [0.87, 0.95]}]},
        "evaluations": [
            {"name": "dummy", "stage": "dummy", "metrics": {"valid": {"accuracy": 0.41}}, "error": None},
            {"name": "rule", "stage": "rule", "metrics": {"valid": {"accuracy": 0.62}}, "error": None},
            {"name": "forest", "stage": "model", "metrics": {"valid": {"accuracy": 0.91}}, "error": None},
        ],
        "diagnosis": {
            "model": "forest",
            "curve": {
                "metric": "accuracy",
                "greater_is_better": True,
                "axis": "size",
                "model": "forest",
                "split": "valid",
                "points": [
                    {"size": s, "valid": 1 - 0.5 * s**-0.5, "valid_sd": 0.01, "train": 1.0}
                    for s in (20, 40, 80)
                ],
            },
            "confusion": {"labels": ["a", "b"], "matrix": [[30, 3], [5, 12]], "folded": 0},
            "reliability": {
                "kind": "positive",
                "positive": "b",
                "ece": 0.04,
                "rows": 50,
                "bins": [
                    {
                        "low": 0.0,
                        "high": 0.1,
                        "predicted": 0.05,
                        "observed": 0.03,
                        "observed_low": 0.0,
                        "observed_high": 0.15,
                        "rows": 30,
                    },
                    {
                        "low": 0.9,
                        "high": 1.0,
                        "predicted": 0.95,
                        "observed": 0.9,
                        "observed_low": 0.7,
                        "observed_high": 0.97,
                        "rows": 20,
                    },
                ],
            },
        },
        "forecast": {
            "metric": "accuracy",
            "n_train": 80,
            "confidence": 0.9,
            "weights": {"pow2": 1.0},
            "fitted": fitted,
            "cost_curve": [
                {
                    "target": 0.96,
                    "needed": 150.0,
                    "needed_low": 120.0,
                    "needed_high": 200.0,
                    "labels_to_buy": 70.0,
                    "cost": None,
                },
                {
                    "target": 0.97,
                    "needed": 400.0,
                    "needed_low": 300.0,
                    "needed_high": None,
                    "labels_to_buy": 320.0,
                    "cost": None,
                },
            ],
        },
    }


def test_run_figures_draw_the_stored_numbers() -> None:
    run = _run()
    figures = {k: json.loads(v) for k, v in run_figures(run).items()}
    assert set(figures) == {"ladder", "leaderboard", "curve", "cost", "calibration", "confusion"}
    curve = {t["name"]: t for t in figures["curve"]["data"]}
    assert curve["forest validation"]["y"] == [p["valid"] for p in run["diagnosis"]["curve"]["points"]]
    assert curve["best baseline (rule) 0.62"]["y"] == [0.62, 0.62]  # the best non-model rung on valid
    assert curve["human (declared) 0.97"]["y"] == [0.97, 0.97] and curve["target 0.95"]["y"] == [0.95, 0.95]
    assert max(curve["fitted (pow2)"]["x"]) == 320  # the forecast, up to four times the largest size
    cost = {t["name"]: t for t in figures["cost"]["data"]}
    assert cost["training rows needed"]["y"] == [150.0, 400.0] and cost["labelled today 80"]["y"] == [80, 80]
    assert cost["lower end of the 90% interval (the upper end is unbounded elsewhere)"]["y"] == [120.0, 300.0]
    heat = figures["confusion"]["data"][0]
    assert heat["text"] == [["30", "3"], ["5", "12"]]
    assert heat["z"][0] == pytest.approx([30 / 33, 3 / 33])  # colour: share of the true class
    cal = next(t for t in figures["calibration"]["data"] if t["name"].startswith("forest"))
    assert cal["name"] == "forest (ECE 0.040)" and cal["y"] == [0.03, 0.9]
    assert cal["error_y"]["arrayminus"] == pytest.approx([0.03, 0.2])


def test_charts_need_what_they_draw() -> None:
    run = _run()
    assert learning_curve_figure({"diagnosis": {}}) is None
    assert (
        cost_figure({}) is None and calibration_figure({}, "m") is None and confusion_figure({}, "m") is None
    )
    flat = dict(
        run["forecast"],
        cost_curve=[
            dict(c, target=43.62646931 + i * 1e-9) for i, c in enumerate(run["forecast"]["cost_curve"])
        ],
    )
    assert cost_figure(flat) is None  # targets that differ in the ninth digit: no axis can show them
    assert run_figures({"objective": {}}) == {}


def test_figure_json_cannot_close_its_script_element() -> None:
    import plotly.graph_objects as go

    text = figure_json(go.Figure(layout={"title": {"text": "</script><script>alert(1)</script>"}}))
    assert "</script" not in text and json.loads(text)["layout"]["title"]["text"].startswith("</script>")
