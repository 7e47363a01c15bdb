"""The newcomer's path: `flywheel demo`, then the commands it prints, and nothing else.

The demo ends with a champion that the gate promoted (recorded as such, not forced) and the
three commands to paste: serve it, send it the example request, mine what it logged. The
champion is an SVC, which has no predict_proba: it serves probabilities calibrated on held-out
rows, so mining finds the predictions worth a person's look.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from flywheel.evaluation import DecisionCalibrated, with_class_scores
from helpers import FLYWHEEL, write_project
from test_serve import Server


def test_demo_then_the_printed_commands_give_a_served_mined_champion(tmp_path: Path) -> None:
    shown = subprocess.run([str(FLYWHEEL), "demo"], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert shown.returncode in (0, 1, 3), shown.stderr
    lines = shown.stdout.strip().splitlines()
    champion = next(line for line in lines if line.startswith("champion: "))
    assert "the gate passed it against" in champion and "(recorded as such)" in champion
    assert lines[-4] == "next, in a second terminal each:"
    assert lines[-3].strip() == "flywheel serve flywheel-demo"
    assert lines[-2].strip().startswith("curl -s -X POST http://127.0.0.1:8000/predict")
    assert lines[-1].strip() == "flywheel mine flywheel-demo"
    listed = json.loads(
        subprocess.run(
            [str(FLYWHEEL), "models", "flywheel-demo", "--json"], capture_output=True, text=True, cwd=tmp_path
        ).stdout
    )
    crowned = [m for m in listed if "champion" in m["aliases"]]
    assert len(crowned) == 1 and crowned[0]["forced"] == []
    request = re.search(r"-d @(\S+)", lines[-2])
    assert request is not None
    body = json.loads((tmp_path / request.group(1)).read_text())
    server = Server(tmp_path / "flywheel-demo")
    try:
        first = httpx.post(server.url + "/predict", json=body).json()
        assert first["probabilities"] is not None and abs(sum(first["probabilities"].values()) - 1) < 1e-9
        frame = load_digits(as_frame=True).frame.drop(columns=["target"])
        frame.columns = list(body)  # the demo's column names, in the data's order
        rows = [{k: float(v) for k, v in r.items()} for r in frame.iloc[:300].to_dict(orient="records")]
        for start in range(0, 300, 50):
            assert (
                httpx.post(server.url + "/predict", json={"rows": rows[start : start + 50]}).status_code
                == 200
            )
    finally:
        server.stop()
    mined = subprocess.run(
        [str(FLYWHEEL), "mine", "flywheel-demo"], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert mined.returncode == 0, mined.stderr
    assert "nothing to mine" not in mined.stdout, mined.stdout
    _label_and_retrain(tmp_path, mined.stdout, frame, load_digits().target)


def _follow(cwd: Path, line: str) -> subprocess.CompletedProcess[str]:
    """Run a `flywheel …` line as printed (up to a `#` comment)."""
    words = line.split("#")[0].split()
    assert words[0] == "flywheel", line
    return subprocess.run([str(FLYWHEEL), *words[1:]], capture_output=True, text=True, cwd=cwd, timeout=600)


def _label_and_retrain(cwd: Path, mined: str, frame: Any, truth: np.ndarray) -> None:
    """Export the queue, label it as a person would (the true digits), import, retrain, and do
    what retrain says next: promote, or mine again."""
    steps = [
        line.strip()
        for line in mined.splitlines()[
            mined.splitlines().index(
                next(line for line in mined.splitlines() if line.startswith("next: label them"))
            )
            + 1 :
        ]
    ]
    export, imported, retrain = steps[:3]
    assert _follow(cwd, export).returncode == 0
    queue = pd.read_csv(cwd / "queue.csv")
    by_row = {tuple(np.round(r, 6)): int(t) for r, t in zip(frame.to_numpy(), truth, strict=False)}
    queue["label"] = [by_row[tuple(np.round(r, 6))] for r in queue[list(frame.columns)].to_numpy()]
    queue.to_csv(cwd / "queue.csv", index=False)
    done = _follow(cwd, imported)
    assert done.returncode == 0, done.stderr
    retrained = _follow(cwd, retrain)
    assert retrained.returncode in (0, 1, 3), retrained.stderr
    last = retrained.stdout.strip().splitlines()[-1]
    if retrained.returncode == 0:
        assert last == "next: flywheel promote rbf-svm flywheel-demo"
        promoted = _follow(cwd, last.removeprefix("next: "))
        assert promoted.returncode == 0, promoted.stderr
    else:
        assert last.startswith("next: more labels settle it — flywheel mine flywheel-demo")


@pytest.mark.parametrize("binary", [False, True])
def test_decision_scores_become_calibrated_probabilities(binary: bool) -> None:
    X, y = load_digits(return_X_y=True, as_frame=True)
    if binary:
        y = (y == 3).astype(int)
    fit, held, test = slice(0, 900), slice(900, 1350), slice(1350, None)
    svc = SVC().fit(X[fit], y[fit])
    model = with_class_scores(svc, X[held], y[held])
    assert isinstance(model, DecisionCalibrated)
    proba = model.predict_proba(X[test])
    assert proba.shape == (len(X[test]), len(svc.classes_))
    assert np.allclose(proba.sum(axis=1), 1) and (proba >= 0).all()
    assert (model.predict(X[test]) == svc.predict(X[test])).all()  # the labels stay the model's own
    # Calibrated: on the test rows, the mean confidence is close to the accuracy.
    confidence = proba.max(axis=1).mean()
    accuracy = (model.classes_[proba.argmax(axis=1)] == y[test].to_numpy()).mean()
    assert abs(confidence - accuracy) < 0.05
    # A model with probabilities, or too few held-out rows, is left as it is.
    assert with_class_scores(svc, X[held][:5], y[held][:5]) is svc
    proba_model = LogisticRegression(max_iter=2000).fit(X[fit], y[fit])
    assert with_class_scores(proba_model, X[held], y[held]) is proba_model


REGRESSION = """\
project: progression
problem: Estimate one-year disease progression.
data:
  source: builtin:diabetes
  target: progression
  split: {test: 0.2, valid: 0.2, seed: 3}
objective:
  optimize: mae
diagnosis: {forecast: false}
models:
  - name: forest
    estimator: sklearn.ensemble.RandomForestRegressor
    params: {n_estimators: 40, random_state: 0}
"""


def test_a_regression_champion_can_be_mined(tmp_path: Path) -> None:
    """No probabilities: the forest's members' spread and inputs outside the data's range are reasons."""
    from flywheel import run
    from flywheel.loop import mine
    from flywheel.pipeline import promote
    from flywheel.project import load_project

    path = write_project(tmp_path, REGRESSION)
    run(path, report=False)
    promote("forest", path, force=True)
    frame = load_diabetes(as_frame=True, scaled=True).frame.drop(columns=["target"])
    pool = frame.iloc[:120].copy()
    pool.loc[pool.index[:3], "bmi"] = 5.0  # far outside the data: the model extrapolates
    pool.to_csv(tmp_path / "pool.csv", index=False)
    items = mine(load_project(path), 30, pool=tmp_path / "pool.csv")
    reasons = [r for item in items for r in item.reasons]
    assert sum(r.startswith("out-of-range (bmi 5 outside [") for r in reasons) == 3
    assert any(r.startswith("wide-spread (±") for r in reasons)
    assert len(items) <= 30 and all(item.reasons for item in items)
