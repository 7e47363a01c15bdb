"""Learning curves and the label forecast: fits on known families, coverage, real curves, bad input."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from flywheel.data import load_dataset, split_dataset
from flywheel.diagnosis import (
    FAMILIES,
    Curve,
    CurvePoint,
    extrapolate,
    fit_curve,
    forecast,
    geometric_sizes,
    measure_curve,
    read_history,
    select_family,
)
from flywheel.errors import DataError, FlywheelError
from flywheel.evaluation import Candidate
from flywheel.execution import LocalExecutor, Outcome, Task
from flywheel.metrics import parse_metric
from flywheel.project import DataSpec

ACCURACY = parse_metric("accuracy")

# Error curves of known families (n in rows): the truth the forecast should recover.
TRUTHS = {
    "pow3": lambda n: 0.05 + 3.0 * n**-0.5,
    "mmf4": lambda n: (0.5 * 300 + 0.04 * n**0.8) / (300 + n**0.8),
}


def _inverse(fn, target_error: float) -> float:
    lo, hi = 1.0, 1e12
    for _ in range(200):
        mid = (lo * hi) ** 0.5
        lo, hi = (mid, hi) if fn(mid) > target_error else (lo, mid)
    return hi


def _synthetic(fn, seed: int, noise: float = 0.004, seeds: int = 3) -> Curve:
    rng = np.random.default_rng(seed)
    sizes = geometric_sizes(4000, 8, smallest=100)
    points = tuple(
        CurvePoint(s, k, None, float(1 - (fn(s) + rng.normal(0, noise)))) for s in sizes for k in range(seeds)
    )
    return Curve("accuracy", True, 1.0, "size", points, "synthetic")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_refits_its_own_noiseless_curve(family: str) -> None:
    sizes = np.array(geometric_sizes(5000, 10, smallest=50), dtype=float)
    truth = fit_curve(sizes, TRUTHS["pow3"](sizes), family)  # some member of the family
    assert truth is not None
    errors = truth.error_at(sizes)
    again = fit_curve(sizes, errors, family)
    assert again is not None
    assert np.allclose(again.error_at(sizes), errors, atol=1e-4)
    assert np.all(np.diff(again.error_at(np.geomspace(10, 1e7, 50))) <= 1e-12)  # error never rises


@pytest.mark.parametrize("name", sorted(TRUTHS))
def test_forecast_recovers_the_rows_a_target_needs_and_its_interval_covers(name: str) -> None:
    """On curves of a known family with noise, rows needed within 25 % (median) and ~nominal coverage.

    The target needs 10,000 training rows: 2.5 times the largest measured size.
    """
    fn = TRUTHS[name]
    truth = 10_000.0
    target = 1 - fn(truth)
    ratios, covered = [], 0
    sims = 30
    for sim in range(sims):
        fc = forecast(_synthetic(fn, sim), target, n_boot=100, seed=sim, cost_per_label=0.5)
        if fc.status != "reachable":  # a family that levels off too early: a miss, not covered
            assert fc.status == "unreachable" and fc.plateau is not None
            ratios.append(np.inf)
            continue
        assert fc.needed is not None and fc.needed_low is not None
        ratios.append(fc.needed / truth)
        high = fc.needed_high if fc.needed_high is not None else np.inf
        covered += fc.needed_low <= truth <= high
        assert fc.cost == pytest.approx(max(0.0, fc.needed - fc.n_train) * 0.5)
    assert 0.8 <= float(np.median(ratios)) <= 1.25
    assert np.mean(np.isfinite(ratios)) >= 0.8
    assert 0.65 <= covered / sims <= 1.0


def test_a_target_beyond_the_plateau_is_unreachable_with_the_plateau_interval() -> None:
    fn = TRUTHS["pow3"]  # levels off at 1 - 0.05 = 0.95
    fc = forecast(_synthetic(fn, 1), 0.97, families=["pow3"], n_boot=100)
    assert fc.status == "unreachable"
    assert fc.needed is None and fc.cost is None
    assert fc.plateau is not None and abs(fc.plateau - 0.95) < 0.01
    assert fc.plateau_low is not None and fc.plateau_high is not None
    assert fc.plateau_low <= fc.plateau <= fc.plateau_high
    assert "levels off" in fc.describe()


def test_a_target_already_met_and_no_target_are_not_numbers() -> None:
    curve = _synthetic(TRUTHS["pow3"], 2)
    met = forecast(curve, 0.5, n_boot=50)
    assert met.status == "met" and met.needed is None
    # Said of the split the curve was scored on, so it cannot contradict a failing test verdict.
    assert met.describe().startswith("target 0.5 already met on the valid split by the learning curve")
    assert met.describe().endswith("the verdict is judged on test")
    none = forecast(curve, None, n_boot=50)
    assert none.status == "unavailable" and "target" in (none.reason or "")
    assert none.cost_curve  # the cost of each target is still drawn


def test_cost_grows_faster_than_the_target() -> None:
    fc = forecast(_synthetic(TRUTHS["pow3"], 3), 0.93, cost_per_label=1.0, n_boot=50)
    needed = [row["needed"] for row in fc.cost_curve]
    targets = [row["target"] for row in fc.cost_curve]
    assert all(np.diff(targets) > 0) and all(np.diff(needed) > 0)
    steps = np.diff(needed) / np.diff(targets)  # rows per point of accuracy
    assert steps[-1] > 3 * steps[0]


def test_too_few_sizes_and_out_of_range_targets() -> None:
    points = tuple(CurvePoint(s, 0, None, 0.8 + s / 1e4) for s in (50, 100, 200))
    curve = Curve("accuracy", True, 1.0, "size", points, "m")
    fc = forecast(curve, 0.9)
    assert fc.status == "unavailable" and "fewer than" not in (fc.reason or "x")
    assert "3 training sizes, need at least 4" in (fc.reason or "")
    with pytest.raises(FlywheelError, match="outside accuracy's range"):
        forecast(_synthetic(TRUTHS["pow3"], 0), 1.5)


def test_selection_prefers_the_family_that_extrapolates() -> None:
    sizes = np.repeat(np.array(geometric_sizes(4000, 9, smallest=50), dtype=float), 2)
    errors = 0.1 + 2.0 * sizes**-0.7
    family, table = select_family(sizes, errors)
    assert family is not None
    assert table[family] is not None and table[family] < 1e-6


@pytest.mark.parametrize(
    ("source", "target", "make", "tolerance"),
    [
        ("digits", "digit", lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)), 0.03),
        ("breast_cancer", "diagnosis", lambda: RandomForestClassifier(50, random_state=0), 0.03),
        ("wine", "cultivar", lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)), 0.05),
    ],
)
def test_measured_curves_extrapolate_from_the_smaller_half(
    source: str, target: str, make, tolerance: float
) -> None:
    """Fit on the smaller half of the sizes; predict the mean score at the largest size."""
    ds = load_dataset(DataSpec(source=f"builtin:{source}", target=target), Path("."))
    split = split_dataset(ds, DataSpec(source="x", target="y").split)
    cand = Candidate("m", "candidate", "estimator", "test model", make=make)
    curve = measure_curve(cand, ds, split, ACCURACY, sizes=10, seeds=3)
    sizes = np.array([p.size for p in curve.points], dtype=float)
    errors = curve.error([p.valid for p in curve.points])
    uniq = np.unique(sizes)
    half = sizes <= uniq[len(uniq) // 2 - 1]
    family, _ = select_family(sizes[half], errors[half])
    assert family is not None
    fit = fit_curve(sizes[half], errors[half], family)
    assert fit is not None
    observed = errors[sizes == uniq[-1]].mean()
    assert abs(float(fit.error_at(uniq[-1])) - observed) <= tolerance


def test_learning_curve_points_train_on_growing_stratified_samples() -> None:
    ds = load_dataset(DataSpec(source="builtin:iris", target="species"), Path("."))
    split = split_dataset(ds, DataSpec(source="x", target="y").split)
    cand = Candidate("m", "candidate", "estimator", "test", make=lambda: LogisticRegression(max_iter=200))
    curve = measure_curve(cand, ds, split, ACCURACY, sizes=5, seeds=2)
    sizes = sorted({p.size for p in curve.points})
    assert sizes[-1] == len(split.train) and len(sizes) >= 4
    assert all(p.train is not None for p in curve.points)
    assert {p.seed for p in curve.points} == {0, 1}
    rule = Candidate(
        "r", "baseline", "rule", "a rule", rule=lambda rows: ["setosa"] * len(rows), stage="rule"
    )
    with pytest.raises(FlywheelError, match="no learning curve"):
        measure_curve(rule, ds, split, ACCURACY)


class _Reversed:
    """Runs the tasks in this one process, last first: what ran before a fit must not change its point."""

    def run(self, tasks: list[Task], on_done: object = None) -> list[Outcome]:
        done = {}
        for t in reversed(tasks):
            try:
                done[t.name] = Outcome(t.name, value=t.fn())
            except ValueError as exc:
                done[t.name] = Outcome(t.name, error=f"ValueError: {exc}")
        return [done[t.name] for t in tasks]


class _Picky(LogisticRegression):
    """Refuses to fit on fewer than 30 rows."""

    def fit(self, X: object, y: object, sample_weight: object = None) -> _Picky:
        if len(X) < 30:  # type: ignore[arg-type]
            raise ValueError("too few rows")
        return super().fit(X, y, sample_weight)


def test_each_curve_fit_is_a_task_whose_point_does_not_depend_on_the_others() -> None:
    ds = load_dataset(DataSpec(source="builtin:iris", target="species"), Path("."))
    split = split_dataset(ds, DataSpec(source="x", target="y").split)
    cand = Candidate(
        "f", "candidate", "estimator", "t", make=lambda: RandomForestClassifier(5, random_state=0)
    )
    processes = measure_curve(cand, ds, split, ACCURACY, sizes=4, seeds=2, executor=LocalExecutor(2))
    here = measure_curve(cand, ds, split, ACCURACY, sizes=4, seeds=2, executor=_Reversed())
    assert processes.points == here.points and len(here.points) == 8
    assert [(p.seed, p.size) for p in here.points] == sorted((p.seed, p.size) for p in here.points)
    picky = Candidate("p", "candidate", "estimator", "t", make=lambda: _Picky(max_iter=300))
    curve = measure_curve(picky, ds, split, ACCURACY, sizes=4, seeds=2, executor=_Reversed())
    assert curve.notes == ("2 of 8 fits failed: ValueError: too few rows",)  # the smallest size, each seed
    assert {p.seed for p in curve.points} == {0, 1} and min(p.size for p in curve.points) >= 30


class _Counted(LogisticRegression):
    """Counts its fits by training size (the curve runs in this process under ``_Reversed``)."""

    fits: ClassVar[Counter[int]] = Counter()

    def fit(self, X: object, y: object, sample_weight: object = None) -> _Counted:
        _Counted.fits[len(X)] += 1  # type: ignore[arg-type]
        return super().fit(X, y, sample_weight)


def test_the_full_training_set_is_fitted_once_or_taken_from_the_runs_own_fit() -> None:
    """Every seed draws the same rows at the full size: one fit stands for all, with the same points
    the seeds' identical fits gave; given the run's own fit there, no fit at all."""
    ds = load_dataset(DataSpec(source="builtin:iris", target="species"), Path("."))
    split = split_dataset(ds, DataSpec(source="x", target="y").split)
    n = len(split.train)
    cand = Candidate("c", "candidate", "estimator", "t", make=lambda: _Counted(max_iter=300))
    _Counted.fits.clear()
    curve = measure_curve(cand, ds, split, ACCURACY, sizes=4, seeds=3, executor=_Reversed())
    assert _Counted.fits[n] == 1 and all(k == 3 for size, k in _Counted.fits.items() if size < n)
    at_full = [p for p in curve.points if p.size == n]
    assert [p.seed for p in at_full] == [0, 1, 2] and len({(p.train, p.valid) for p in at_full}) == 1
    # What three fits gave before: the same point three times.
    model = LogisticRegression(max_iter=300).fit(ds.X.iloc[split.train], ds.y[split.train])
    assert at_full[0].valid == float(np.mean(model.predict(ds.X.iloc[split.valid]) == ds.y[split.valid]))
    _Counted.fits.clear()
    given = measure_curve(cand, ds, split, ACCURACY, sizes=4, seeds=3, executor=_Reversed(), full=(0.5, 0.25))
    assert _Counted.fits[n] == 0
    assert [(p.seed, p.train, p.valid) for p in given.points if p.size == n] == [
        (s, 0.5, 0.25) for s in range(3)
    ]
    assert [p for p in given.points if p.size < n] == [p for p in curve.points if p.size < n]


def test_large_sizes_are_fitted_with_one_seed_and_the_curve_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import flywheel.diagnosis._measure as curves

    monkeypatch.setattr(curves, "_ONE_SEED_ROWS", 40)  # iris: the sizes above 40 rows stand in
    ds = load_dataset(DataSpec(source="builtin:iris", target="species"), Path("."))
    split = split_dataset(ds, DataSpec(source="x", target="y").split)
    cand = Candidate("c", "candidate", "estimator", "t", make=lambda: _Counted(max_iter=300))
    _Counted.fits.clear()
    curve = measure_curve(cand, ds, split, ACCURACY, sizes=5, seeds=3, executor=_Reversed())
    n = len(split.train)
    middle = sorted(size for size in _Counted.fits if 40 < size < n)
    assert middle and all(_Counted.fits[size] == 1 for size in middle)
    assert all(_Counted.fits[size] == 3 for size in _Counted.fits if size <= 40)
    assert [p.seed for p in curve.points if p.size in middle] == [0] * len(middle)
    assert any(
        note.startswith(f"sampled: {len(middle)} sizes above 40 training rows fitted with 1 seed of 3")
        for note in curve.notes
    )


def test_points_are_scored_on_one_fixed_sample_of_a_large_validation_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import flywheel.diagnosis._measure as curves

    monkeypatch.setattr(curves, "_CURVE_SCORED_ROWS", 20)
    ds = load_dataset(DataSpec(source="builtin:iris", target="species"), Path("."))
    split = split_dataset(ds, DataSpec(source="x", target="y").split)
    cand = Candidate("c", "candidate", "estimator", "t", make=lambda: LogisticRegression(max_iter=300))
    curve = measure_curve(cand, ds, split, ACCURACY, sizes=3, seeds=2, executor=_Reversed(), valid_se=0.01)
    sample = curves._scored_rows(split.valid)
    assert len(sample) == 20 and set(sample) <= set(split.valid)
    assert np.array_equal(sample, curves._scored_rows(split.valid))  # the same rows for every point
    n = len(split.train)
    model = LogisticRegression(max_iter=300).fit(ds.X.iloc[split.train], ds.y[split.train])
    full = next(p for p in curve.points if p.size == n)
    assert full.valid == float(np.mean(model.predict(ds.X.iloc[sample]) == ds.y[sample]))
    assert curve.valid_se == pytest.approx(0.01 * np.sqrt(len(split.valid) / 20))
    assert f"sampled: each point scored on 20 of the {len(split.valid)} valid rows" in curve.notes


def _history(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "history.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_history_file_is_read_and_bad_ones_get_one_line(tmp_path: Path) -> None:
    good = _history(tmp_path, "step,train,valid\n1,0.7,0.68\n2,0.8,0.75\n3,0.9,0.77\n")
    curve = read_history(good, ACCURACY, given="history.csv", where="flywheel.yaml")
    assert curve.axis == "step" and [p.size for p in curve.points] == [1, 2, 3]
    cases = {
        "step,train\n1,0.5\n": "lacks column 'valid'",
        "step,train,valid\n1,0.5,0.4\n1,0.6,0.5\n": "steps must strictly increase",
        "step,train,valid\n1,0.5,0.4\n3,0.6,0.5\n2,0.7,0.5\n": "got 2 after 3",
        "step,train,valid\n1,abc,0.4\n2,0.6,0.5\n": "must be numbers",
        "step,train,valid\n1,0.5,0.4\n": "at least 2 rows",
        "step,train,valid\n1,0.5,1.4\n2,0.6,0.5\n": "outside accuracy's range",
    }
    for text, message in cases.items():
        with pytest.raises(DataError, match=message) as info:
            read_history(_history(tmp_path, text), ACCURACY, given="history.csv", where="flywheel.yaml")
        assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="does not exist"):
        read_history(tmp_path / "missing.csv", ACCURACY, given="missing.csv", where="flywheel.yaml")
    with pytest.raises(ValueError, match="training size"):
        forecast(curve, 0.9)


def test_a_curve_below_the_dummy_gets_no_forecast() -> None:
    """Not "accuracy 0.95 needs 62,661 rows" on a curve that sits below the dummy."""
    curve = _synthetic(TRUTHS["pow3"], 4)
    best = max(p.valid for p in curve.points)
    fc = forecast(curve, 0.95, n_boot=50, floor=best + 0.01)
    assert fc.status == "unavailable" and fc.needed is None
    assert fc.reason is not None and fc.reason.startswith("the curve never beats the dummy's accuracy")
    assert forecast(curve, 0.95, n_boot=50, floor=0.1).status != "unavailable"


def test_rows_needed_far_beyond_the_data_in_hand_are_said_as_such() -> None:
    """A target the curve reaches only past 100x the labelled rows is no plan to buy labels."""
    curve = _synthetic(TRUTHS["pow3"], 5)
    fc = forecast(curve, 0.93, n_train=100, n_boot=50)
    assert fc.status == "reachable" and fc.needed is not None and fc.needed > 100 * 100
    assert fc.too_far
    assert "needs more than 100× the 100 training rows in hand" in fc.describe()
    near = forecast(curve, 0.92, n_boot=50)
    assert near.status == "reachable" and not near.too_far and "needs about" in near.describe()


FIXTURE = Path(__file__).parent / "fixtures" / "learning_curves.json"


def _held_out(c: dict) -> tuple[Curve, int, float]:
    sizes = sorted({p["size"] for p in c["points"]})
    pts = tuple(
        CurvePoint(p["size"], p["seed"], None, p["valid"]) for p in c["points"] if p["size"] < sizes[-1]
    )
    curve = Curve(c["metric"], True, 1.0, "size", pts, c["learner"], valid_se=c["valid_se"])
    return curve, sizes[-1], float(np.mean([p["valid"] for p in c["points"] if p["size"] == sizes[-1]]))


def test_forecast_intervals_are_calibrated_on_measured_curves() -> None:
    """Nominal 80 % intervals cover 75–85 % of the held-out largest sizes of 100 measured curves.

    The curves (tests/fixtures, made by make_learning_curves.py: 15 built-in and generated data
    sets × 6–7 learners, 8 sizes × 3 seeds as `flywheel run` measures them) were not used to tune
    anything; the interval is the normal quantile of variances measured on each curve itself.
    The blend's point also beats the last measured value as a guess.
    """
    import json

    curves = json.loads(FIXTURE.read_text())["curves"]
    assert len(curves) >= 60
    covered, blend_err, last_err = [], [], []
    for c in curves:
        curve, big, truth = _held_out(c)
        ((point, low, high),) = extrapolate(curve, [big], confidence=0.8)
        assert low <= point <= high
        covered.append(low <= truth <= high)
        blend_err.append(abs(point - truth))
        last = max(p.size for p in curve.points)
        last_err.append(abs(np.mean([p.valid for p in curve.points if p.size == last]) - truth))
    assert 0.75 <= np.mean(covered) <= 0.85
    assert np.median(blend_err) < np.median(last_err)
    assert np.quantile(blend_err, 0.9) < np.quantile(last_err, 0.9)


def test_degenerate_fits_are_named_and_left_out() -> None:
    """A fit with a parameter at its bound is no description of the curve: refused, with the reason."""
    from flywheel.diagnosis._families import degenerate

    sizes = np.array(geometric_sizes(4000, 8, smallest=100), dtype=float)
    power = fit_curve(sizes, 3.0 * sizes**-0.5, "pow3")  # no asymptote: pow3 pins c at 0
    assert power is not None and degenerate(power) == "asymptote pinned at the perfect score"
    assert degenerate(fit_curve(sizes, 0.05 + 3.0 * sizes**-0.5, "pow3")) is None
    step = np.where(sizes < 150, 0.5, 0.1)  # a cliff: pow3 wants an exponent beyond its range
    cliff = fit_curve(sizes, step, "pow3")
    assert cliff is not None and (degenerate(cliff) or "").startswith("shape parameter 1 at the upper end")
    points = tuple(
        CurvePoint(int(n), k, None, float(1 - e)) for n, e in zip(sizes, step, strict=True) for k in range(2)
    )
    fc = forecast(Curve("accuracy", True, 1.0, "size", points, "m"), 0.95, families=["pow3"], n_boot=20)
    assert fc.status == "unavailable" and fc.needed is None
    assert (
        fc.reason
        == "no honest forecast: every curve family's fit is degenerate (pow3: " + degenerate(cliff) + ")"
    )
    # Blended, the degenerate family is left out and named; the others still answer.
    fc = forecast(_synthetic(TRUTHS["pow3"], 6), 0.93, n_boot=50)
    assert fc.available and set(fc.weights).isdisjoint(fc.excluded)
    assert abs(sum(fc.weights.values()) - 1) < 1e-9


def test_the_forecast_band_holds_its_point_and_widens_with_distance() -> None:
    curve = _synthetic(TRUTHS["mmf4"], 7)
    near, far = extrapolate(curve, [4000, 64000])
    assert near[1] <= near[0] <= near[2] and far[1] <= far[0] <= far[2]
    assert far[2] - far[1] > near[2] - near[1]
    fc = forecast(curve, 0.9, n_boot=50)
    for row in fc.fitted:
        assert row["low"] <= row["value"] <= row["high"]
    if fc.status == "reachable":
        assert fc.needed_low is not None and fc.needed_low <= fc.needed
