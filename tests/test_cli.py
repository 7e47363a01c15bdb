"""The CLI through the installed console script, in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from helpers import IRIS_PROJECT, tabular_frame, write_project

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _one_error_line(proc: subprocess.CompletedProcess[str], expected: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0], lines[0]


def _runs_in(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute("SELECT count(*) FROM runs").fetchone()[0])
    finally:
        con.close()


def test_version(cli: Cli) -> None:
    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("flywheel ")


@pytest.mark.slow
def test_demo_prints_a_leaderboard_and_writes_the_report(cli: Cli, tmp_path: Path) -> None:
    proc = cli("demo", "--dir", "demo")
    assert proc.returncode == 0, proc.stderr
    for text in ("digit-sorter", "rbf-svm", "knn", "linear", "dummy", "human", "declared", "report:"):
        assert text in proc.stdout
    reports = tmp_path / "demo" / ".flywheel" / "reports"
    assert (reports / "latest.html").exists()
    html = (reports / "latest.html").read_text()
    assert "rbf-svm" in html and not re.search(r"""(src|href)=["']?https?:""", html)  # nothing from the web
    assert re.findall(r"<script[^>]*>", html) == ['<script src="plotly.min.js">', "<script>"]
    assert (reports / "plotly.min.js").is_file()
    # A second demo run keeps the history.
    assert cli("demo", "--dir", "demo").returncode == 0
    assert _runs_in(tmp_path / "demo" / ".flywheel" / "flywheel.db") == 2


def test_demo_refuses_to_overwrite_a_real_project(cli: Cli, tmp_path: Path) -> None:
    write_project(tmp_path / "mine", IRIS_PROJECT)
    before = (tmp_path / "mine" / "flywheel.yaml").read_text()
    _one_error_line(cli("demo", "--dir", "mine"), "exists and is not a flywheel demo project")
    assert (tmp_path / "mine" / "flywheel.yaml").read_text() == before


def test_run_json_and_runs(cli: Cli, tmp_path: Path) -> None:
    write_project(tmp_path / "p", IRIS_PROJECT)
    proc = cli("run", "p", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["project"] == "iris-test"
    assert result["ranking"]["best"] == "linear"
    assert result["objective"]["optimize"] == "accuracy"
    assert result["data"]["task"] == "multiclass"
    listed = json.loads(cli("runs", "p", "--json").stdout)
    assert [r["id"] for r in listed] == [result["run_id"]]
    table = cli("runs", "p")
    assert table.returncode == 0 and result["run_id"] in table.stdout


def test_runs_without_history(cli: Cli, tmp_path: Path) -> None:
    write_project(tmp_path / "p", IRIS_PROJECT)
    proc = cli("runs", "p")
    assert proc.returncode == 0 and "no runs yet" in proc.stdout
    assert not (tmp_path / "p" / ".flywheel").exists()


def test_init_writes_a_valid_template_and_never_overwrites(cli: Cli, tmp_path: Path) -> None:
    assert cli("init", "new").returncode == 0
    text = (tmp_path / "new" / "flywheel.yaml").read_text()
    assert "optimize:" in text and "#" in text
    _one_error_line(cli("init", "new"), "already exists; pass --force to overwrite it")
    assert (tmp_path / "new" / "flywheel.yaml").read_text() == text


def test_init_from_csv_fills_in_the_data_and_runs(cli: Cli, tmp_path: Path) -> None:
    frame = tabular_frame(200)
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    proc = cli("init", "proj", "--from-csv", "reviews.csv", "--target", "label")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "proj" / "flywheel.yaml").read_text()
    assert "source: ../reviews.csv" in text and "target: label" in text and "(binary)" in text
    run = cli("run", "proj", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["data"]["text"] == ["review"]


def test_init_from_csv_with_unknown_target(cli: Cli, tmp_path: Path) -> None:
    tabular_frame(20).to_csv(tmp_path / "d.csv", index=False)
    _one_error_line(
        cli("init", "x", "--from-csv", "d.csv", "--target", "nope"),
        "--target 'nope' is not a column of d.csv",
    )
    _one_error_line(cli("init", "x", "--from-csv", "d.csv"), "--from-csv and --target go together")


BAD_INPUTS = [
    ("missing data file", ("source: data.csv", "source: gone.csv"), "data.source 'gone.csv' does not exist"),
    ("unknown target", ("target: label", "target: nope"), "data.target 'nope' is not a column of data.csv"),
    ("one class", ("target: label", "target: constant"), "has a single class ('k')"),
    (
        "unknown metric",
        ("optimize: accuracy", "optimize: acc"),
        "objective.optimize must be one of accuracy, average_precision",
    ),
    ("malformed yaml", ("objective:", "objective: : :"), "not valid YAML"),
    (
        "import failure",
        ("sklearn.tree.DecisionTreeClassifier", "sklearn.tree.Nope"),
        "models[0].estimator 'sklearn.tree.Nope' does not import",
    ),
    ("prediction ids", ("vendor.csv", "vendor_bad.csv"), "valid/test rows have no prediction"),
]

TABULAR = """\
project: cli-tabular
data: {source: data.csv, target: label, id: id}
objective:
  optimize: accuracy
models:
  - {name: tree, estimator: sklearn.tree.DecisionTreeClassifier, params: {max_depth: 2}}
  - {name: vendor, predictions: vendor.csv}
"""


@pytest.mark.parametrize(("case", "change", "expected"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_the_store_is_untouched(
    cli: Cli, tmp_path: Path, case: str, change: tuple[str, str], expected: str
) -> None:
    frame = tabular_frame(120)
    frame["constant"] = "k"
    frame.to_csv(tmp_path / "data.csv", index=False)
    vendor = pd.DataFrame({"id": frame["id"], "prediction": frame["label"]})
    vendor.to_csv(tmp_path / "vendor.csv", index=False)
    vendor.head(10).to_csv(tmp_path / "vendor_bad.csv", index=False)
    write_project(tmp_path, TABULAR)
    assert cli("run", "--json").returncode == 0
    db = tmp_path / ".flywheel" / "flywheel.db"
    reports = sorted((tmp_path / ".flywheel" / "reports").iterdir())
    project_text = TABULAR.replace(*change)
    assert project_text != TABULAR
    write_project(tmp_path, project_text)
    _one_error_line(cli("run"), expected)
    assert _runs_in(db) == 1
    assert sorted((tmp_path / ".flywheel" / "reports").iterdir()) == reports


def test_store_from_a_newer_flywheel_is_refused(cli: Cli, tmp_path: Path) -> None:
    write_project(tmp_path, IRIS_PROJECT)
    assert cli("run", "--json").returncode == 0
    db = tmp_path / ".flywheel" / "flywheel.db"
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    con.commit()
    con.close()
    _one_error_line(cli("run"), "was written by a newer flywheel (store schema v999)")
    _one_error_line(cli("runs"), "was written by a newer flywheel")
    assert _runs_in(db) == 1


def test_missing_project_file(cli: Cli, tmp_path: Path) -> None:
    _one_error_line(cli("run", "nowhere"), "no project file here")


def test_usage_errors_exit_2(cli: Cli) -> None:
    proc = cli("run", "--no-such-flag")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    # A mistake in the command line itself is one line too, naming the option and its limit.
    _one_error_line(proc, "No such option: --no-such-flag (see `flywheel run --help`)")
    _one_error_line(cli("serve", "--port", "99999"), "Invalid value for '--port'")
    _one_error_line(cli("mine", "--budget", "0"), "Invalid value for '--budget'")
    assert cli().returncode == 2 and "Usage" in cli().stdout  # no command: the help


def test_paths_that_cannot_be_written_are_one_line(cli: Cli, tmp_path: Path) -> None:
    write_project(tmp_path / "p", IRIS_PROJECT + "diagnosis: {forecast: false}\n")
    assert cli("run", "p").returncode in (0, 1, 3)
    _one_error_line(cli("card", "p", "-o", str(tmp_path)), f"{tmp_path}: Is a directory")
    _one_error_line(cli("card", "p", "-o", str(tmp_path / "nowhere" / "x.md")), "does not exist")
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "taken").write_text("a file")
    proc = cli("portfolio", "p", "--out", str(tmp_path / "taken"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_baselines_command_answers_need_ml(cli: Cli, tmp_path: Path) -> None:
    write_project(tmp_path / "p", IRIS_PROJECT)
    proc = cli("baselines", "p", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert "Do we need ML?" in proc.stdout and "one-feature" in proc.stdout
    payload = json.loads(cli("baselines", "p", "--json").stdout)
    assert payload["need_ml"]["answer"] in ("yes", "no", "not yet clear")
    assert [row["name"] for row in payload["ladder"]][:2] == ["dummy", "random"]
    _one_error_line(cli("baselines", "p", "--executor", "ray://x"), "--executor must be 'local' or dask://")
    # The ladder alone writes its own page; latest.html stays the full run's; reports are readable.
    reports = tmp_path / "p" / ".flywheel" / "reports"
    assert not (reports / "latest.html").exists() and len(list(reports.glob("*.html"))) == 2
    assert cli("run", "p").returncode in (0, 1, 3)
    full = (reports / "latest.html").read_text()
    assert cli("baselines", "p").returncode == 0
    assert (reports / "latest.html").read_text() == full and "leaderboard" in full.lower()
    umask = os.umask(0)
    os.umask(umask)
    assert all((p.stat().st_mode & 0o777) == 0o666 & ~umask for p in reports.glob("*.html"))


def test_objective_log(cli: Cli, tmp_path: Path) -> None:
    write_project(tmp_path / "p", IRIS_PROJECT)
    assert "no objective recorded yet" in cli("objective", "log", "p").stdout
    assert cli("run", "p", "--json").returncode == 0
    proc = cli("objective", "log", "p")
    assert proc.returncode == 0 and "optimize accuracy" in proc.stdout
    rows = json.loads(cli("objective", "log", "p", "--json").stdout)
    assert len(rows) == 1 and rows[0]["runs"] == 1


def test_a_model_better_than_the_best_is_not_shown_as_indistinguishable() -> None:
    """The best by the objective can be worse on quality than a model a constraint ranked lower."""
    from flywheel.cli._render import _versus_best
    from flywheel.evaluation import Standing

    def versus(verdict: str) -> str:
        s = Standing("m", "candidate", 0.98, 0.98, False, versus_best={"verdict": verdict})
        return _versus_best(replace(s, distinguishable=verdict == "better"), "best-model")

    assert versus("worse") == "[cyan]>[/]"
    assert versus("better") == "[dim]<[/]"
    assert versus("inconclusive") == "[yellow]≈[/]"
