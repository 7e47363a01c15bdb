"""The Dask executor against a real LocalCluster on 127.0.0.1: same results as the local one.

The ladder, the learning curve and retraining give the same values on both executors for the
same seeds; ``--executor dask:local`` runs a project end to end from the command line; a scheduler
that is not there is one line and exit 2, in seconds, before anything is fitted.
"""

from __future__ import annotations

import json
import pickle
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris

from flywheel.errors import FlywheelError
from flywheel.execution import DaskExecutor, LocalExecutor, make_executor
from flywheel.loop import retrain
from flywheel.pipeline import promote, run
from flywheel.prediction_log import LOG_NAME, PredictionLog, PredictionRecord
from flywheel.project import load_project
from flywheel.registry import load_alias
from helpers import IRIS_PROJECT, IRIS_TWO_MODELS, tabular_frame, write_project

distributed = pytest.importorskip("distributed")

PROJECT = """\
project: dask
data: {source: data.csv, target: label, id: id, split: {seed: 5}}
objective: {optimize: f1_macro}
baselines: {rules: ["team_rules:predict"], time_budget_s: 120}
diagnosis: {sizes: 4, seeds: 2}
models:
  - {name: tree, estimator: sklearn.tree.DecisionTreeClassifier, params: {max_depth: 4, random_state: 0}}
  - {name: own, factory: "dask_own_models:make"}
"""

OWN_MODELS = """\
from sklearn.linear_model import LogisticRegression


class Own(LogisticRegression):
    pass


def make():
    return Own(max_iter=500)
"""


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """Two single-threaded worker processes, as a small cluster of other machines would be."""
    with (
        distributed.LocalCluster(
            host="127.0.0.1",
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # never port 8787: it may be taken
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def test_the_ladder_and_the_learning_curve_agree_with_the_local_executor(tmp_path: Path, client: Any) -> None:
    tabular_frame(300).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "team_rules.py").write_text(
        "def predict(rows):\n    return ['yes' if v > 0 else 'no' for v in rows['x1']]\n"
    )
    (tmp_path / "dask_own_models.py").write_text(OWN_MODELS)
    path = write_project(tmp_path, PROJECT)
    local = run(path, save=False, report=False, executor=LocalExecutor(2))
    remote = run(path, save=False, report=False, executor=DaskExecutor(client))
    assert [e.name for e in remote.evaluations] == [e.name for e in local.evaluations]
    for a, b in zip(local.evaluations, remote.evaluations, strict=True):
        assert b.ok, (b.name, b.error)  # the project's own modules (rule, model class) travelled by value
        assert a.metrics == b.metrics and _quality(a.intervals) == _quality(b.intervals), a.name
        assert (a.artifact is None) == (b.artifact is None) == (a.role != "candidate"), a.name
        if a.artifact is not None and b.artifact is not None:  # pickled here: loadable by name
            rows = tabular_frame(300).drop(columns=["label"])
            assert np.array_equal(
                pickle.loads(a.artifact).predict(rows), pickle.loads(b.artifact).predict(rows)
            )
        # latency was timed here, after the fit on a worker: the same figures a local run reports
        assert {k for k in a.systems if "latency" in k} == {k for k in b.systems if "latency" in k}, a.name
    assert remote.need_ml is not None and remote.need_ml.answer == local.need_ml.answer  # type: ignore[union-attr]
    curves = [r.diagnosis.curve for r in (local, remote) if r.diagnosis is not None]
    assert len(curves) == 2 and curves[0] is not None and curves[1] is not None
    assert len(curves[0].points) == 4 * 2 and curves[0].points == curves[1].points
    assert remote.forecast is not None and local.forecast is not None
    assert remote.forecast.to_dict() == local.forecast.to_dict()


def test_retraining_fits_the_same_model_on_either_executor(tmp_path: Path, client: Any) -> None:
    path = write_project(tmp_path / "iris", IRIS_TWO_MODELS.format(name="iris-dask"))
    run(path, report=False, executor=DaskExecutor(client))
    promote("logreg", path, force=True)
    _feedback(path, 60)
    project = load_project(path)
    results = []
    for executor in (LocalExecutor(1), DaskExecutor(client)):
        outcome = retrain(project, executor=executor)
        results.append((outcome, load_alias(project, "challenger").model))
    (first, a), (second, b) = results
    assert (first.version, second.version) == (2, 3) and first.trained_rows == second.trained_rows
    rows = load_iris(as_frame=True).frame.drop(columns=["target"])
    assert np.array_equal(a.predict_proba(rows), b.predict_proba(rows))
    assert first.verdict == second.verdict


def test_dask_local_runs_a_project_from_the_command_line(
    tmp_path: Path, cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    path = write_project(tmp_path / "iris", IRIS_PROJECT + "diagnosis: {sizes: 4, seeds: 1}\n")
    proc = cli("run", str(path), "--executor", "dask:local", "--workers", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr
    result = json.loads(proc.stdout)
    assert all(e["error"] is None for e in result["evaluations"]), result["evaluations"]
    assert len(result["diagnosis"]["curve"]["points"]) == 4
    assert all("latency_p50_ms" in e["systems"] for e in result["evaluations"] if e["stage"] == "model")


def test_an_unreachable_scheduler_is_one_line_before_anything_is_fitted(
    iris_project: Path, cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    for command in ("run", "retrain"):
        started = time.perf_counter()
        proc = cli(command, str(iris_project), "--executor", "dask://127.0.0.1:1")
        assert time.perf_counter() - started < 15, command  # a refused connection is not retried
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert lines[0].startswith("error: --executor: cannot reach a Dask scheduler at dask://127.0.0.1:1 (")
    assert not (iris_project.parent / ".flywheel").exists()  # nothing fitted, nothing stored


def test_unknown_or_malformed_executors_list_the_allowed_forms() -> None:
    allowed = "--executor must be 'local' or dask://HOST:PORT (a running scheduler) or dask:local ("
    for spec in ("ray://x", "dask://nohost", "dask://host:http", "dask:locale"):
        with pytest.raises(FlywheelError) as caught:
            make_executor(spec)
        assert str(caught.value).startswith(allowed) and str(caught.value).endswith(f"; got '{spec}'")
    with pytest.raises(FlywheelError, match=r"cannot reach a Dask scheduler at dask://127\.0\.0\.1:9 "):
        make_executor("dask://127.0.0.1:9")


def test_a_local_cluster_is_shut_down_at_the_end_even_on_error() -> None:
    with pytest.raises(RuntimeError, match="stop"), make_executor("dask:local", 1) as executor:
        assert isinstance(executor, DaskExecutor) and executor.same_machine
        host, port = executor.client.scheduler.address.removeprefix("tcp://").rsplit(":", 1)
        raise RuntimeError("stop")
    assert executor.client.status == "closed"
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=2).close()


def _feedback(path: Path, n: int) -> None:
    """``n`` logged iris predictions, each labelled with its true species (half are held out)."""
    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns=["target"])
    log = PredictionLog(path.parent / ".flywheel" / LOG_NAME)
    try:
        for i in range(n):
            row = frame.iloc[(i * 7) % len(frame)].to_dict()
            record = PredictionRecord(f"q{i:04d}", time.time(), "logreg", 1, row, "setosa", None, 1.0)
            log.submit(record)
            log.add_feedback(record.id, str(data.target_names[data.target[(i * 7) % len(frame)]]), "ops")
    finally:
        log.close()


def _quality(intervals: dict) -> dict:  # type: ignore[type-arg]
    """Intervals of quality metrics; timings (split "systems") differ from run to run by nature."""
    return {k: v for k, v in intervals.items() if k != "systems"}
