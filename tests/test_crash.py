"""Crash consistency: a CLI command killed at any moment leaves a store that opens and a whole champion."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from sklearn.datasets import load_iris

from flywheel.evaluation import read_artifact
from flywheel.pipeline import promote, run
from flywheel.prediction_log import LOG_NAME, PredictionLog, PredictionRecord
from flywheel.registry import DB_NAME, open_store
from helpers import FLYWHEEL, IRIS_TWO_MODELS, write_project

PROJECT = IRIS_TWO_MODELS.format(name="crashing")


def _killed(args: list[str], *, after: float | None = None, when: Path | None = None) -> None:
    """Start ``flywheel ARGS`` and SIGKILL it ``after`` seconds, or as soon as ``when`` exists."""
    proc = subprocess.Popen([str(FLYWHEEL), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + (after if after is not None else 60.0)
    while proc.poll() is None and time.monotonic() < deadline:
        if when is not None and when.exists():
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _check_consistent(store_dir: Path) -> None:
    """The store opens and lists; every saved model (the champion among them) has its artifact, whole."""
    if not (store_dir / DB_NAME).exists():
        return
    store = open_store(store_dir)
    try:
        store.list_runs()
        models = store.list_models("crashing")
        champion = store.get_alias("crashing", "champion")
    finally:
        store.close()
    for entry in models:
        read_artifact(entry, "saved")
    if champion is not None:
        assert champion["id"] in {m["id"] for m in models}
        read_artifact(champion, "champion")


def _log_feedback(path: Path) -> None:
    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns=["target"])
    log = PredictionLog(path.parent / ".flywheel" / LOG_NAME)
    for i, row in enumerate(frame.iloc[::3].to_dict(orient="records")):
        rec = PredictionRecord(f"c{i:04d}", time.time(), "logreg", 1, row, "setosa", None, 1.0)
        log.submit(rec)
        log.add_feedback(rec.id, str(data.target_names[data.target.iloc[3 * i]]), "ops")
    log.close()


def test_sigkill_leaves_a_consistent_store(tmp_path: Path) -> None:
    path = write_project(tmp_path / "p", PROJECT)
    store_dir = path.parent / ".flywheel"
    _killed(["run", str(path), "--workers", "1"], when=store_dir / DB_NAME)  # as the store is being created
    _check_consistent(store_dir)
    for after in (1.0, 2.5, 4.0):
        _killed(["run", str(path), "--workers", "1"], after=after)
        _check_consistent(store_dir)
    run(path, report=False, diagnose=False)
    promote("logreg", path, force=True)
    for after in (0.5, 1.5, 2.5):
        _killed(["promote", "tree", str(path), "--force"], after=after)
        _check_consistent(store_dir)
    _log_feedback(path)
    for after in (1.0, 2.5, 4.0):
        _killed(["retrain", str(path)], after=after)
        _check_consistent(store_dir)
    finished = subprocess.run(
        [str(FLYWHEEL), "run", str(path), "--workers", "1"], capture_output=True, text=True, timeout=300
    )
    assert finished.returncode == 0, finished.stderr
    _check_consistent(store_dir)
