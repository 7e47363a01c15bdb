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

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from flywheel.evaluation import DecisionCalibrated, with_class_scores
from helpers import FLYWHEEL
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
