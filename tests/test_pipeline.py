"""The main job end to end, in-process: ladder + candidates -> ranking -> verdict -> store + report."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flywheel.errors import FlywheelError, ModelError, ProjectError
from flywheel.pipeline import run
from flywheel.registry import RunRow, open_store
from helpers import tabular_frame, write_project

RULES = """
def predict(rows):
    return ["yes" if x > 0 else "no" for x in rows["x1"]]
"""

MODELS = """
from sklearn.ensemble import RandomForestClassifier


def forest(n=20):
    return RandomForestClassifier(n_estimators=n, random_state=0)


class Broken:
    def fit(self, X, y):
        raise RuntimeError("this model always fails")

    def predict(self, X):
        return X


def broken():
    return Broken()
"""

TABULAR = """\
project: tabular
data: {source: data.csv, target: label, id: id, split: {test: 0.25, valid: 0.25, seed: 1}}
objective:
  optimize: f1_macro
  target: 0.5
  constraints: {size_mb: {max: 50}}
baselines:
  rules: [my_rules:predict]
  human: {f1_macro: 0.95, tier: expert, n: 200, source: test}
models:
  - {name: forest, factory: "my_models:forest", params: {n: 30}}
  - {name: tree, estimator: sklearn.tree.DecisionTreeClassifier, params: {max_depth: 3}}
  - {name: broken, factory: "my_models:broken"}
  - {name: vendor, predictions: vendor.csv}
"""


def _tabular(tmp_path: Path, project: str = TABULAR) -> Path:
    frame = tabular_frame(400)
    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "my_rules.py").write_text(RULES)
    (tmp_path / "my_models.py").write_text(MODELS)
    vendor = pd.DataFrame({"id": frame["id"], "prediction": np.where(frame["x1"] > 0.1, "yes", "no")})
    vendor["proba_yes"] = 1 / (1 + np.exp(-3 * frame["x1"]))
    vendor["proba_no"] = 1 - vendor["proba_yes"]
    vendor.sample(frac=1, random_state=0).to_csv(tmp_path / "vendor.csv", index=False)
    return write_project(tmp_path, project)


def test_iris_run_ranks_stores_and_reports(iris_project: Path) -> None:
    began = time.perf_counter()
    result = run(iris_project)
    spent = time.perf_counter() - began
    # Where the time went, stage by stage, in the order they ran; together no more than the run.
    stages = ["data", "ladder and candidates", "learning curve and forecast", "diagnosis", "scoping"]
    assert list(result.timings) == [*stages, "report", "store"]
    assert all(v >= 0 for v in result.timings.values()) and sum(result.timings.values()) <= spent
    db = open_store(iris_project.parent / ".flywheel")
    stored = db.get_run(result.run_id)
    db.close()
    assert stored is not None and stored["timings"] == result.timings  # the store's own time too
    page = result.report_path.read_text() if result.report_path else ""
    assert 'id="timings"' in page and "ladder and candidates" in page
    names = [e.name for e in result.evaluations]
    assert names == ["dummy", "random", "one-feature", "linear", "boosted-trees"]
    assert result.ranking.best in ("linear", "boosted-trees", "one-feature")
    linear = result.evaluation("linear")
    assert linear.value("accuracy", "test") is not None and linear.value("accuracy", "test") > 0.8
    assert result.evaluation("dummy").value("accuracy", "valid") == pytest.approx(1 / 3, abs=0.05)
    # 36 test rows: the interval around 0.94 contains the 0.9 target, so the verdict waits for data.
    assert result.verdict.status == "inconclusive"
    assert "contains the target 0.9" in result.verdict.reason
    low, high = linear.interval("accuracy", "test")  # type: ignore[misc]
    assert low < linear.value("accuracy", "test") <= high  # type: ignore[operator]
    assert result.report_path is not None and result.report_path.exists()
    assert (result.report_path.parent / "latest.html").read_text() == result.report_path.read_text()
    store = open_store(iris_project.parent / ".flywheel")
    assert store.list_runs()[0]["id"] == result.run_id
    store.close()


def test_every_kind_of_candidate_is_judged_the_same_way(tmp_path: Path) -> None:
    result = run(_tabular(tmp_path))
    by = {e.name: e for e in result.evaluations}
    assert list(by) == [
        "dummy",
        "random",
        "rule:predict",
        "one-feature",
        "keywords",
        "linear",
        "boosted-trees",
        "forest",
        "tree",
        "broken",
        "vendor",
    ]
    # A failure is reported with its reason and never scored.
    assert by["broken"].error == "RuntimeError: this model always fails"
    assert by["broken"].metrics == {}
    assert "broken" not in [s.name for s in result.ranking.standings]
    # The rule and the vendor file are scored on the same rows as fitted models.
    for name in ("rule:predict", "vendor", "forest"):
        assert by[name].n_rows == by["linear"].n_rows
        assert by[name].value("f1_macro", "test") is not None
    assert by["vendor"].value("roc_auc", "test") is not None  # its probability columns were joined
    assert by["rule:predict"].value("roc_auc", "test") is None  # a rule gives labels only
    # A file of predictions has no size: its size constraint cannot be checked.
    vendor = next(s for s in result.ranking.standings if s.name == "vendor")
    assert vendor.feasible is None and vendor.violations[0].describe() == "size_mb not measured"
    # The best model is the feasible one with the highest f1_macro on valid.
    feasible = [s for s in result.ranking.standings if s.feasible]
    assert result.ranking.best == max(feasible, key=lambda s: s.value or 0).name
    assert result.declared[0]["values"] == {"f1_macro": 0.95} and result.declared[0]["declared"]


def test_vendor_predictions_are_joined_by_id_not_position(tmp_path: Path) -> None:
    result = run(_tabular(tmp_path), save=False, report=False)
    frame = pd.read_csv(tmp_path / "data.csv")
    expected = np.where(frame["x1"] > 0.1, "yes", "no")
    test_rows = result.evaluation("vendor").predictions["test"]
    linear_rows = result.evaluation("linear").predictions["test"]
    assert len(test_rows) == len(linear_rows)
    # Recompute the vendor's accuracy from the source rows to prove the join.
    from flywheel.data import load_dataset, split_dataset
    from flywheel.project import load_project

    project = load_project(tmp_path)
    ds = load_dataset(project.data, project.root)
    split = split_dataset(ds, project.data.split)
    assert list(test_rows) == list(expected[ds.rows[split.test]])


def test_constraints_make_models_infeasible(tmp_path: Path) -> None:
    text = TABULAR.replace("{size_mb: {max: 50}}", "{size_mb: {max: 0.000001}}")
    result = run(_tabular(tmp_path, text), save=False, report=False)
    fitted = [s for s in result.ranking.standings if s.name in ("dummy", "linear", "forest")]
    assert all(s.feasible is False for s in fitted)
    assert all("size_mb" in s.violations[0].describe() for s in fitted)
    assert result.ranking.best in (None, "rule:predict")


def test_regression_ranks_lower_is_better(tmp_path: Path) -> None:
    path = write_project(
        tmp_path,
        """\
        project: diabetes
        data: {source: builtin:diabetes, target: progression}
        objective: {optimize: rmse, target: 40}
    """,
    )
    result = run(path, save=False, report=False)
    dummy, linear = result.evaluation("mean"), result.evaluation("linear")
    assert linear.value("rmse", "valid") < dummy.value("rmse", "valid")  # type: ignore[operator]
    best = next(s for s in result.ranking.standings if s.name == result.ranking.best)
    assert all(best.value <= s.value for s in result.ranking.standings if s.value is not None)  # type: ignore[operator]
    assert result.verdict.status == "fail"  # rmse 40 is far below what a linear model reaches
    assert "> target 40" in result.verdict.reason


@pytest.mark.parametrize(
    ("change", "error", "expected"),
    [
        (
            ("optimize: f1_macro", "optimize: rmse"),
            ProjectError,
            "objective.optimize 'rmse' does not apply to a binary target",
        ),
        (
            ("sklearn.tree.DecisionTreeClassifier", "sklearn.tree.NoSuchTree"),
            ModelError,
            "models[1].estimator 'sklearn.tree.NoSuchTree' does not import: module 'sklearn.tree' has no "
            "attribute 'NoSuchTree'",
        ),
        (
            ("my_models:forest", "not_a_module:forest"),
            ModelError,
            "models[0].factory 'not_a_module:forest' does not import: ModuleNotFoundError",
        ),
        (
            ("{max_depth: 3}", "{depth: 3}"),
            ModelError,
            "models[1] 'sklearn.tree.DecisionTreeClassifier' cannot be built with params {'depth': 3}",
        ),
        (
            ("{max_depth: 3}", "{max_depth: -3}"),  # a value scikit-learn itself refuses, before any fit
            ModelError,
            "models[1] 'sklearn.tree.DecisionTreeClassifier' cannot be built with params {'max_depth': -3}: "
            "InvalidParameterError: The 'max_depth' parameter",
        ),
        (
            ("my_rules:predict", "my_rules:nothing"),
            ModelError,
            "baselines.rules[0] 'my_rules:nothing' does not import",
        ),
        (("vendor.csv", "nowhere.csv"), FlywheelError, "models[3].predictions 'nowhere.csv' does not exist"),
        (("target: 0.5", "target: 1.5"), ProjectError, "objective.target must lie in [0, 1]"),
    ],
)
def test_bad_input_fails_before_anything_is_written(
    tmp_path: Path, change: tuple[str, str], error: type[Exception], expected: str
) -> None:
    good = _tabular(tmp_path)
    run(good, report=False)
    good.write_text(TABULAR.replace(*change))
    with pytest.raises(error) as info:
        run(good)
    assert expected in str(info.value)
    store = open_store(tmp_path / ".flywheel")
    assert store.count(RunRow) == 1
    store.close()
    assert not (tmp_path / ".flywheel" / "reports").exists()


def test_prediction_file_with_missing_ids(tmp_path: Path) -> None:
    path = _tabular(tmp_path)
    vendor = pd.read_csv(tmp_path / "vendor.csv")
    vendor["id"] = vendor["id"].str.replace("r", "x")
    vendor.to_csv(tmp_path / "vendor.csv", index=False)
    with pytest.raises(ModelError, match=r"of 200 valid/test rows have no prediction \(ids r0"):
        run(path)


def test_prediction_file_with_unknown_labels(tmp_path: Path) -> None:
    path = _tabular(tmp_path)
    vendor = pd.read_csv(tmp_path / "vendor.csv")
    vendor.loc[0, "prediction"] = "maybe"
    vendor.to_csv(tmp_path / "vendor.csv", index=False)
    with pytest.raises(ModelError, match="predicts 'maybe', which is not a class of the target"):
        run(path)


def test_rule_returning_garbage_is_a_failed_rung_not_a_crash(tmp_path: Path) -> None:
    path = _tabular(tmp_path)
    (tmp_path / "my_rules.py").write_text("def predict(rows):\n    return ['perhaps'] * len(rows)\n")
    result = run(path, save=False, report=False)
    rule = result.evaluation("rule:predict")
    assert rule.error is not None and "'perhaps', which is not a class" in rule.error
    assert result.ranking.best is not None


def test_no_valid_split_ranks_on_test(tmp_path: Path) -> None:
    path = write_project(
        tmp_path,
        """\
        project: iris
        data: {source: builtin:iris, target: species, split: {valid: 0, test: 0.3}}
        objective: {optimize: accuracy}
    """,
    )
    result = run(path, save=False, report=False)
    assert result.ranking.selection_split == "test"
    assert result.verdict.status == "inconclusive" and "no success target" in result.verdict.reason
    assert result.notes == ["no valid split: models are ranked on test"]


def test_evaluations_carry_intervals_and_paired_comparisons(tmp_path: Path) -> None:
    path = write_project(
        tmp_path,
        """\
        project: digits
        data: {source: builtin:digits, target: digit, split: {seed: 1}}
        objective: {optimize: "recall[class=8]", constraints: {accuracy: {min: 0.5}}}
    """,
    )
    result = run(path, save=False, report=False)
    linear, dummy = result.evaluation("linear"), result.evaluation("dummy")
    for split in ("valid", "test"):
        low, high = linear.interval("recall[class=8]", split)  # type: ignore[misc]
        assert low <= linear.value("recall[class=8]", split) <= high  # type: ignore[operator]
    assert result.ranking.best in ("linear", "boosted-trees")
    dummy_standing = next(s for s in result.ranking.standings if s.name == "dummy")
    assert dummy_standing.versus_best is not None and dummy_standing.distinguishable is True
    assert dummy_standing.versus_best["verdict"] == "better"  # the best beats the dummy
    assert dummy.value("accuracy", "valid") < 0.5  # type: ignore[operator]
    assert dummy_standing.feasible is False
    payload = result.to_dict()
    assert payload["evaluations"][1]["intervals"]["valid"]["recall[class=8]"]


def test_per_class_metric_must_name_a_real_class(tmp_path: Path) -> None:
    path = write_project(
        tmp_path,
        """\
        project: digits
        data: {source: builtin:digits, target: digit}
        objective: {optimize: "recall[class=11]"}
    """,
    )
    with pytest.raises(ProjectError, match=r"names class '11', which the target does not have"):
        run(path)


def test_confidence_constraints_are_computed_at_their_level(tmp_path: Path) -> None:
    path = write_project(
        tmp_path,
        """\
        project: iris
        data: {source: builtin:iris, target: species, split: {seed: 2}}
        objective: {optimize: accuracy, constraints: {recall_macro: {min: 0.5, confidence: 0.8}}}
    """,
    )
    result = run(path, save=False, report=False)
    linear = result.evaluation("linear")
    low80, high80 = linear.bounds["valid"]["recall_macro@0.8"]
    low95, high95 = linear.interval("recall_macro", "valid")  # type: ignore[misc]
    assert low95 <= low80 <= high80 <= high95  # an 80% interval sits inside the 95% one


def test_a_weighted_objective_ranks_by_the_normalised_average(tmp_path: Path) -> None:
    path = write_project(
        tmp_path,
        """\
        project: weighted
        data: {source: builtin:breast_cancer, target: diagnosis, split: {seed: 4}}
        objective: {weights: {roc_auc: 2, log_loss: 1}, target: 0.5}
        baselines: {human: {roc_auc: 0.99}}
    """,
    )
    result = run(path, save=False, report=False)
    dummy = result.evaluation("dummy")
    assert dummy.value("objective", "valid") == 0.0
    best = next(s for s in result.ranking.standings if s.name == result.ranking.best)
    assert best.value == max(s.value for s in result.ranking.standings if s.value is not None)
    assert result.objective.to_dict()["weights"] == {"roc_auc": 2.0, "log_loss": 1.0}
    assert len(result.sensitivity) == 4
    assert result.need_ml is not None and "roc_auc" in result.need_ml.reason  # the heaviest weight
    assert result.verdict.status in ("pass", "fail")
