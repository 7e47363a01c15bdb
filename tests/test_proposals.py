"""Phase 4's proposals: the monitor's file read (or set aside), proposals listed and accepted as
phase moves, the readiness item it shows, and mining the region where the inputs drifted."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_iris

from flywheel.loop import list_queue, mine
from flywheel.pipeline import promote, run
from flywheel.prediction_log import LOG_NAME, PredictionLog, PredictionRecord
from flywheel.project import Project, load_project
from flywheel.registry import open_store
from flywheel.scoping import (
    accepted_reason,
    assess_path,
    drift_region,
    gather,
    monitor_file,
    monitor_problem,
    monitored,
    proposals,
    read_monitor,
)
from helpers import IRIS_TWO_MODELS, write_project

CLI = Callable[..., subprocess.CompletedProcess[str]]

DRIFT = {
    "id": "data-drift",
    "to": "data",
    "reason": "input drift in petal length (domain classifier AUC 0.81 [0.78, 0.84])",
    "evidence": ["petal length (cm): KS 0.41, PSI 0.93, q < 0.001"],
    "window": "2026-11-29",
}
PILOT = {
    "id": "training-pilot",
    "to": "training",
    "reason": "the challenger's shadow accuracy 0.71 is below its lab estimate 0.93",
    "evidence": [],
}
# Setosa's petals: rows the champion answers confidently, so only the drift makes them worth a label.
REGION = [{"feature": "petal length (cm)", "kind": "numeric", "ranges": [[1.0, 1.5], [1.6, 1.9]]}]


def _monitor(
    project: Project,
    champion_id: int | None,
    *,
    at: datetime | None = None,
    found: list[dict[str, Any]] | None = None,
    region: list[dict[str, Any]] | None = None,
) -> None:
    """Write a monitor result as `flywheel monitor` does."""
    path = monitor_file(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "at": (at or datetime.now(UTC)).isoformat(),
        "champion": None if champion_id is None else {"id": champion_id, "name": "logreg", "version": 1},
        "verdict": "act",
        "proposals": [DRIFT, PILOT] if found is None else found,
        "drift_region": region or [],
    }
    path.write_text(json.dumps(body), encoding="utf-8")


def _champion(project: Project) -> dict[str, Any]:
    store = open_store(project.store_dir, create=False)
    try:
        entry = store.get_alias(project.project, "champion")
    finally:
        store.close()
    assert entry is not None
    return entry


@pytest.fixture
def served(tmp_path: Path) -> Path:
    """Iris with its logreg promoted to champion: a project in deployment."""
    path = write_project(tmp_path / "iris", IRIS_TWO_MODELS.format(name="iris-watched"))
    run(path, report=False)
    promote("logreg", path, force=True)
    return path


def test_the_monitor_file_is_read_checked_or_set_aside(tmp_path: Path) -> None:
    project = load_project(write_project(tmp_path / "p", IRIS_TWO_MODELS.format(name="unwatched")))
    assert monitor_file(project) == project.store_dir / "monitor" / "latest.json"
    assert read_monitor(project) is None and monitor_problem(project) is None  # never monitored
    assert (
        proposals(project, []) == [] and not monitored(project, {"id": 1}) and drift_region(project, 1) == []
    )
    _monitor(project, 1, at=datetime(2026, 11, 30, 12), region=REGION)
    monitor = read_monitor(project)
    assert monitor is not None and monitor["at"] == "2026-11-30T12:00:00+00:00"  # no zone: UTC
    assert [p["id"] for p in proposals(project, [])] == ["data-drift", "training-pilot"]
    assert proposals(project, [])[1]["window"] is None and monitored(project, {"id": 1})
    assert not monitored(project, {"id": 2}) and not monitored(project, None)
    assert (
        drift_region(project, 1)[0]["ranges"] == [(1.0, 1.5), (1.6, 1.9)] and drift_region(project, 2) == []
    )
    bad_bodies = {
        "{not json": "not JSON",
        "[]": "not a monitor result",
        json.dumps({"at": "yesterday", "verdict": "act"}): "at:",
        json.dumps({"at": "2026-11-30", "verdict": "maybe"}): "verdict:",
        json.dumps(
            {"at": "2026-11-30", "verdict": "act", "proposals": [{**DRIFT, "to": "deployment"}]}
        ): "to:",
        json.dumps(
            {"at": "2026-11-30", "verdict": "act", "drift_region": [{**REGION[0], "ranges": [[3, 1]]}]}
        ): "low to high",
    }
    for body, why in bad_bodies.items():
        monitor_file(project).write_text(body, encoding="utf-8")
        problem = monitor_problem(project)
        assert read_monitor(project) is None and proposals(project, []) == []
        assert problem is not None and why in problem and "\n" not in problem, (body, problem)
        assert not monitored(project, {"id": 1}) and drift_region(project, 1) == []


def test_a_move_accepts_a_proposal_of_the_monitor_run_before_it(tmp_path: Path) -> None:
    project = load_project(write_project(tmp_path / "p", IRIS_TWO_MODELS.format(name="moves")))
    at = datetime(2026, 11, 30, 12, tzinfo=UTC)
    _monitor(project, 1, at=at, found=[DRIFT, PILOT, {**DRIFT, "reason": "again"}])
    reason = accepted_reason(DRIFT, "checked with the vendor")
    assert reason.startswith(DRIFT["reason"]) and DRIFT["evidence"][0] in reason
    assert "note: checked with the vendor" in reason and reason.endswith("[proposal data-drift]")

    def move(when: datetime, why: str) -> dict[str, Any]:
        return {"at": when.isoformat(), "from": "deployment", "to": "data", "reason": why}

    assert [p["id"] for p in proposals(project, [])] == ["data-drift", "training-pilot"]  # one per id
    before = [move(at - timedelta(seconds=1), reason)]  # accepted an older run's proposal
    assert [p["id"] for p in proposals(project, before)] == ["data-drift", "training-pilot"]
    untagged = [move(at, "input drift, by hand")]
    assert [p["id"] for p in proposals(project, untagged)] == ["data-drift", "training-pilot"]
    naive = [{**move(at, reason), "at": "2026-11-30T12:00:00"}]  # the store may drop the zone: UTC
    assert [p["id"] for p in proposals(project, naive)] == ["training-pilot"]
    _monitor(project, 1, at=at + timedelta(days=1), found=[DRIFT])  # the next run proposes it again
    assert [p["id"] for p in proposals(project, naive)] == ["data-drift"]


def test_phase_show_lists_proposals_and_back_accepts_one(served: Path, cli: CLI) -> None:
    project = load_project(served)
    where = str(served.parent)
    champion = _champion(project)
    _monitor(project, champion["id"], at=datetime.now(UTC) - timedelta(minutes=5))
    shown = cli("phase", "show", where)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.index("phase: deployment") < shown.stdout.index("data-drift → data")
    for text in (DRIFT["reason"], DRIFT["evidence"][0], "window: 2026-11-29", "training-pilot → training"):
        assert text in shown.stdout
    assert f"flywheel phase back --accept data-drift {where}" in shown.stdout

    failures = [
        (("--accept", "nope"), "no open proposal 'nope'; open: data-drift, training-pilot"),
        (
            ("--accept", "data-drift", "--to", "training"),
            "--to training disagrees with proposal 'data-drift'",
        ),
    ]
    for extra, message in failures:
        bad = cli("phase", "back", where, *extra)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and message in bad.stderr, bad.stderr
    store = open_store(project.store_dir, create=False)
    try:
        assert store.phase_events(project.project) == []  # nothing stored
    finally:
        store.close()

    moved = cli("phase", "back", where, "--accept", "data-drift")
    assert moved.returncode == 0, moved.stderr
    state = json.loads(cli("phase", "show", where, "--json").stdout)
    assert state["phase"] == "data" and DRIFT["reason"] in state["reason"]
    assert DRIFT["evidence"][0] in state["reason"] and "[proposal data-drift]" in state["reason"]
    assert [p["id"] for p in state["proposals"]] == ["training-pilot"]
    assert state["monitor"]["verdict"] == "act" and state["monitor"]["champion"]["id"] == champion["id"]
    after = cli("phase", "show", where).stdout
    assert "training-pilot → training (not before the current phase data)" in after
    assert "back to data: input drift" in after and "--accept" not in after  # nothing to accept from data
    later = cli("phase", "back", where, "--accept", "training-pilot")  # data is before training
    assert later.returncode == 2 and later.stderr.count("\n") == 1
    assert "--accept training-pilot (to training) is not before the current phase data" in later.stderr

    time.sleep(0.01)
    _monitor(project, champion["id"])  # a newer run proposes the drift again: open again
    assert [p["id"] for p in proposals(project, gather(project, read_data=False).events)] == [
        "data-drift",
        "training-pilot",
    ]

    monitor_file(project).write_text("{broken", encoding="utf-8")
    broken = cli("phase", "show", where)
    assert broken.returncode == 0 and "phase: data" in broken.stdout and "→ data:" not in broken.stdout
    assert broken.stderr.count("\n") == 1 and "not JSON" in broken.stderr and "ignored" in broken.stderr
    none = cli("phase", "back", where, "--accept", "data-drift")
    assert none.returncode == 2 and none.stderr.count("\n") == 1
    assert "no open proposal 'data-drift'; none open; run `flywheel monitor` first" in none.stderr


def test_readiness_counts_a_monitor_of_the_current_champion(served: Path, cli: CLI) -> None:
    project = load_project(served)

    def watched() -> dict[str, Any]:
        _, assessment, _, _ = assess_path(served)
        items = assessment.readiness["sections"]["monitoring"]["items"]
        return {r["item"]: r for r in items}["champion watched against the objective"]

    assert watched()["source"] == "none" and not gather(project, read_data=False).artifacts["monitored"]
    _monitor(project, _champion(project)["id"] + 1)  # it watched another model
    assert watched()["source"] == "none"
    shown = cli("phase", "show", str(served))
    assert "the latest monitor run watched logreg v1, not the current champion" in shown.stdout
    _monitor(project, _champion(project)["id"])
    assert watched() == {"item": "champion watched against the objective", "score": 1.0, "source": "measured"}
    assert gather(project, read_data=False).artifacts["monitored"]


def _log(path: Path, frame: pd.DataFrame) -> None:
    log = PredictionLog(path.parent / ".flywheel" / LOG_NAME)
    for i, row in enumerate(frame.to_dict(orient="records")):
        log.submit(PredictionRecord(f"d{i:04d}", time.time(), "logreg", 1, row, "setosa", None, 1.0))
    log.close()


def _drift_items(items: list[Any]) -> list[Any]:
    return [i for i in items if any(r.startswith("drift (") for r in i.reasons)]


def test_mine_nominates_the_drifted_region(served: Path) -> None:
    project = load_project(served)
    _log(served, load_iris(as_frame=True).frame.drop(columns=["target"]))
    champion = _champion(project)
    assert _drift_items(mine(project, 6)) == []  # never monitored: no drift reason
    _monitor(project, champion["id"] + 1, region=REGION)  # a region seen for another model
    assert _drift_items(mine(project, 6)) == []
    _monitor(project, champion["id"], region=REGION)
    items = mine(project, 10)
    drifted = _drift_items(items)
    assert 0 < len(drifted) <= len(items) <= 10
    assert len(drifted) < len(items)  # half the budget for the drifted region, the rest by score
    for item in drifted:
        length = item.input["petal length (cm)"]
        assert 1.0 <= length <= 1.5 or 1.6 <= length <= 1.9
        reason = next(r for r in item.reasons if r.startswith("drift ("))
        assert f"petal length (cm) {length:.4g} in [" in reason
    assert {i.id for i in drifted} <= {i.id for i in list_queue(project)}
