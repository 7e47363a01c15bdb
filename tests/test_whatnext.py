"""`flywheel run`, `diagnose` and `forecast` end to end: what to do next, in the result, report and CLI."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from flywheel.errors import ProjectError
from flywheel.pipeline import run
from flywheel.project import load_project
from helpers import IRIS_PROJECT, write_project

CLI = Callable[..., subprocess.CompletedProcess[str]]

DIGITS = """\
project: digits-next
data:
  source: builtin:digits
  target: digit
  split: {test: 0.2, valid: 0.2, seed: 2, train_dev: 0.1}
objective:
  optimize: accuracy
  target: 0.99
costs: {label: 0.05}
baselines:
  human: {accuracy: 0.985, n: 500, source: "a study"}
diagnosis: {sizes: 6, seeds: 2}
models:
  - {name: logreg, estimator: sklearn.linear_model.LogisticRegression, params: {max_iter: 300}}
"""


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("digits")
    return run(write_project(folder, DIGITS)), folder


def test_run_diagnoses_the_best_model(digits_run) -> None:  # type: ignore[no-untyped-def]
    result, _ = digits_run
    d = result.diagnosis
    assert d is not None and d.model == result.ranking.best
    bv = d.bias_variance
    assert bv is not None and bv.human_source == "declared"
    assert list(bv.errors) == ["human", "train", "train_dev", "valid"]
    assert {c.name for c in bv.components} == {"avoidable bias", "variance", "data mismatch"}
    assert d.classes and d.searched["tested"] > 0
    assert d.actions and d.lead is d.actions[0]
    fc = result.forecast
    assert fc is not None and fc.status in ("reachable", "unreachable", "met")
    assert fc.n_train == result.split["train"] and fc.cost_per_label == 0.05
    assert d.curve is not None and {p["size"] for p in d.curve.summary()}
    # Plain JSON: no numpy scalars leak out of the diagnosis.
    json.dumps({"diagnosis": result.to_dict()["diagnosis"], "forecast": result.to_dict()["forecast"]})


def test_report_leads_with_what_to_do_next(digits_run) -> None:  # type: ignore[no-untyped-def]
    result, _ = digits_run
    html = result.report_path.read_text(encoding="utf-8")
    assert html.index("What to do next") < html.index("Do we need ML?")
    for marker in ('id="lead-action"', 'id="bias-variance"', 'id="curve-chart"', 'id="forecast"', "declared"):
        assert marker in html
    for marker in ('id="confusion-chart"', 'id="calibration-chart"', 'id="calibration-text"'):
        assert marker in html  # ten digits: a confusion matrix and the top class's calibration
    assert re.findall(r"<script[^>]*>", html) == ['<script src="plotly.min.js">', "<script>"]


def test_history_file_is_read_against_the_baselines(tmp_path: Path) -> None:
    (tmp_path / "iris").mkdir()
    (tmp_path / "iris" / "history.csv").write_text(
        "step,train,valid\n1,0.80,0.78\n2,0.90,0.88\n3,0.97,0.93\n4,0.99,0.90\n5,1.0,0.86\n", encoding="utf-8"
    )
    path = write_project(
        tmp_path / "iris", IRIS_PROJECT + "diagnosis: {forecast: false, history: history.csv}\n"
    )
    result = run(path, save=False, report=False)
    assert result.forecast is None
    d = result.diagnosis
    assert d is not None and d.history is not None
    assert any(f.kind == "stop early" and "step 3" in f.text for f in d.history_findings)
    assert any(a.kind == "variance" and "early" in a.title.lower() for a in d.actions)


def test_bad_history_and_bad_settings_fail_before_fitting(tmp_path: Path) -> None:
    folder = tmp_path / "iris"
    folder.mkdir()
    (folder / "history.csv").write_text("epoch,loss\n1,0.5\n", encoding="utf-8")
    path = write_project(folder, IRIS_PROJECT + "diagnosis: {history: history.csv}\n")
    with pytest.raises(Exception, match="lacks column 'step'"):
        run(path, save=False, report=False)
    assert not (folder / ".flywheel").exists()
    write_project(folder, IRIS_PROJECT + "diagnosis: {sizes: 3}\n")
    with pytest.raises(ProjectError, match=r"diagnosis.sizes must be >= 4"):
        load_project(folder)
    write_project(folder, IRIS_PROJECT + "data2: 1\n")
    with pytest.raises(ProjectError):
        load_project(folder)


def test_forecast_target_out_of_range_is_refused_before_fitting(iris_project: Path) -> None:
    with pytest.raises(ProjectError, match=r"--target 1.5 is outside accuracy's range \[0, 1\]"):
        run(iris_project, save=False, report=False, target=1.5)


def test_cli_diagnose_and_forecast(cli: CLI, iris_project: Path) -> None:
    shown = cli("diagnose", str(iris_project), "--no-forecast")
    assert shown.returncode == 0, shown.stderr
    assert "bias/variance" in shown.stdout
    assert "What to do next" in shown.stdout
    assert not (iris_project.parent / ".flywheel").exists()  # diagnose stores nothing
    fc = cli("forecast", str(iris_project), "--json", "--target", "0.99")
    assert fc.returncode in (0, 3), fc.stderr
    payload = json.loads(fc.stdout)
    assert payload["metric"] == "accuracy" and payload["target"] == 0.99
    assert payload["status"] in ("reachable", "unreachable", "met", "unavailable")
    assert (fc.returncode == 3) == (payload["status"] == "unavailable")
    bad = cli("forecast", str(iris_project), "--target", "2")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "outside accuracy's range" in bad.stderr
