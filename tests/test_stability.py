"""Noise never decides: the demo project's decisions are the same on three runs on a busy machine."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flywheel.pipeline import gate
from flywheel.project import load_project
from flywheel.registry import open_store
from flywheel.scoping import write_demo

SPIN = "import time\nend = time.time() + 900\nwhile time.time() < end: pass"


@pytest.fixture
def busy_machine() -> Iterator[None]:
    """One process spinning on every core for as long as the test runs."""
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(os.cpu_count() or 2)]
    try:
        yield
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def _decisions(folder: Path) -> dict[str, Any]:
    """What a person acts on: the gate's exit code and reference, the verdict, the best model, the
    ranking and every broken constraint. A constraint that is met in one run and undecided in another
    (its interval reaching the limit) changes neither the ranking nor a decision, by design."""
    result = gate(folder, candidate="rbf-svm")
    project = load_project(folder)
    store = open_store(project.store_dir)
    try:
        run = store.get_run(result.run_id)
    finally:
        store.close()
    assert run is not None
    ranking = run["ranking"]
    return {
        "gate": (result.exit_code, result.against),
        "verdict": (run["verdict"]["status"], run["verdict"]["model"]),
        "best": ranking["best"],
        "ranking": [s["name"] for s in ranking["standings"]],
        "broken": sorted(s["name"] for s in ranking["standings"] if s["feasible"] is False),
    }


@pytest.mark.slow
def test_the_demo_decides_the_same_three_times_on_a_busy_machine(tmp_path: Path, busy_machine: None) -> None:
    write_demo(tmp_path)
    first, *others = [_decisions(tmp_path) for _ in range(3)]
    assert first["verdict"] == ("fail", "rbf-svm")  # 0.97 on test, short of the target 0.99
    assert first["best"] == "rbf-svm"
    assert first["broken"] == []  # every model's own p95 is well inside 25 ms, busy or not
    assert others == [first, first]


@pytest.mark.slow
def test_the_forecast_is_the_same_twice_on_a_busy_machine(tmp_path: Path, busy_machine: None) -> None:
    """The curve's model, its family and the rows needed do not move with the machine's load."""
    from flywheel.pipeline import run

    write_demo(tmp_path)
    first, second = (run(tmp_path, save=False, report=False).forecast for _ in range(2))
    assert first is not None and second is not None and first.available
    assert (first.model, first.family, first.status) == (second.model, second.family, second.status)
    assert first.needed == second.needed and first.needed_low == second.needed_low
