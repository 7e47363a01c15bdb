"""The baseline ladder: a shared check suite over every rung, the rules, and "do we need ML?"."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from flywheel.baselines import (
    KeywordRule,
    OneFeatureLinear,
    OneFeatureRule,
    build_ladder,
    measure_annotators,
    need_ml,
)
from flywheel.data import load_dataset, split_dataset
from flywheel.errors import DataError
from flywheel.evaluation import evaluate
from flywheel.metrics import parse_metric, wilson_interval
from flywheel.pipeline import run
from flywheel.project import load_project
from helpers import tabular_frame, write_project

PROJECT = """\
project: ladder
data: {source: data.csv, target: label, id: id, split: {seed: 3}}
objective: {optimize: accuracy}
baselines: {time_budget_s: 60}
"""


def _setup(tmp_path: Path, frame: pd.DataFrame, text: str = PROJECT):  # type: ignore[no-untyped-def]
    frame.to_csv(tmp_path / "data.csv", index=False)
    project = load_project(write_project(tmp_path, text))
    ds = load_dataset(project.data, project.root)
    return project, ds, split_dataset(ds, project.data.split)


def _awkward_frame(n: int = 300) -> pd.DataFrame:
    """Everything at once: constant and missing numbers, a high-cardinality category, text."""
    frame = tabular_frame(n)
    rng = np.random.default_rng(1)
    frame["constant"] = 1.0
    frame.loc[rng.random(n) < 0.2, "x2"] = np.nan
    frame["user"] = [f"u{i}" for i in rng.integers(0, 250, n)]
    frame.loc[rng.random(n) < 0.1, "colour"] = None
    return frame


def test_every_rung_handles_awkward_columns_and_is_deterministic(tmp_path: Path) -> None:
    project, ds, split = _setup(tmp_path, _awkward_frame())
    assert {"x1", "x2", "constant"} <= set(ds.columns.numeric) and "user" in ds.columns.categorical
    assert ds.columns.text == ("review",)
    rungs = build_ladder(project, ds)
    assert [r.name for r in rungs] == [
        "dummy",
        "random",
        "one-feature",
        "keywords",
        "linear",
        "boosted-trees",
    ]
    for rung in rungs:
        first = evaluate(rung, ds, split, ["accuracy", "roc_auc"], n_resamples=50)
        second = evaluate(rung, ds, split, ["accuracy", "roc_auc"], n_resamples=50)
        assert first.ok, (rung.name, first.error)
        assert np.array_equal(first.predictions["test"], second.predictions["test"]), rung.name
        assert first.metrics == second.metrics, rung.name
        assert {"fit_time_s", "size_mb", "latency_p95_ms"} <= set(first.systems), rung.name


def test_regression_rungs(tmp_path: Path) -> None:
    frame = _awkward_frame()
    frame["label"] = frame["x1"] * 3 + np.random.default_rng(0).normal(size=len(frame))
    project, ds, split = _setup(tmp_path, frame, PROJECT.replace("accuracy", "rmse"))
    rungs = build_ladder(project, ds)
    assert [r.name for r in rungs] == ["mean", "median", "one-feature", "linear", "boosted-trees"]
    results = {r.name: evaluate(r, ds, split, ["rmse"], n_resamples=50) for r in rungs}
    assert all(e.ok for e in results.values())
    assert results["one-feature"].value("rmse", "test") < results["mean"].value("rmse", "test")  # type: ignore[operator]


def test_one_class_in_train_gives_a_clear_error_or_a_result(tmp_path: Path) -> None:
    from dataclasses import replace

    frame = tabular_frame(200)
    project, ds, split = _setup(tmp_path, frame)
    # The splitter refuses a train split with one class; build one by hand to check each rung.
    train_classes = {"yes"}
    split = replace(split, train=split.train[ds.y[split.train] == "yes"])
    for rung in build_ladder(project, ds):
        ev = evaluate(rung, ds, split, ["accuracy"], n_resamples=20)
        if not ev.ok:
            assert ev.error is not None and "\n" not in ev.error
        else:
            assert ev.value("accuracy", "test") is not None
    assert set(ds.y[split.train]) == train_classes


def test_one_feature_rule_finds_the_informative_column() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"noise": rng.normal(size=500), "signal": rng.normal(size=500), "kind": rng.choice(list("abc"), 500)}
    )
    y = np.where(frame["signal"] > 0.3, "up", "down")
    rule = OneFeatureRule(("noise", "signal"), ("kind",)).fit(frame, y)
    assert rule.column_ == "signal" and rule.train_accuracy_ > 0.95
    assert (rule.predict(frame) == y).mean() > 0.95
    assert np.allclose(rule.predict_proba(frame).sum(axis=1), 1)
    lookup = OneFeatureRule((), ("kind",)).fit(frame, np.where(frame["kind"] == "b", "B", "other"))
    assert lookup.train_accuracy_ == 1.0
    line = OneFeatureLinear(("noise", "signal"), ("kind",)).fit(frame, 2 * frame["signal"] + 1)
    assert line.column_ == "signal" and np.allclose(line.predict(frame), 2 * frame["signal"] + 1)


def test_keyword_rule_learns_telling_words() -> None:
    texts = ["refund please now", "great product love it", "refund my money", "love this so much"] * 30
    labels = ["complaint", "praise", "complaint", "praise"] * 30
    frame = pd.DataFrame({"text": texts})
    rule = KeywordRule(("text",)).fit(frame, labels)
    assert (rule.predict(frame) == np.array(labels)).all()
    assert ("refund", "complaint") in rule.keywords_


# --- do we need ML? -------------------------------------------------------------------------------


def _need_ml(tmp_path: Path, frame: pd.DataFrame, text: str = PROJECT):  # type: ignore[no-untyped-def]
    project, ds, split = _setup(tmp_path, frame, text)
    evaluations = [evaluate(r, ds, split, ["accuracy"], n_resamples=500) for r in build_ladder(project, ds)]
    return need_ml(evaluations, ds, split, parse_metric("accuracy"), "valid", margin=0.02)


def test_a_rule_that_is_optimal_means_no_ml(tmp_path: Path) -> None:
    frame = tabular_frame(1500)
    frame["label"] = np.where(frame["x1"] > 0.2, "yes", "no")  # one threshold is the whole truth
    verdict = _need_ml(tmp_path, frame)
    assert verdict.answer == "no", verdict.reason
    assert verdict.best_simple == "one-feature"


def test_an_interaction_means_ml(tmp_path: Path) -> None:
    frame = tabular_frame(1500)
    frame["label"] = np.where(frame["x1"] * frame["x2"] > 0, "yes", "no")  # no single feature tells
    verdict = _need_ml(tmp_path, frame)
    assert verdict.answer == "yes", verdict.reason
    assert verdict.comparison is not None and verdict.comparison["low"] > 0.02


def test_a_tiny_test_set_is_not_yet_clear(tmp_path: Path) -> None:
    frame = tabular_frame(40)
    rng = np.random.default_rng(2)
    frame["label"] = np.where(frame["x1"] + 0.8 * rng.normal(size=40) > 0, "yes", "no")
    verdict = _need_ml(tmp_path, frame, PROJECT.replace("seed: 3", "seed: 3, test: 0.3, valid: 0.3"))
    assert verdict.answer == "not yet clear", verdict.reason


def test_need_ml_is_in_the_run_result_and_json(tmp_path: Path) -> None:
    frame = tabular_frame(300)
    frame.to_csv(tmp_path / "data.csv", index=False)
    result = run(write_project(tmp_path, PROJECT), save=False, report=False)
    assert result.need_ml is not None and result.need_ml.answer in ("yes", "no", "not yet clear")
    payload = result.to_dict()
    assert payload["need_ml"]["answer"] == result.need_ml.answer
    kinds = {row["name"]: row["kind"] for row in payload["ladder"]}
    assert kinds["dummy"] == "constant" and kinds["one-feature"] == "rule" and kinds["linear"] == "model"
    dummy = next(r for r in payload["ladder"] if r["name"] == "dummy")
    assert dummy["gain"] == 0.0


# --- humans ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(49, 50), (0, 10), (10, 10), (500, 1000), (3, 7)])
def test_wilson_matches_scipy(k: int, n: int) -> None:
    ref = stats.binomtest(k, n).proportion_ci(method="wilson")
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(ref.low, abs=1e-9) and high == pytest.approx(ref.high, abs=1e-9)


def test_declared_human_gets_a_wilson_interval(tmp_path: Path) -> None:
    frame = tabular_frame(200)
    frame.to_csv(tmp_path / "data.csv", index=False)
    text = PROJECT.replace(
        "baselines: {time_budget_s: 60}", "baselines: {human: {accuracy: 0.9, n: 50, tier: crowd}}"
    )
    result = run(write_project(tmp_path, text), save=False, report=False)
    human = next(r for r in result.ladder if r["name"] == "human")
    ref = stats.binomtest(45, 50).proportion_ci(method="wilson")
    assert human["low"] == pytest.approx(ref.low) and human["role"] == "declared"


def test_annotators_measure_human_level(tmp_path: Path) -> None:
    frame = tabular_frame(200)
    _, ds, _ = _setup(tmp_path, frame)
    rows = []
    rng = np.random.default_rng(0)
    truth = dict(zip(frame["id"], frame["label"], strict=True))
    for item in frame["id"][:100]:
        for name, skill in (("ann", 0.95), ("bob", 0.85), ("cat", 0.75)):
            right = truth[item]
            label = right if rng.random() < skill else ("no" if right == "yes" else "yes")
            rows.append({"id": item, "annotator": name, "label": label})
    pd.DataFrame(rows).to_csv(tmp_path / "ann.csv", index=False)
    level = measure_annotators(tmp_path / "ann.csv", ds, "accuracy", given="ann.csv")
    assert set(level.annotators) == {"ann", "bob", "cat"}
    assert level.annotators["ann"]["value"] > level.annotators["cat"]["value"]
    assert level.n_rows == 100 and level.low is not None and level.low <= level.value <= level.high  # type: ignore[operator]
    own = pd.DataFrame(rows).query("annotator == 'bob'")
    expected = np.mean([truth[i] == lab for i, lab in zip(own["id"], own["label"], strict=True)])
    assert level.annotators["bob"]["value"] == pytest.approx(expected)
    pd.DataFrame([{"id": "nope", "annotator": "x", "label": "yes"}]).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match="rows whose id is not in the data"):
        measure_annotators(tmp_path / "bad.csv", ds, "accuracy", given="bad.csv")


# --- execution ------------------------------------------------------------------------------------


def _sleep() -> int:
    time.sleep(30)
    return 1


def _boom() -> int:
    raise RuntimeError("boom\nsecond line")


def _die() -> int:
    import os

    os._exit(3)


def test_local_executor_budgets_failures_and_order() -> None:
    from flywheel.execution import LocalExecutor, Task

    tasks = [
        Task("slow", _sleep, 0.5),
        Task("ok", lambda: 42, 10),
        Task("boom", _boom, 10),
        Task("dies", _die, 10),
    ]
    started = time.perf_counter()
    outcomes = LocalExecutor(workers=2).run(tasks)
    assert time.perf_counter() - started < 15
    assert [o.name for o in outcomes] == ["slow", "ok", "boom", "dies"]
    assert outcomes[0].error == "ran past its time budget of 0.5 s"
    assert outcomes[1].value == 42 and outcomes[1].error is None
    assert outcomes[2].error == "RuntimeError: boom"
    assert outcomes[3].error == "the process died (exit code 3)"


def _threads() -> int:
    from threadpoolctl import threadpool_info

    return max(info["num_threads"] for info in threadpool_info())


def test_a_task_gets_the_threads_of_the_cores_it_does_not_share() -> None:
    """One thread each while the workers are all busy; every core's for a task that runs alone."""
    import os

    from flywheel.execution import LocalExecutor, Task

    cores = os.cpu_count() or 1
    alone = LocalExecutor(workers=2).run([Task("alone", _threads, 60)])
    assert alone[0].value == cores
    busy = LocalExecutor(workers=2).run([Task(f"t{i}", _threads, 60) for i in range(3)])
    assert [o.value for o in busy[:2]] == [max(1, cores // 2)] * 2


def test_warm_up_starts_one_fork_server_that_the_tasks_then_use() -> None:
    """A command starts the fork server first, so its imports overlap the command's own."""
    from multiprocessing import forkserver

    from flywheel.execution import LocalExecutor, Task

    LocalExecutor.warm_up()
    server = forkserver._forkserver
    pid = server._forkserver_pid
    assert pid is not None and os.waitpid(pid, os.WNOHANG) == (0, 0)  # started, still running
    LocalExecutor.warm_up()
    assert server._forkserver_pid == pid  # once
    [done] = LocalExecutor(workers=1).run([Task("after", lambda: os.getppid(), 60)])
    assert done.value == pid  # forked by that same server


def test_results_do_not_depend_on_the_number_of_workers(tmp_path: Path) -> None:
    from flywheel.execution import LocalExecutor

    frame = tabular_frame(300)
    frame.to_csv(tmp_path / "data.csv", index=False)
    path = write_project(tmp_path, PROJECT)
    one = run(path, save=False, report=False, executor=LocalExecutor(1))
    two = run(path, save=False, report=False, executor=LocalExecutor(2))
    for a, b in zip(one.evaluations, two.evaluations, strict=True):
        assert a.name == b.name and a.metrics == b.metrics and _quality(a.intervals) == _quality(b.intervals)


def test_a_rung_past_its_budget_is_reported_and_the_ladder_goes_on(tmp_path: Path) -> None:
    frame = tabular_frame(300)
    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "slow_rules.py").write_text("import time\n\ndef predict(rows):\n    time.sleep(300)\n")
    # A budget the other rungs meet on a busy machine too (fitting with the measurements can take
    # a few seconds there); the rule sleeps far past it.
    text = PROJECT.replace(
        "baselines: {time_budget_s: 60}", "baselines: {time_budget_s: 12, rules: ['slow_rules:predict']}"
    )
    result = run(write_project(tmp_path, text), save=False, report=False)
    slow = result.evaluation("rule:predict")
    assert slow.error == "ran past its time budget of 12 s" and slow.metrics == {}
    assert result.evaluation("linear").ok


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("    raise KeyError('no column called price')\n", "KeyError: 'no column called price'"),
        ("    return ['yes']\n", "the rule returned shape (1,); expected ("),
        ("    return ['maybe'] * len(rows)\n", "the rule returned 'maybe', which is not a class"),
    ],
)
def test_a_broken_rule_is_a_failed_rung_and_the_ladder_goes_on(
    tmp_path: Path, body: str, expected: str
) -> None:
    tabular_frame(200).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "bad_rules.py").write_text("def predict(rows):\n" + body)
    text = PROJECT.replace("baselines: {time_budget_s: 60}", "baselines: {rules: ['bad_rules:predict']}")
    result = run(write_project(tmp_path, text), save=False, report=False)
    rule = result.evaluation("rule:predict")
    assert rule.error is not None and expected in rule.error and "\n" not in rule.error
    assert result.evaluation("linear").ok and result.need_ml is not None


def test_a_declared_metric_for_another_task_is_left_out_with_a_note(tmp_path: Path) -> None:
    tabular_frame(200).to_csv(tmp_path / "data.csv", index=False)
    text = PROJECT.replace(
        "baselines: {time_budget_s: 60}", "baselines: {external: [{name: paper, rmse: 3.2, accuracy: 0.9}]}"
    )
    result = run(write_project(tmp_path, text), save=False, report=False)
    assert result.declared[0]["values"] == {"accuracy": 0.9}
    assert "baselines.external[0]: rmse does not apply to a binary target; left out" in result.notes


def _quality(intervals: dict) -> dict:  # type: ignore[type-arg]
    """Intervals of quality metrics; timings (split "systems") differ from run to run by nature."""
    return {k: v for k, v in intervals.items() if k != "systems"}


def test_a_rung_is_only_priced_in_latency_when_its_timing_differs() -> None:
    """``random`` is no slower than ``dummy`` when their intervals overlap: the step is ≈, not +4.8 ms."""
    from flywheel.baselines import ladder_table
    from flywheel.evaluation import Evaluation
    from flywheel.metrics import parse_metric

    def rung(name: str, stage: str, p95: float, low: float, high: float) -> Evaluation:
        return Evaluation(
            name,
            "baseline",
            "rung",
            "",
            stage,
            metrics={"test": {"accuracy": 0.5}},
            systems={"latency_p95_ms": p95, "size_mb": 0.001},
            intervals={"systems": {"latency_p95_ms": (low, high)}},
        )

    rows = ladder_table(
        [
            rung("dummy", "constant", 0.05, 0.04, 0.30),
            rung("random", "chance", 0.20, 0.05, 0.40),
            rung("linear", "model", 2.0, 1.8, 2.2),
        ],
        parse_metric("accuracy"),
        [],
    )
    steps = {r["name"]: r["step"] for r in rows}
    assert steps["dummy"] is None
    assert steps["random"]["latency_p95_ms"] is None and steps["random"]["size_mb"] == 0
    assert steps["linear"]["latency_p95_ms"] == pytest.approx(1.8)


def test_a_declared_result_beyond_human_level_raises_the_ceiling() -> None:
    """Not a gain of 101 % for a published result: the best known level is the ceiling."""
    from flywheel.baselines import ladder_table
    from flywheel.evaluation import Evaluation
    from flywheel.metrics import parse_metric

    dummy = Evaluation("dummy", "baseline", "rung", "", "constant", metrics={"test": {"accuracy": 0.1}})
    declared = [
        {"name": "human", "kind": "human", "values": {"accuracy": 0.985}},
        {"name": "published result", "kind": "external", "values": {"accuracy": 0.992}},
    ]
    rows = {r["name"]: r for r in ladder_table([dummy], parse_metric("accuracy"), declared)}
    assert rows["published result"]["gain"] == pytest.approx(1.0)
    assert rows["human"]["gain"] == pytest.approx((0.985 - 0.1) / (0.992 - 0.1))
    alone = {r["name"]: r for r in ladder_table([dummy], parse_metric("accuracy"), declared[:1])}
    assert alone["human"]["gain"] == pytest.approx(1.0)
