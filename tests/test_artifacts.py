"""Artifacts: the one place that saves and loads a fitted model, old ones included."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from sklearn.datasets import load_iris

from flywheel.baselines import OneFeatureRule
from flywheel.data import load_dataset
from flywheel.errors import ModelError
from flywheel.evaluation import load_model, predict_with_scores, save_artifact
from flywheel.project import load_project
from helpers import IRIS_PROJECT, write_project

FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def _fitted_rule() -> OneFeatureRule:
    data = load_iris(as_frame=True)
    return OneFeatureRule(numeric=FEATURES, categorical=[]).fit(data.data, data.target_names[data.target])


def _entry(path: Path) -> dict[str, object]:
    return {"path": str(path), "name": "one-feature", "version": 1, "id": 7}


def test_a_saved_model_loads_with_its_schema_and_predicts_the_same(tmp_path: Path) -> None:
    project = load_project(write_project(tmp_path, IRIS_PROJECT))
    ds = load_dataset(project.data, project.root)
    rule = _fitted_rule()
    path = project.store_dir / "models" / "one-feature" / "v1.pkl"
    save_artifact(path, pickle.dumps(rule), ds)
    loaded = load_model(project, _entry(path), "champion")
    assert (loaded.name, loaded.version, loaded.alias, loaded.model_id) == ("one-feature", 1, "champion", 7)
    assert list(loaded.schema.features) == FEATURES and loaded.schema.task == "multiclass"
    labels, _ = predict_with_scores(loaded.model, ds.X, loaded.schema.classes)
    assert (labels == rule.predict(ds.X)).all()


def test_an_artifact_saved_before_the_move_still_loads(tmp_path: Path) -> None:
    """Pickles name classes by module: one made when the ladder's rules lived in flywheel.heuristics."""
    project = load_project(write_project(tmp_path, IRIS_PROJECT))
    ds = load_dataset(project.data, project.root)
    here = b"flywheel.baselines._heuristics\n"
    old = pickle.dumps(_fitted_rule(), protocol=2)  # protocol 2 names modules as plain lines
    assert here in old
    old = old.replace(here, b"flywheel.heuristics\n")
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(old)
    path = project.store_dir / "models" / "one-feature" / "v1.pkl"
    save_artifact(path, old, ds)
    loaded = load_model(project, _entry(path), "champion")
    assert type(loaded.model) is OneFeatureRule


def test_a_corrupt_artifact_is_one_line(tmp_path: Path) -> None:
    project = load_project(write_project(tmp_path, IRIS_PROJECT))
    path = tmp_path / "v1.pkl"
    path.write_bytes(b"not a pickle")
    path.with_suffix(".schema.json").write_text(
        json.dumps({"features": {}, "task": "binary", "classes": [0, 1], "target": "y"}), encoding="utf-8"
    )
    with pytest.raises(ModelError, match=r"^champion one-feature v1 \(.*v1\.pkl\): the artifact is corrupt"):
        load_model(project, _entry(path), "champion")
