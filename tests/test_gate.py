"""The gate and the registry through the installed console script: exit codes, JSON, promotion."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np

from helpers import tabular_frame, write_project

Cli = Callable[..., subprocess.CompletedProcess[str]]

PROJECT = """\
project: gated
data: {source: data.csv, target: label, id: id, split: {seed: 1}}
objective: {optimize: accuracy}
models:
  - {name: good, estimator: sklearn.linear_model.LogisticRegression, params: {max_iter: 3000}}
  - {name: bad, estimator: sklearn.dummy.DummyClassifier, params: {strategy: uniform, random_state: 0}}
"""


def _project(tmp_path: Path) -> Path:
    tabular_frame(600).to_csv(tmp_path / "data.csv", index=False)
    return write_project(tmp_path, PROJECT)


def _json(proc: subprocess.CompletedProcess[str]) -> dict:  # type: ignore[type-arg]
    return json.loads(proc.stdout)


def test_gate_exit_codes_and_promotion(cli: Cli, tmp_path: Path) -> None:
    _project(tmp_path)
    # No champion yet: the candidate is judged against the best baseline.
    first = cli("gate", "--candidate", "bad", "--json")
    assert first.returncode == 1, first.stderr
    verdict = _json(first)
    assert verdict["status"] == "fail" and verdict["exit_code"] == 1
    assert verdict["reasons"][0].startswith("loses: bad vs ")
    assert "no champion yet: compared with the best baseline" in verdict["notes"]
    # A forced promotion is recorded as forced.
    forced = cli("promote", "bad", "--force")
    assert forced.returncode == 0 and "forced past the gate" in forced.stdout
    listed = _json(cli("models", "--json"))
    assert any(
        m["name"] == "bad" and m["aliases"] == ["champion"] and m["forced"] == ["champion"] for m in listed
    )
    # good beats the champion: pass, exit 0.
    win = cli("gate", "--candidate", "good", "--json")
    assert win.returncode == 0 and _json(win)["status"] == "pass"
    assert _json(win)["against"].startswith("bad v")
    # Promotion of a model that does not pass is refused, and the champion stays.
    refused = cli("promote", "bad")
    assert refused.returncode == 1 and "refused: bad does not pass the gate" in refused.stderr
    assert "Traceback" not in refused.stderr
    accepted = cli("promote", "good")
    assert accepted.returncode == 0 and "champion is now good v" in accepted.stdout
    # Any other alias is the user's to set.
    staged = cli("alias", "bad", "staging")
    assert staged.returncode == 0 and "staging -> bad v" in staged.stdout
    assert any("staging" in m["aliases"] for m in _json(cli("models", "--json")))
    _one_error_line(cli("alias", "bad", "champion"), "champion is set by flywheel")
    _one_error_line(cli("alias", "nope", "staging"), "'nope' has no saved artifact")
    # The champion against itself: inconclusive, exit 3, and said plainly: not "minimum detectable
    # effect 0.0000" but that no number of rows would tell two identical models apart.
    same = cli("gate", "--candidate", "good", "--json")
    assert same.returncode == 3 and _json(same)["status"] == "inconclusive"
    assert "no number of rows would tell them apart" in _json(same)["reasons"][0]
    assert "minimum detectable effect" not in _json(same)["reasons"][0]


def _one_error_line(proc: subprocess.CompletedProcess[str], expected: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_gate_bad_input(cli: Cli, tmp_path: Path) -> None:
    _project(tmp_path)
    # An unknown name is refused before the project runs: no run is stored for it.
    _one_error_line(
        cli("gate", "--candidate", "nope"),
        "--candidate must be one of the models in flywheel.yaml: good, bad",
    )
    _one_error_line(cli("promote", "nope"), "promote: the model must be one of the models in flywheel.yaml")
    assert not (tmp_path / ".flywheel" / "flywheel.db").exists()
    _one_error_line(cli("gate", "--against", "yesterday"), "--against must be champion or best-baseline")
    assert cli("promote", "good", "--force").returncode == 0
    # The champion's artifact is gone: one line, exit 2.
    artifact = next((tmp_path / ".flywheel" / "models" / "good").glob("v*.pkl"))
    saved = artifact.read_bytes()
    artifact.unlink()
    runs = len(json.loads(cli("runs", "--json").stdout))
    _one_error_line(cli("gate", "--candidate", "bad"), "has no artifact at")
    assert len(json.loads(cli("runs", "--json").stdout)) == runs  # nothing ran, nothing was stored
    artifact.write_bytes(saved)
    # The data changed since the champion was trained: refused, not silently compared.
    tabular_frame(600, seed=9).to_csv(tmp_path / "data.csv", index=False)
    _one_error_line(cli("gate", "--candidate", "bad"), "was trained on data")
    runs_before = len(json.loads(cli("runs", "--json").stdout))
    assert runs_before >= 1


def test_a_candidate_with_an_undecided_constraint_is_not_passed_on_chance() -> None:
    from flywheel.evaluation import Standing, Violation
    from flywheel.project import GateSpec
    from flywheel.registry import judge_candidate

    undecided = Violation("latency_p95_ms", {"max": 25.0}, 24.6, None, "undecided", (23.9, 26.1))
    standing = Standing("cand", "candidate", 0.95, 0.95, None, (undecided,))
    y = np.array([0, 1] * 200)
    result = judge_candidate(
        "cand",
        "champion",
        y,
        y.copy(),  # perfect
        np.where(np.arange(400) < 100, 1 - y, y),  # a quarter wrong
        metric="accuracy",
        policy=GateSpec(),
        standing=standing,
        classes=np.array([0, 1]),
        run_id="r",
        notes=[],
    )
    assert result.status == "inconclusive" and result.exit_code == 3
    assert "constraint undecided: latency_p95_ms 24.6 [23.9, 26.1] undecided against max 25" in result.reasons


def test_the_best_baseline_reference_is_the_best_that_meets_the_constraints() -> None:
    """Not one-feature (0.26) because linear (0.947) broke a limit: undecided keeps linear, and says so."""
    from types import SimpleNamespace

    from flywheel.evaluation import Evaluation, Ranking, Standing, Violation
    from flywheel.pipeline._gate import _reference

    undecided = Violation("latency_p95_ms", {"max": 25.0}, 24.6, None, "undecided", (23.9, 26.1))
    broken = Violation("latency_p95_ms", {"max": 25.0}, 40.0, 15.0)

    def result(*standings: Standing) -> SimpleNamespace:
        return SimpleNamespace(
            ranking=Ranking(standings, "valid", None),
            evaluation=lambda name: Evaluation(name, "baseline", "rung", ""),
        )

    linear = Standing("linear", "baseline", 0.947, 0.947, None, (undecided,))
    rule = Standing("one-feature", "baseline", 0.26, 0.26, True)
    notes: list[str] = []
    assert _reference(result(linear, rule), notes).name == "linear"  # type: ignore[arg-type]
    assert notes == ["the reference linear is undecided on " + undecided.describe()]
    notes = []
    slow = Standing("linear", "baseline", 0.947, 0.947, False, (broken,))
    assert _reference(result(rule, slow), notes).name == "one-feature"  # type: ignore[arg-type]
    assert notes == []
    assert _reference(result(slow), notes).name == "linear"  # type: ignore[arg-type]
    assert notes == ["no baseline meets every constraint: compared with linear, which " + broken.describe()]
