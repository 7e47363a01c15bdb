"""Scoping from evidence: monotone scores, personal data, phases, the portfolio, the model card."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from flywheel.errors import ProjectError
from flywheel.pipeline import run
from flywheel.project import READINESS_ITEMS, load_project, parse_project
from flywheel.scoping import (
    PHASES,
    TO_WRITE,
    assess,
    find_personal_data,
    infer_phase,
    model_card,
    validate_move,
)
from flywheel.scoping._readiness import _READINESS_ITEMS
from flywheel.scoping._scaffold import _DEMO
from helpers import IRIS_PROJECT, copy_examples, write_project

CLI = Callable[..., subprocess.CompletedProcess[str]]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

PROJECT = """\
project: scoped
archetype: autonomous
impact: {value_per_year: 200000, volume_per_year: 100000, lenses: [cheap-prediction]}
costs: {label: 2, wrong_prediction: 1}
data: {source: builtin:iris, target: species}
objective: {optimize: accuracy, target: 0.95}
baselines:
  human: {accuracy: 0.97, n: 300}
"""


def _run(
    n_train: int = 1000, needed: float = 4000.0, baseline: float = 0.80, target: float = 0.95
) -> dict[str, Any]:
    """A stored run, as plain values: enough for every driver."""
    return {
        "run_id": "r1",
        "data": {"classes": {"a": 900, "b": 900}, "task": "binary"},
        "split": {"train": n_train, "test": 400},
        "ladder": [
            {"name": "dummy", "role": "baseline", "kind": "constant", "value": 0.5},
            {"name": "one-feature", "role": "baseline", "kind": "rule", "value": baseline},
            {"name": "linear", "role": "baseline", "kind": "model", "value": 0.9},
        ],
        "ranking": {
            "best": "m",
            "standings": [{"name": "m", "test_value": 0.9, "test_interval": [0.88, 0.92]}],
        },
        "evaluations": [{"name": "m", "systems": {}}],
        "need_ml": {"answer": "yes", "reason": "ML wins"},
        "verdict": {"status": "fail", "reason": "below target"},
        "forecast": {
            "status": "reachable",
            "needed": needed,
            "needed_low": needed * 0.7,
            "needed_high": needed * 1.6,
            "cost": (needed - n_train) * 2,
            "current": 0.9,
            "doubling_gain": 0.02,
            "text": "…",
        },
    }


def _project(text: str = PROJECT, **changes: Any) -> Any:
    raw = yaml.safe_load(text)
    for key, value in changes.items():
        node = raw
        *path, last = key.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return parse_project(yaml.safe_dump(raw))


def test_more_labelled_rows_never_lower_data_availability() -> None:
    project = _project()
    scores = [assess(project, _run(n_train=n)).data.score for n in (100, 300, 1000, 3000, 4000, 8000)]
    assert scores == sorted(scores)
    assert scores[0] < scores[-1]


def test_a_higher_target_never_raises_the_accuracy_requirement_score() -> None:
    scores = []
    for target in (0.85, 0.9, 0.93, 0.96, 0.98, 0.995):
        project = _project(**{"objective.target": target})
        scores.append(assess(project, _run(target=target)).accuracy.score)
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[-1]
    flagged = assess(_project(**{"objective.target": 0.99}), _run()).accuracy
    assert any(e.flag and "beyond human level" in e.text for e in flagged.evidence)


def test_a_wider_baseline_to_target_gap_never_lowers_difficulty() -> None:
    """Difficulty is scored as feasibility (1 = easy): a wider gap gives a score no higher."""
    project = _project()
    scores = [assess(project, _run(baseline=b)).difficulty.score for b in (0.94, 0.9, 0.8, 0.7, 0.5)]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[-1]


def test_declared_only_evidence_has_wide_ranges() -> None:
    project = _project()
    before = assess(project, None)
    after = assess(project, _run())
    assert not before.data.measured and after.data.measured
    assert (before.data.high - before.data.low) > (after.data.high - after.data.low)
    sources = {e.source for d in (after.data, after.accuracy, after.difficulty) for e in d.evidence}
    assert sources == {"declared", "measured"}


def test_personal_data_is_found_and_ordinary_columns_are_not() -> None:
    frame = pd.DataFrame(
        {
            "contact": ["ann.lee@example.com", "bob@example.org", "n/a", "carl@mail.net"],
            "tel": ["+44 20 7946 0958", "020 7946 0000", "(555) 123-4567", ""],
            "card": ["4111 1111 1111 1111", "5500-0000-0000-0004", "", "4012888888881881"],
            "notes": ["Mr Smith called", "spoke to Dr Jones", "ok", "fine"],
            "first_name": ["a", "b", "c", "d"],
            "amount": [12.5, 3.0, 7.25, 1.0],
            "order_id": ["A-1001", "A-1002", "A-1003", "A-1004"],
            "colour": ["red", "green", "blue", "red"],
            "sku": ["1234567890123", "2234567890123", "3234567890123", "4234567890123"],  # not Luhn-valid
            "review": ["great value", "broke after a day", "fine", "I liked it"],
        }
    )
    found = {p.column: p.kind for p in find_personal_data(frame)}
    assert found == {
        "contact": "e-mail",
        "tel": "phone",
        "card": "card number",
        "notes": "name in free text",
        "first_name": "named like personal data",
    }
    assert all("@" not in p.example[2:] for p in find_personal_data(frame))  # examples are masked
    assessment = assess(_project(), _run(), frame=frame)
    assert any(e.flag and "personal data" in e.text for e in assessment.data.evidence)


def test_checklist_items_follow_the_evidence() -> None:
    project = _project(**{"ethics": "reviewed with the clinical lead"})
    items = {c.item: c for c in assess(project, _run()).checklist}
    assert items["need ML at all"].status == "done"
    assert items["success criteria agreed"].status == "done"
    assert items["ethics considered"].status == "done"
    assert items["literature reviewed"].status == "open"
    assert items["rule-based MVP built"].status == "open"
    no_ml = _run()
    no_ml["need_ml"] = {"answer": "no", "reason": "the rule is as good"}
    contradicted = {c.item: c.status for c in assess(project, no_ml).checklist}
    assert contradicted["need ML at all"] == contradicted["still sure ML is needed"] == "contradicted"
    fresh = {c.item: c.status for c in assess(_project(), None).checklist}
    assert fresh["need ML at all"] == "open" and fresh["ethics considered"] == "open"


def test_readiness_is_the_weakest_section_and_declared_items_count_half() -> None:
    assert [i.replace(" ", "_") for items in _READINESS_ITEMS.values() for i, _ in items] == list(
        READINESS_ITEMS
    )
    project = _project(readiness={"predictions_logged": True, "feedback_labels_collected": True})
    r = assess(project, _run(), frame=pd.DataFrame({"x": [1]}), artifacts={"models": True}).readiness
    assert r["sections"]["monitoring"]["score"] == 1.0  # two declared halves
    assert r["sections"]["data"]["score"] == 3.0
    assert r["score"] == min(s["score"] for s in r["sections"].values())
    with pytest.raises(ProjectError, match="unknown item 'predictions'"):
        _project(readiness={"predictions": True})


def test_phase_inference_and_loop_backs() -> None:
    assert infer_phase(data_loads=False).phase == "planning"
    runs = [{"started_at": "2026-01-01T10:00:00+00:00", "candidates": 0}]
    assert infer_phase(data_loads=True, runs=runs).phase == "data"
    runs.append({"started_at": "2026-01-02T10:00:00+00:00", "candidates": 2})
    assert infer_phase(data_loads=True, runs=runs).phase == "training"
    champion = {"name": "m", "version": 1, "set_at": "2026-01-03T10:00:00+00:00"}
    assert infer_phase(data_loads=True, runs=runs, champion=champion).phase == "deployment"
    back = [
        {"at": "2026-01-04T10:00:00+00:00", "from": "deployment", "to": "data", "reason": "labels unreliable"}
    ]
    state = infer_phase(data_loads=True, runs=runs, champion=champion, events=back)
    assert state.phase == "data" and "labels unreliable" in state.reason
    assert [t["phase"] for t in state.timeline] == ["data", "training", "deployment", "data"]
    # A new candidate run after the loop-back moves the project on again.
    later = [*runs, {"started_at": "2026-01-05T10:00:00+00:00", "candidates": 1}]
    state = infer_phase(data_loads=True, runs=sorted(later, key=lambda r: r["started_at"]), events=back)
    assert state.phase in ("data", "training")
    with pytest.raises(ProjectError, match="not before the current phase"):
        validate_move("data", "training", "why")
    with pytest.raises(ProjectError, match="--to must be one of"):
        validate_move("training", "somewhere", "why")
    with pytest.raises(ProjectError, match="--reason"):
        validate_move("training", "data", "  ")
    assert PHASES == ("planning", "data", "training", "deployment")


def test_the_demo_example_is_the_demo() -> None:
    assert (EXAMPLES / "digit-sorter" / "flywheel.yaml").read_text(encoding="utf-8") == _DEMO
    names = sorted(p.parent.name for p in EXAMPLES.glob("*/flywheel.yaml"))
    assert names == ["digit-sorter", "progression-triage", "tumour-screening", "wine-grading"]
    for path in EXAMPLES.glob("*/flywheel.yaml"):
        load_project(path)


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example projects, copied and run once (forecast off to keep the test short)."""
    folder = tmp_path_factory.mktemp("examples")
    copy_examples(folder)
    for name in ("tumour-screening", "wine-grading", "progression-triage"):
        run(folder / name, forecast_curve=False)
    return folder


def test_portfolio_ranks_the_examples(examples: Path, cli: CLI, tmp_path: Path) -> None:
    paths = [
        str(examples / n) for n in ("digit-sorter", "tumour-screening", "wine-grading", "progression-triage")
    ]
    shown = cli("portfolio", *paths, "--json", "--out", str(tmp_path / "pf"))
    assert shown.returncode == 0, shown.stderr
    payload = json.loads(shown.stdout)
    ranked = payload["projects"]
    assert [p["rank"] for p in ranked] == [1, 2, 3, 4]
    assert [p["priority"] for p in ranked] == sorted((p["priority"] for p in ranked), reverse=True)
    by_name = {p["project"]: p for p in ranked}
    assert not by_name["digit-sorter"]["measured"]  # never run here: declared evidence only
    assert by_name["tumour-screening"]["measured"] and by_name["tumour-screening"]["phase"] == "training"
    assert by_name["tumour-screening"]["impact"]["score"] > by_name["wine-grading"]["impact"]["score"]
    width = {n: p["feasibility"]["high"] - p["feasibility"]["low"] for n, p in by_name.items()}
    assert width["digit-sorter"] > width["wine-grading"]
    html = (tmp_path / "pf" / "portfolio.html").read_text(encoding="utf-8")
    assert 'id="portfolio-chart"' in html and '<script src="plotly.min.js">' in html
    assert (tmp_path / "pf" / "plotly.min.js").is_file()  # beside the page: nothing from a CDN
    for name in by_name:  # the hover carries each project's evidence
        assert f"{name}" in html
    assert "measured by a run" in html and "declared only, no run yet" in html
    assert (tmp_path / "pf" / "portfolio.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = cli("portfolio", str(examples / "wine-grading"), str(tmp_path / "nowhere"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no project file" in bad.stderr


def test_assess_and_phase_commands(examples: Path, cli: CLI) -> None:
    shown = cli("assess", str(examples / "tumour-screening"))
    assert shown.returncode == 0, shown.stderr
    for text in (
        "data availability",
        "declared",
        "measured",
        "feasibility checklist",
        "readiness",
        "autonomous",
    ):
        assert text in shown.stdout
    as_json = json.loads(cli("assess", str(examples / "tumour-screening"), "--json").stdout)
    assert as_json["phase"]["phase"] == "training" and as_json["run_id"]
    moved = cli(
        "phase", "back", str(examples / "tumour-screening"), "--to", "data", "--reason", "labels unreliable"
    )
    assert moved.returncode == 0, moved.stderr
    state = json.loads(cli("phase", "show", str(examples / "tumour-screening"), "--json").stdout)
    assert state["phase"] == "data" and "labels unreliable" in state["reason"]
    wrong = cli("phase", "back", str(examples / "tumour-screening"), "--to", "deployment", "--reason", "x")
    assert wrong.returncode == 2 and "not before the current phase" in wrong.stderr


def test_card_round_trips_through_yaml(examples: Path, cli: CLI) -> None:
    folder = examples / "wine-grading"
    made = cli("card", str(folder))
    assert made.returncode == 0, made.stderr
    assert not (folder / "MODEL_CARD.md").exists()  # the project's own files are left as they are
    text = (folder / ".flywheel" / "MODEL_CARD.md").read_text(encoding="utf-8")
    asked = cli("card", str(folder), "-o", str(folder / "MODEL_CARD.md"))
    assert asked.returncode == 0 and (folder / "MODEL_CARD.md").read_text(encoding="utf-8") == text
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    index = front["model-index"][0]
    metrics = {m["type"]: m for m in index["results"][0]["metrics"]}
    assert "accuracy" in metrics and metrics["accuracy"]["args"]["ci95_low"] <= metrics["accuracy"]["value"]
    assert front["flywheel"]["data_fingerprint"] == index["results"][0]["dataset"]["revision"]
    assert text.count(TO_WRITE) >= 3 and "## Intended use" in text and "## Ethical considerations" in text
    assert "## Baselines" in text and "| rule:by_colour |" in text
    never_run = cli("card", str(examples / "digit-sorter"))
    assert never_run.returncode == 2 and "no stored run yet" in never_run.stderr


def test_run_report_shows_scoping_and_timeline(tmp_path: Path) -> None:
    path = write_project(tmp_path / "iris", IRIS_PROJECT + "diagnosis: {forecast: false}\n")
    result = run(path)
    assert result.assessment is not None and result.phase is not None
    assert result.phase.phase == "data"  # the ladder alone: iris-test has no candidate models
    html = result.report_path.read_text(encoding="utf-8")
    for marker in (
        'id="assessment"',
        'id="checklist"',
        'id="readiness"',
        'id="timeline"',
        "declared",
        "measured",
    ):
        assert marker in html
    stored = copy.deepcopy(result.to_dict())
    card = model_card(load_project(path), stored)
    assert yaml.safe_load(card.split("---\n")[1])["model_name"] == result.ranking.best


def test_the_card_claims_no_weak_spot_only_from_a_diagnosis_of_its_model(tmp_path: Path) -> None:
    """Not "no class is weak" from a run that diagnosed nothing, or diagnosed another model."""
    path = write_project(tmp_path / "iris", IRIS_PROJECT + "diagnosis: {forecast: false}\n")
    result = run(path, report=False)
    project = load_project(path)
    stored = copy.deepcopy(result.to_dict())
    best = result.ranking.best
    other = next(s.name for s in result.ranking.standings if s.name != best)
    assert "## Weak spots (measured)" in model_card(project, stored)
    assert f"Not diagnosed for {other}: run {result.run_id} diagnosed {best}" in model_card(
        project, stored, other
    )
    undiagnosed = {**stored, "diagnosis": None}
    text = model_card(project, undiagnosed)
    assert f"Not diagnosed: run {result.run_id} made no diagnosis" in text
    assert "No class or segment is significantly weaker" not in text
