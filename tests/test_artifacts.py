"""Artifacts: the one place that saves and loads a fitted model, old ones included."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_iris
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

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


class _Contrary(LogisticRegression):
    """A user's classifier whose labels are its least likely class."""

    def predict(self, X: object) -> np.ndarray:
        return self.classes_[np.argmin(self.predict_proba(X), axis=1)]


class _LastOnTies(LogisticRegression):
    """Rounded probabilities (many exact ties) and a predict that breaks ties to the last class, as
    a threshold on a raw score can: presented as one of scikit-learn's linear models."""

    __module__ = "sklearn.linear_model._rounded"

    def predict_proba(self, X: object) -> np.ndarray:
        return np.round(super().predict_proba(X), 1)

    def predict(self, X: object) -> np.ndarray:
        scores = self.predict_proba(X)[:, ::-1]
        return self.classes_[scores.shape[1] - 1 - np.argmax(scores, axis=1)]


_ESTIMATORS = {
    "boosted trees": lambda: HistGradientBoostingClassifier(max_iter=20, random_state=0),
    "forest": lambda: RandomForestClassifier(5, max_depth=2, random_state=0),  # coarse leaves: ties
    "logistic": lambda: LogisticRegression(max_iter=300),
    "neighbours": lambda: KNeighborsClassifier(4),  # 4 votes among 3 classes: ties
    "dummy": lambda: DummyClassifier(strategy="prior"),
    "ties broken the other way": lambda: _LastOnTies(max_iter=300),
    "a user's class": lambda: _Contrary(max_iter=300),  # predict is not the argmax: asked of predict
}


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(30, 200),
    classes=st.integers(2, 4),
    name=st.sampled_from(sorted(_ESTIMATORS)),
    strings=st.booleans(),
)
def test_labels_taken_from_the_scores_are_exactly_predicts(
    seed: int, n: int, classes: int, name: str, strings: bool
) -> None:
    """One pass where predict is the scores' argmax, near ties asked of predict: the labels are always
    predict's own, and the scores predict_proba's, whatever the estimator."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.integers(0, 3, size=(n, 3)).astype(float), columns=["a", "b", "c"])
    codes = np.arange(n) % classes  # every class present
    rng.shuffle(codes)
    y = np.array([f"class {c}" for c in codes]) if strings else codes
    model = make_pipeline(StandardScaler(), _ESTIMATORS[name]()).fit(x, y)
    order = list(reversed(model.classes_))
    labels, proba = predict_with_scores(model, x, order)
    assert labels.tolist() == model.predict(x).tolist()
    assert proba is not None
    assert np.array_equal(proba, model.predict_proba(x)[:, ::-1])
    regression, none = predict_with_scores(model, x, None)
    assert none is None and regression.tolist() == model.predict(x).tolist()
