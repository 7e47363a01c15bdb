"""The objective: ranking under constraints and the verdict against the target."""

from __future__ import annotations

import pytest

from flywheel.errors import ProjectError
from flywheel.evaluation import Evaluation, judge, make_objective, rank
from flywheel.project import ObjectiveSpec


def ev(
    name: str, valid: float | None, test: float | None, metric: str = "accuracy", **systems: float
) -> Evaluation:
    return Evaluation(
        name,
        "candidate",
        "estimator",
        "",
        metrics={"valid": {metric: valid}, "test": {metric: test}},
        systems=dict(systems),
    )


def obj(**kw: object):  # type: ignore[no-untyped-def]
    return make_objective(ObjectiveSpec.model_validate({"optimize": "accuracy", **kw}), "binary", "v1")


def test_ranks_by_the_optimized_metric_on_the_selection_split() -> None:
    r = rank([ev("a", 0.8, 0.9), ev("b", 0.85, 0.7), ev("c", 0.6, 0.99)], obj(), "valid")
    assert [s.name for s in r.standings] == ["b", "a", "c"]
    assert [s.rank for s in r.standings] == [1, 2, 3]
    assert r.best == "b"


def test_lower_is_better_metrics_rank_ascending() -> None:
    o = make_objective(ObjectiveSpec(optimize="rmse"), "regression", "v1")
    r = rank([ev("a", 3.0, 3.0, "rmse"), ev("b", 2.0, 2.5, "rmse")], o, "valid")
    assert r.best == "b"


def test_infeasible_models_are_listed_last_with_their_violations() -> None:
    o = obj(constraints={"latency_p95_ms": {"max": 2}, "size_mb": {"max": 10}})
    r = rank(
        [
            ev("fast", 0.8, 0.8, latency_p95_ms=1.0, size_mb=1.0),
            ev("slow", 0.95, 0.95, latency_p95_ms=5.0, size_mb=1.0),
            ev("file", 0.9, 0.9),
        ],
        o,
        "valid",
    )
    assert [s.name for s in r.standings] == ["fast", "file", "slow"]
    assert r.best == "fast"
    slow = r.standings[2]
    assert slow.feasible is False
    assert slow.violations[0].describe() == "latency_p95_ms 5 > max 2 (by 3)"
    assert r.standings[1].feasible is None


def test_quality_constraints_are_checked_on_the_selection_split() -> None:
    o = obj(constraints={"recall_macro": {"min": 0.7}})
    good = Evaluation(
        "g",
        "candidate",
        "estimator",
        "",
        metrics={"valid": {"accuracy": 0.8, "recall_macro": 0.75}, "test": {"accuracy": 0.8}},
    )
    bad = Evaluation(
        "b",
        "candidate",
        "estimator",
        "",
        metrics={"valid": {"accuracy": 0.9, "recall_macro": 0.5}, "test": {"accuracy": 0.9}},
    )
    r = rank([good, bad], o, "valid")
    assert r.best == "g"
    assert r.standings[1].violations[0].describe() == "recall_macro 0.5 < min 0.7 (by 0.2)"


def test_failed_evaluations_are_not_ranked() -> None:
    failed = Evaluation("x", "candidate", "estimator", "", error="RuntimeError: no")
    r = rank([failed, ev("a", 0.5, 0.5)], obj(), "valid")
    assert [s.name for s in r.standings] == ["a"]


@pytest.mark.parametrize(
    ("target", "test_value", "status"),
    [(0.9, 0.95, "pass"), (0.9, 0.9, "pass"), (0.9, 0.85, "fail"), (None, 0.85, "inconclusive")],
)
def test_verdict(target: float | None, test_value: float, status: str) -> None:
    o = obj() if target is None else obj(target=target)
    v = judge(rank([ev("a", 0.9, test_value)], o, "valid"), o)
    assert v.status == status
    assert v.model == "a"


def test_verdict_without_feasible_model_is_inconclusive() -> None:
    o = obj(target=0.5, constraints={"size_mb": {"max": 1}})
    v = judge(rank([ev("a", 0.9, 0.9, size_mb=5.0)], o, "valid"), o)
    assert v.status == "inconclusive" and v.reason == "no model satisfies every constraint"


def test_metric_must_fit_the_task() -> None:
    with pytest.raises(ProjectError, match=r"objective\.optimize 'r2' does not apply to a binary target"):
        make_objective(ObjectiveSpec(optimize="r2"), "binary", "v1")
    with pytest.raises(ProjectError, match=r"objective\.constraints\.rmse 'rmse' does not apply"):
        make_objective(
            ObjectiveSpec.model_validate({"optimize": "accuracy", "constraints": {"rmse": {"max": 1}}}),
            "binary",
            "v1",
        )


def test_a_constraint_with_confidence_is_checked_on_the_interval_bound() -> None:
    spec = {"constraints": {"recall_macro": {"min": 0.8, "confidence": 0.9}}}
    o = obj(**spec)
    assert o.confidence_levels() == {"recall_macro": 0.9}

    def model(name: str, point: float, low: float) -> Evaluation:
        return Evaluation(
            name,
            "candidate",
            "estimator",
            "",
            metrics={"valid": {"accuracy": 0.9, "recall_macro": point}, "test": {"accuracy": 0.9}},
            bounds={"valid": {"recall_macro@0.9": (low, point + 0.02)}},
        )

    r = rank([model("sure", 0.86, 0.81), model("lucky", 0.85, 0.78)], o, "valid")
    by = {s.name: s for s in r.standings}
    assert by["sure"].feasible is True
    assert by["lucky"].feasible is False  # its point passes 0.8; its 90% lower bound does not
    assert by["lucky"].violations[0].describe() == "recall_macro at 90% confidence 0.78 < min 0.8 (by 0.02)"
    without = rank([model("lucky", 0.85, 0.78)], obj(constraints={"recall_macro": {"min": 0.8}}), "valid")
    assert without.standings[0].feasible is True


def test_a_systems_constraint_with_confidence_is_not_checked_on_a_point() -> None:
    o = obj(constraints={"latency_p95_ms": {"max": 5, "confidence": 0.95}})
    r = rank([ev("a", 0.9, 0.9, latency_p95_ms=1.0)], o, "valid")
    assert r.standings[0].feasible is None
    assert r.standings[0].violations[0].describe() == "latency_p95_ms not measured at 95% confidence"


# --- weighted objectives --------------------------------------------------------------------------


def _stage(name: str, stage: str, acc: float, loss: float) -> Evaluation:
    values = {"accuracy": acc, "log_loss": loss}
    return Evaluation(
        name, "baseline", "rung", "", stage, metrics={"valid": dict(values), "test": dict(values)}
    )


def _weighted(**weights: float):  # type: ignore[no-untyped-def]
    return make_objective(ObjectiveSpec.model_validate({"weights": weights}), "binary", "v1")


def test_normalisation_puts_the_dummy_at_zero_and_the_ceiling_at_one() -> None:
    from flywheel.evaluation import with_composite

    o = _weighted(accuracy=1, log_loss=1)
    dummy = _stage("dummy", "constant", 0.5, 0.69)
    perfect = _stage("perfect", "model", 1.0, 0.0)  # the metrics' best values: accuracy 1, log_loss 0
    halfway = _stage("half", "model", 0.75, 0.345)
    scored = {e.name: e for e in with_composite([dummy, perfect, halfway], o, ceilings={})}
    assert scored["dummy"].value("objective", "valid") == 0.0
    assert scored["perfect"].value("objective", "valid") == pytest.approx(1.0)
    assert scored["half"].value("objective", "valid") == pytest.approx(0.5)
    # A declared human level is the ceiling instead of the metric's best value.
    human = with_composite([dummy, halfway], o, ceilings={"accuracy": 0.75, "log_loss": 0.345})
    assert human[1].value("objective", "valid") == pytest.approx(1.0)


def test_weights_decide_the_ranking_and_its_sensitivity_is_reported() -> None:
    from flywheel.evaluation import weight_sensitivity, with_composite

    evals = [
        _stage("dummy", "constant", 0.5, 0.69),
        _stage("sharp", "model", 0.9, 0.60),
        _stage("calibrated", "model", 0.8, 0.30),
    ]
    accuracy_first = _weighted(accuracy=3, log_loss=1)
    calibration_first = _weighted(accuracy=1, log_loss=3)
    assert rank(with_composite(evals, accuracy_first, {}), accuracy_first, "valid").best == "sharp"
    assert rank(with_composite(evals, calibration_first, {}), calibration_first, "valid").best == "calibrated"
    balanced = _weighted(accuracy=2.2, log_loss=1)  # close call (tie at 2.17): -20% on accuracy flips it
    rows = weight_sensitivity(evals, balanced, {}, "valid")
    assert {(r["metric"], r["change"]) for r in rows} == {
        ("accuracy", "+20%"),
        ("accuracy", "-20%"),
        ("log_loss", "+20%"),
        ("log_loss", "-20%"),
    }
    assert any(r["best_changes"] for r in rows)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"weights": {"accuracy": -1, "f1_macro": 2}}, "objective.weights must be >= 0; got accuracy: -1"),
        ({"weights": {"accuracy": 0, "f1_macro": 0}}, "objective.weights must not all be zero"),
        ({"weights": {"acc": 1}}, "objective.weights must be one of accuracy"),
        ({"optimize": "accuracy", "weights": {"accuracy": 1}}, "not both; got both"),
        ({}, "needs optimize (one metric) or weights (several), not both; got neither"),
    ],
)
def test_weight_mistakes_are_one_line(spec: dict[str, object], expected: str) -> None:
    import yaml

    from flywheel.project import parse_project

    text = "project: p\ndata: {source: builtin:iris, target: species}\nobjective: " + yaml.safe_dump(
        spec, default_flow_style=True
    )
    with pytest.raises(ProjectError) as info:
        parse_project(text)
    assert expected in str(info.value)


# --- constraints are met, broken or undecided, from the interval -----------------------------------


def _timed(name: str, valid: float, test: float, p95: float, low: float, high: float) -> Evaluation:
    return Evaluation(
        name,
        "candidate",
        "estimator",
        "",
        metrics={"valid": {"accuracy": valid}, "test": {"accuracy": test}},
        systems={"latency_p95_ms": p95},
        intervals={"systems": {"latency_p95_ms": (low, high)}},
    )


def test_a_limit_inside_the_interval_is_undecided_and_never_demotes() -> None:
    o = obj(target=0.8, constraints={"latency_p95_ms": {"max": 25}})
    r = rank(
        [
            _timed("met", 0.85, 0.85, 10.0, 9.0, 11.0),
            _timed("straddles", 0.95, 0.95, 24.6, 23.9, 26.1),
            _timed("broken", 0.99, 0.99, 40.0, 30.0, 50.0),
        ],
        o,
        "valid",
    )
    by = {s.name: s for s in r.standings}
    assert [s.name for s in r.standings] == ["straddles", "met", "broken"]
    assert r.best == "straddles"
    assert by["met"].feasible is True and by["met"].violations == ()
    assert by["broken"].feasible is False and by["broken"].violations[0].status == "broken"
    straddles = by["straddles"]
    assert straddles.feasible is None and straddles.eligible
    assert [v.describe() for v in straddles.undecided] == [
        "latency_p95_ms 24.6 [23.9, 26.1] undecided against max 25"
    ]
    verdict = judge(r, o)
    assert verdict.status == "inconclusive"  # the target is met, the constraint is not decided
    assert "0.9500 >= target 0.8; but latency_p95_ms 24.6 [23.9, 26.1] undecided" in verdict.reason
    missed = obj(target=0.97, constraints={"latency_p95_ms": {"max": 25}})
    assert judge(
        rank([_timed("straddles", 0.95, 0.95, 24.6, 23.9, 26.1)], missed, "valid"), missed
    ).status == ("fail")


def test_a_point_past_the_limit_with_the_interval_across_it_is_undecided_not_broken() -> None:
    o = obj(constraints={"recall_macro": {"min": 0.7}})
    close = Evaluation(
        "close",
        "candidate",
        "estimator",
        "",
        metrics={"valid": {"accuracy": 0.9, "recall_macro": 0.69}, "test": {"accuracy": 0.9}},
        intervals={"valid": {"recall_macro": (0.6, 0.78)}},
    )
    far = Evaluation(
        "far",
        "candidate",
        "estimator",
        "",
        metrics={"valid": {"accuracy": 0.95, "recall_macro": 0.5}, "test": {"accuracy": 0.95}},
        intervals={"valid": {"recall_macro": (0.42, 0.58)}},
    )
    r = rank([close, far], o, "valid")
    assert r.best == "close"
    assert r.standings[0].violations[0].status == "undecided"
    assert r.standings[1].violations[0].describe() == "recall_macro 0.5 < min 0.7 (by 0.2)"
