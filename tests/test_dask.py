"""The Dask executor against a real LocalCluster on 127.0.0.1: same results as the local one."""

from __future__ import annotations

from pathlib import Path

import pytest

from flywheel.errors import FlywheelError
from flywheel.execution import DaskExecutor, LocalExecutor, make_executor
from flywheel.pipeline import run
from helpers import tabular_frame, write_project

distributed = pytest.importorskip("distributed")

PROJECT = """\
project: dask
data: {source: data.csv, target: label, id: id, split: {seed: 5}}
objective: {optimize: f1_macro}
baselines: {rules: ["team_rules:predict"], time_budget_s: 120}
models:
  - {name: tree, estimator: sklearn.tree.DecisionTreeClassifier, params: {max_depth: 4, random_state: 0}}
"""


def test_dask_and_local_executors_agree(tmp_path: Path) -> None:
    tabular_frame(300).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "team_rules.py").write_text(
        "def predict(rows):\n    return ['yes' if v > 0 else 'no' for v in rows['x1']]\n"
    )
    path = write_project(tmp_path, PROJECT)
    local = run(path, save=False, report=False, executor=LocalExecutor(2))
    with (
        distributed.LocalCluster(
            host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = run(path, save=False, report=False, executor=DaskExecutor(client))
    assert [e.name for e in remote.evaluations] == [e.name for e in local.evaluations]
    for a, b in zip(local.evaluations, remote.evaluations, strict=True):
        assert b.ok, (b.name, b.error)  # the project's own rule module travelled by value
        assert a.metrics == b.metrics and _quality(a.intervals) == _quality(b.intervals), a.name
    assert remote.need_ml is not None and remote.need_ml.answer == local.need_ml.answer  # type: ignore[union-attr]


def test_unreachable_scheduler_and_unknown_executor_are_one_line() -> None:
    with pytest.raises(FlywheelError, match=r"cannot reach a Dask scheduler at 127\.0\.0\.1:9"):
        make_executor("dask://127.0.0.1:9")
    with pytest.raises(FlywheelError, match="--executor must be 'local' or dask://HOST:PORT; got 'ray://x'"):
        make_executor("ray://x")


def _quality(intervals: dict) -> dict:  # type: ignore[type-arg]
    """Intervals of quality metrics; timings (split "systems") differ from run to run by nature."""
    return {k: v for k, v in intervals.items() if k != "systems"}
