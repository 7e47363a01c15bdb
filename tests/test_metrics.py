"""The metric engine against trusted references: scikit-learn for values, scipy for intervals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from flywheel.metrics import METRICS, Accumulator, compare, metric_names, parse_metric, score

EXACT = 1e-12


def test_every_metric_declares_direction_range_and_task() -> None:
    for m in METRICS.values():
        assert m.lower < m.upper and m.tasks and m.best in (m.lower, m.upper)
    for name in ("log_loss", "max_error", "mae", "rmse", "brier", "ece", "pinball"):
        assert not METRICS[name].greater_is_better
    assert set(metric_names("regression")).isdisjoint(metric_names("binary"))
    assert parse_metric("recall[class=7]").class_label == "7"
    assert parse_metric("pinball[q=0.9]").q == 0.9
    with pytest.raises(ValueError, match="unknown metric 'acc'"):
        parse_metric("acc")
    with pytest.raises(ValueError, match="quantile must be a number in"):
        parse_metric("pinball[q=2]")


def _sk(fn, *args, **kw):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():  # the reference warns on absent classes; its value is defined
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


@st.composite
def label_case(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    k = draw(st.integers(2, 6))
    n = draw(st.integers(1, 120))
    y = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    present = np.unique(y)
    pred = np.array(draw(st.lists(st.sampled_from(present.tolist()), min_size=n, max_size=n)))
    return y, pred


@settings(max_examples=150, deadline=None)
@given(label_case())
def test_label_metrics_equal_sklearn(case: tuple[np.ndarray, np.ndarray]) -> None:
    y, pred = case
    labels = np.unique(y)
    names = ["accuracy", "balanced_accuracy", "mcc", "cohen_kappa"] + [
        f"{a}_{b}" for a in ("precision", "recall", "f1") for b in ("micro", "macro", "weighted")
    ]
    if len(labels) < 2:
        with pytest.raises(ValueError, match="single class"):
            score(y, pred, metrics=names, n_resamples=0)
        return
    got = score(y, pred, metrics=names, n_resamples=0).values_only()
    ref = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": _sk(skm.balanced_accuracy_score, y, pred),
        "mcc": _sk(skm.matthews_corrcoef, y, pred),
        "cohen_kappa": _sk(skm.cohen_kappa_score, y, pred),
    }
    for kind, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        for avg in ("micro", "macro", "weighted"):
            ref[f"{kind}_{avg}"] = _sk(fn, y, pred, labels=labels, average=avg, zero_division=0)
    for name, value in ref.items():
        if np.isnan(value):
            assert np.isnan(got[name]), name
        else:
            assert got[name] == pytest.approx(value, abs=EXACT), name


@settings(max_examples=60, deadline=None)
@given(label_case(), st.integers(0, 5))
def test_per_class_and_binary_metrics_equal_sklearn(case: tuple[np.ndarray, np.ndarray], pick: int) -> None:
    y, pred = case
    classes = np.arange(6)  # some classes may be absent from both: passing classes allows that
    c = int(classes[pick])
    got = score(
        y,
        pred,
        metrics=[f"recall[class={c}]", f"precision[class={c}]", f"f1[class={c}]"],
        classes=classes,
        n_resamples=0,
    ).values_only()
    for kind, fn in (("recall", skm.recall_score), ("precision", skm.precision_score), ("f1", skm.f1_score)):
        expected = _sk(fn, y, pred, labels=[c], average=None, zero_division=0)[0]
        assert got[f"{kind}[class={c}]"] == pytest.approx(expected, abs=EXACT)
    yb, pb = (y > 0).astype(int), (pred > 0).astype(int)
    got = score(yb, pb, metrics=["precision", "recall", "f1"], classes=[0, 1], n_resamples=0).values_only()
    for kind, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        assert got[kind] == pytest.approx(_sk(fn, yb, pb, zero_division=0), abs=EXACT)


@st.composite
def score_case(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    k = draw(st.integers(2, 4))
    n = draw(st.integers(2 * k, 150))
    y = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    y[:k] = np.arange(k)  # every class present, as ROC AUC requires
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    levels = draw(st.sampled_from([3, 10, 10**6]))  # few levels: many tied scores
    raw = rng.integers(0, levels, (n, k)) + draw(st.integers(0, levels)) * np.eye(k, dtype=int)[y] + 1
    return y, raw / raw.sum(axis=1, keepdims=True)


@settings(max_examples=120, deadline=None)
@given(score_case())
def test_score_metrics_equal_sklearn(case: tuple[np.ndarray, np.ndarray]) -> None:
    y, proba = case
    k = proba.shape[1]
    names = ["roc_auc", "average_precision", "log_loss", "brier"]
    got = score(y, None, proba, names, n_resamples=0).values_only()
    if k == 2:
        auc = skm.roc_auc_score(y, proba[:, 1])
        ap = skm.average_precision_score(y, proba[:, 1])
        brier = _sk(skm.brier_score_loss, y, proba[:, 1])
    else:
        auc = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=np.arange(k))
        ap = skm.average_precision_score(label_binarize(y, classes=np.arange(k)), proba, average="macro")
        brier = float(np.mean(np.sum((proba - np.eye(k)[y]) ** 2, axis=1)))
    assert got["roc_auc"] == pytest.approx(auc, abs=EXACT)
    assert got["average_precision"] == pytest.approx(ap, abs=EXACT)
    assert got["log_loss"] == pytest.approx(_sk(skm.log_loss, y, proba, labels=np.arange(k)), abs=EXACT)
    assert got["brier"] == pytest.approx(brier, abs=EXACT)


def test_ece_matches_its_definition() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), 500)
    y = rng.integers(0, 3, 500)
    conf, hit = proba.max(axis=1), (proba.argmax(axis=1) == y)
    bins = np.minimum((conf * 15).astype(int), 14)
    expected = sum(
        abs(hit[bins == b].mean() - conf[bins == b].mean()) * np.mean(bins == b)
        for b in range(15)
        if np.any(bins == b)
    )
    assert score(y, None, proba, ["ece"], n_resamples=0)["ece"].value == pytest.approx(expected, abs=EXACT)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 200), st.integers(0, 2**16), st.sampled_from([0, 1, 3]), st.floats(0.05, 0.95))
def test_regression_metrics_equal_sklearn(n: int, seed: int, decimals: int, q: float) -> None:
    rng = np.random.default_rng(seed)
    y = np.round(rng.normal(size=n) * 3, decimals)
    pred = np.round(y + rng.normal(size=n), decimals)
    names = ["mae", "mse", "rmse", "r2", "mape", "median_ae", "max_error", f"pinball[q={q}]"]
    got = score(y, pred, metrics=names, n_resamples=0).values_only()
    ref = {
        "mae": skm.mean_absolute_error(y, pred),
        "mse": skm.mean_squared_error(y, pred),
        "rmse": skm.root_mean_squared_error(y, pred),
        "r2": _sk(skm.r2_score, y, pred),
        "mape": skm.mean_absolute_percentage_error(y, pred),
        "median_ae": skm.median_absolute_error(y, pred),
        "max_error": skm.max_error(y, pred),
        f"pinball[q={q}]": skm.mean_pinball_loss(y, pred, alpha=q),
    }
    for name, value in ref.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=EXACT), name


def test_string_labels_and_declared_classes() -> None:
    y = np.array(["cat", "dog", "cat", "bird", "dog", "cat"], dtype=object)
    pred = np.array(["cat", "dog", "dog", "bird", "dog", "cat"], dtype=object)
    got = score(y, pred, metrics=["accuracy", "f1_macro"], n_resamples=0).values_only()
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    wider = score(y, pred, metrics=["f1_macro"], classes=["bird", "cat", "dog", "eel"], n_resamples=0)
    assert wider["f1_macro"].value == pytest.approx(
        _sk(skm.f1_score, y, pred, labels=["bird", "cat", "dog", "eel"], average="macro", zero_division=0)
    )


# --- intervals ------------------------------------------------------------------------------------


def _scipy_percentile(statistic, data, n_resamples: int = 4000):  # type: ignore[no-untyped-def]
    res = stats.bootstrap(
        data,
        statistic,
        paired=True,
        vectorized=False,
        n_resamples=n_resamples,
        method="percentile",
        random_state=np.random.default_rng(1),
    )
    return res.confidence_interval.low, res.confidence_interval.high


def test_label_interval_agrees_with_scipy_bootstrap() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 300)
    pred = np.where(rng.random(300) < 0.75, y, rng.integers(0, 3, 300))
    ours = score(y, pred, metrics=["accuracy", "f1_macro"], n_resamples=4000, method="percentile")
    for name, fn in (
        ("accuracy", skm.accuracy_score),
        ("f1_macro", lambda a, b: skm.f1_score(a, b, average="macro")),
    ):
        low, high = _scipy_percentile(fn, (y, pred))
        # Monte Carlo error of a 2.5% quantile with 4000 resamples is about 0.004 here.
        assert ours[name].low == pytest.approx(low, abs=0.012), name
        assert ours[name].high == pytest.approx(high, abs=0.012), name


def test_row_level_and_ranking_intervals_agree_with_scipy_bootstrap() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 250)
    s = y * 0.8 + rng.normal(size=250)
    ours = score(y, None, s, ["roc_auc"], n_resamples=3000, method="percentile")["roc_auc"]
    low, high = _scipy_percentile(lambda a, b: skm.roc_auc_score(a, b), (y, s), n_resamples=3000)
    assert ours.low == pytest.approx(low, abs=0.015) and ours.high == pytest.approx(high, abs=0.015)
    yr = rng.normal(size=250)
    pr = yr + rng.normal(size=250)
    ours = score(yr, pr, metrics=["mae"], n_resamples=3000, method="percentile")["mae"]
    low, high = _scipy_percentile(lambda a, b: skm.mean_absolute_error(a, b), (yr, pr), n_resamples=3000)
    assert ours.low == pytest.approx(low, abs=0.02) and ours.high == pytest.approx(high, abs=0.02)


@pytest.mark.parametrize("method", ["bca", "percentile"])
def test_intervals_cover_the_population_value(method: str) -> None:
    """95 % intervals cover the true accuracy 93-97 % of the time (deterministic seeds)."""
    rng = np.random.default_rng(11)
    truth, n, sims = 0.8, 400, 600
    covered = 0
    for i in range(sims):
        y = rng.integers(0, 2, n)
        correct = rng.random(n) < truth
        pred = np.where(correct, y, 1 - y)
        est = score(y, pred, metrics=["accuracy"], n_resamples=400, seed=i, method=method)["accuracy"]
        assert est.low is not None and est.high is not None
        covered += est.low <= truth <= est.high
    assert 0.93 <= covered / sims <= 0.97


def test_mae_interval_covers_the_population_value() -> None:
    rng = np.random.default_rng(12)
    truth = np.sqrt(2 / np.pi)  # E|e| for standard normal errors
    covered, sims = 0, 1000
    for i in range(sims):
        y = rng.normal(size=300)
        est = score(y, y + rng.normal(size=300), metrics=["mae"], n_resamples=400, seed=i)["mae"]
        covered += est.low <= truth <= est.high  # type: ignore[operator]
    assert 0.93 <= covered / sims <= 0.97


def test_coarse_auc_interval_matches_the_exact_bootstrap() -> None:
    rng = np.random.default_rng(5)
    n = 20_000
    y = rng.integers(0, 2, n)
    s = y * 0.5 + rng.normal(size=n)
    coarse = score(y, None, s, ["roc_auc"], n_resamples=1000)["roc_auc"]
    assert coarse.note is not None and "score bins" in coarse.note
    draws = []
    for _ in range(300):  # the reference: resample rows, recompute exactly
        idx = rng.integers(0, n, n)
        draws.append(skm.roc_auc_score(y[idx], s[idx]))
    width = np.percentile(draws, 97.5) - np.percentile(draws, 2.5)
    assert coarse.high - coarse.low == pytest.approx(width, rel=0.2)  # type: ignore[operator]
    assert coarse.low < coarse.value < coarse.high  # type: ignore[operator]


def test_binned_mean_interval_has_the_right_width() -> None:
    """Past ``max_rows`` a mean of per-row values is bootstrapped over bins of its values."""
    rng = np.random.default_rng(6)
    n = 200_000
    err = rng.normal(size=n)
    est = score(np.zeros(n), err, metrics=["mae"], n_resamples=300, max_rows=20_000)["mae"]
    assert est.note is not None and "binned bootstrap of the mean" in est.note
    se = np.std(np.abs(err)) / np.sqrt(n)
    assert est.high - est.low == pytest.approx(2 * 1.96 * se, rel=0.2)  # type: ignore[operator]


def test_exact_median_interval_has_the_right_width() -> None:
    """Past ``max_rows`` a median's interval comes from its exact bootstrap distribution."""
    rng = np.random.default_rng(6)
    n = 200_000
    err = rng.normal(size=n)
    est = score(np.zeros(n), err, metrics=["median_ae"], n_resamples=300, max_rows=20_000)["median_ae"]
    assert est.note is not None and "exact bootstrap distribution of the median" in est.note
    density = 2 * stats.norm.pdf(stats.norm.ppf(0.75))  # of |err| at its median
    se = 1 / (2 * density * np.sqrt(n))
    assert est.high - est.low == pytest.approx(2 * 1.96 * se, rel=0.2)  # type: ignore[operator]


def test_binned_r2_interval_has_the_right_width() -> None:
    """Past ``max_rows`` R² is bootstrapped over bins of its rows (its width: the delta method's)."""
    rng = np.random.default_rng(6)
    n = 200_000
    y = rng.normal(size=n)
    pred = y + 0.5 * rng.normal(size=n)
    est = score(y, pred, metrics=["r2"], n_resamples=300, max_rows=20_000)["r2"]
    assert est.note is not None and "binned bootstrap of R²" in est.note
    err, centred = y - pred, y - y.mean()
    r2 = 1 - np.sum(err**2) / np.sum(centred**2)
    influence = (-(err**2) + (1 - r2) * centred**2) / np.mean(centred**2)  # R²'s, per row
    se = np.std(influence) / np.sqrt(n)
    assert est.high - est.low == pytest.approx(2 * 1.96 * se, rel=0.2)  # type: ignore[operator]


def test_small_and_degenerate_samples_say_so() -> None:
    small = score([0, 1, 1, 0, 1], [0, 1, 0, 0, 1], metrics=["accuracy"])["accuracy"]
    assert small.note is not None and "only 5 rows" in small.note
    perfect = score([0, 1] * 50, [0, 1] * 50, metrics=["accuracy"])["accuracy"]
    assert perfect.high == 1.0 and perfect.low < 0.97  # Wilson's, not the bootstrap's collapsed [1, 1]
    assert perfect.note is not None and "Wilson" in perfect.note


def test_intervals_are_reproducible_from_the_seed() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    pred = np.where(rng.random(200) < 0.7, y, rng.integers(0, 3, 200))
    a = score(y, pred, metrics=["f1_macro"], seed=5)["f1_macro"]
    b = score(y, pred, metrics=["f1_macro"], seed=5)["f1_macro"]
    c = score(y, pred, metrics=["f1_macro"], seed=6)["f1_macro"]
    assert (a.low, a.high) == (b.low, b.high) != (c.low, c.high)


# --- accumulators ---------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(score_case(), st.integers(1, 5))
def test_merged_accumulators_equal_the_one_shot_result(
    case: tuple[np.ndarray, np.ndarray], parts: int
) -> None:
    y, proba = case
    k = proba.shape[1]
    pred = proba.argmax(axis=1)
    names = ["accuracy", "f1_macro", "mcc", "roc_auc", "average_precision", "log_loss", "brier", "ece"]
    one = score(y, pred, proba, names, classes=np.arange(k), n_resamples=0).values_only()
    merged = Accumulator(names, classes=np.arange(k))
    for chunk in np.array_split(np.arange(len(y)), parts):
        if len(chunk) == 0:
            continue
        part = Accumulator(names, classes=np.arange(k))
        part.update(y[chunk], pred[chunk], proba[chunk])
        merged.merge(part)
    assert merged.result() == one


def test_merged_regression_accumulators_equal_the_one_shot_result() -> None:
    rng = np.random.default_rng(0)
    y = np.round(rng.normal(size=1000), 2)
    pred = np.round(y + rng.normal(size=1000), 2)
    names = ["mae", "mse", "rmse", "r2", "mape", "median_ae", "max_error", "pinball[q=0.8]"]
    acc = Accumulator(names)
    for chunk in np.array_split(np.arange(1000), 7):
        acc.update(y[chunk], pred[chunk])
    assert acc.result() == score(y, pred, metrics=names, n_resamples=0).values_only()


def test_accumulator_needs_classes_for_classification() -> None:
    with pytest.raises(ValueError, match="classes is required"):
        Accumulator(["accuracy"])


# --- paired comparisons ---------------------------------------------------------------------------


def test_compare_better_worse_inconclusive() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 2000)
    good = np.where(rng.random(2000) < 0.9, y, 1 - y)
    bad = np.where(rng.random(2000) < 0.7, y, 1 - y)
    assert compare(y, good, bad, "accuracy").verdict == "better"
    assert compare(y, bad, good, "accuracy").verdict == "worse"
    twin = compare(y, good, good, "accuracy")
    assert twin.difference == 0 and twin.verdict == "inconclusive"
    right, wrong = np.flatnonzero(good == y), np.flatnonzero(good != y)
    close = good.copy()
    close[right[:6]] = 1 - close[right[:6]]  # 6 rows lost, 4 gained: 2 rows worse in 2000
    close[wrong[:4]] = 1 - close[wrong[:4]]
    c = compare(y, close, good, "accuracy")
    assert c.verdict == "inconclusive" and c.improvement == pytest.approx(-2 / 2000)
    assert c.min_detectable_effect > abs(c.improvement)
    assert c.more_rows_needed is not None and c.more_rows_needed > 0


def test_compare_orients_lower_is_better_metrics_and_non_inferiority() -> None:
    rng = np.random.default_rng(8)
    y = rng.normal(size=1000)
    a = y + rng.normal(size=1000) * 0.5
    b = y + rng.normal(size=1000) * 0.52
    c = compare(y, a, b, "mae")
    assert c.improvement == pytest.approx(-c.difference)
    # A is not shown better, but it is shown no worse than B by more than 0.05.
    assert compare(y, a, b, "mae", margin=-0.05).verdict == "better"


def test_paired_interval_is_narrower_than_unpaired() -> None:
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 1000)
    a = np.where(rng.random(1000) < 0.85, y, 1 - y)
    b = np.where(rng.random(1000) < 0.02, 1 - a, a)  # B differs from A on 2 % of rows
    c = compare(y, a, b, "accuracy")
    ea = score(y, a, metrics=["accuracy"])["accuracy"]
    assert (c.high - c.low) < 0.5 * (ea.high - ea.low)  # type: ignore[operator]


def test_compare_scores_for_score_metrics() -> None:
    rng = np.random.default_rng(10)
    y = rng.integers(0, 2, 800)
    good, noise = y + rng.normal(size=800), rng.normal(size=800)
    c = compare(y, good, noise, "roc_auc")
    assert c.verdict == "better" and 0 < c.p_value < 0.01


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"y_true": [0, 1, 1], "y_pred": [0, 1]}, "y_pred has 2 rows but y_true has 3"),
        ({"y_true": [], "y_pred": []}, "y_true is empty"),
        (
            {"y_true": [0, 1, 1], "y_score": [0.1, np.nan, 0.3], "metrics": ["roc_auc"]},
            "y_score has 1 NaN or infinite values",
        ),
        (
            {"y_true": [0, 1, 1], "y_score": [0.1, np.inf, 0.3], "metrics": ["roc_auc"]},
            "y_score has 1 NaN or infinite values",
        ),
        ({"y_true": [0, 1, 1], "y_pred": [0, 1, 2]}, "y_pred has labels never seen in y_true: 2"),
        (
            {"y_true": [0, 1, 2], "y_score": [[0.5, 0.5]] * 3, "metrics": ["roc_auc"]},
            "y_score has shape (3, 2); expected (3, 3)",
        ),
        (
            {"y_true": [1, 1, 1], "y_score": [0.2, 0.4, 0.6], "metrics": ["roc_auc"], "classes": [0, 1]},
            "roc_auc needs both classes in y_true; got only 1",
        ),
        ({"y_true": [0, 1], "y_pred": [0, 1], "metrics": ["acc"]}, "metrics: unknown metric 'acc'"),
        ({"y_true": [0, 1], "y_pred": [0, 1], "metrics": ["roc_auc"]}, "roc_auc needs y_score"),
        ({"y_true": [0, 1, 2], "y_pred": [0, 1, 2], "metrics": ["f1"]}, "f1 is for binary targets"),
        (
            {"y_true": [0, 1], "y_score": [1.5, -0.2], "metrics": ["log_loss"], "classes": [0, 1]},
            "log_loss needs probabilities in [0, 1]",
        ),
        (
            {"y_true": [1.0, 2.0], "y_pred": [1.0, np.nan], "metrics": ["mae"]},
            "y_pred has 1 NaN or infinite values",
        ),
        ({"y_true": [0, 0, 0], "y_pred": [0, 0, 0]}, "y_true has a single class (0)"),
        (
            {"y_true": [0, 1, -1], "y_pred": [0, 1, 1], "classes": [0, 1]},
            "y_true has a label that is not among classes: -1; add it to classes",
        ),
        (
            {"y_true": [0, 1, 1], "y_pred": [0, 7, 1], "classes": [0, 1]},
            "y_pred has a label that is not among classes: 7",
        ),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict[str, object], expected: str) -> None:
    with pytest.raises(ValueError) as info:
        score(**kwargs)  # type: ignore[arg-type]
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_identical_models_have_no_detectable_effect_and_no_rows_would_decide() -> None:
    """Not "minimum detectable effect 0.0000": two models that agree on every row cannot be told apart."""
    from flywheel.metrics import rows_to_decide

    y = np.array([0, 1, 1, 0, 1] * 40)
    pred = np.where(np.arange(200) % 7 == 0, 1 - y, y)
    c = compare(y, pred, pred.copy(), "accuracy", n_resamples=300)
    assert c.verdict == "inconclusive"
    assert c.min_detectable_effect is None and c.more_rows_needed is None
    assert c.note is not None and "no number of rows would tell them apart" in c.note
    assert rows_to_decide(c.to_dict()) == ""


def test_rows_that_would_decide_are_bounded_by_what_is_in_hand() -> None:
    """Not "about 1,434,804 more labelled test rows would decide" for 944 rows."""
    from flywheel.metrics import rows_to_decide

    assert rows_to_decide({"more_rows_needed": 1_434_804, "n": 944}, "labelled test") == (
        "more than 100× the 944 rows compared would be needed to decide"
    )
    assert (
        rows_to_decide({"more_rows_needed": 94_400, "n": 944})
        == "about 94,400 more labelled rows would decide"
    )
    assert rows_to_decide({"more_rows_needed": None, "n": 944}) == ""


def test_an_all_right_sample_gets_an_interval_that_does_not_collapse() -> None:
    """Not accuracy 1.000 [1.000-1.000] on 114 rows: the Wilson interval of 114/114."""
    from scipy.stats import binomtest

    y = np.arange(114) % 3
    est = score(y, y, metrics=["accuracy"], n_resamples=500)["accuracy"]
    ci = binomtest(114, 114).proportion_ci(method="wilson")
    assert est.value == 1.0 and est.method == "wilson"
    assert est.low == pytest.approx(ci.low) and est.high == pytest.approx(ci.high)
    assert est.low < 0.98
    wrong = score(y, (y + 1) % 3, metrics=["accuracy"], n_resamples=500)["accuracy"]
    assert wrong.value == 0.0 and wrong.low == 0.0 and wrong.high > 0.02
