"""Class probabilities for classifiers that give only decision scores (an SVC without
``probability=True``, a ridge or perceptron classifier).

The service returns probabilities and ``flywheel mine`` reads them to find the predictions worth
a person's look; a champion without them could not be mined. So a fitted classifier with
``decision_function`` and no ``predict_proba`` is wrapped: its decision scores on held-out rows
(the validation split, never the rows it was fitted on, where margins are overconfident) fit a
multinomial logistic regression (Platt scaling, one per class for more than two), which maps
any later scores to probabilities. Its labels stay the model's own ``predict``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DecisionCalibrated",
    "with_class_scores",
]

_MIN_ROWS = 20  # fewer held-out rows than this cannot fit a calibration worth serving


def _scores(model: Any, rows: pd.DataFrame) -> np.ndarray:
    raw = np.asarray(model.decision_function(rows), dtype=float)
    return raw.reshape(-1, 1) if raw.ndim == 1 else raw


class DecisionCalibrated:
    """A classifier whose probabilities are its decision scores, calibrated on held-out rows."""

    def __init__(self, model: Any, calibrator: Any) -> None:
        self.model = model
        self.calibrator = calibrator

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.model.classes_)

    def fit(self, X: pd.DataFrame, y: Any) -> DecisionCalibrated:
        """Refit the model alone; the calibration needs held-out rows (:func:`with_class_scores`)."""
        self.model.fit(X, y)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict(X))

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.decision_function(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities in the order of ``classes_`` (a class the calibration never saw gets 0)."""
        raw = self.calibrator.predict_proba(_scores(self.model, X))
        out = np.zeros((raw.shape[0], len(self.classes_)))
        where = {c: i for i, c in enumerate(self.classes_.tolist())}
        for j, c in enumerate(self.calibrator.classes_.tolist()):
            out[:, where[c]] = raw[:, j]
        return out


def with_class_scores(model: Any, rows: pd.DataFrame, y: Any) -> Any:
    """``model`` itself when it has ``predict_proba`` (or cannot get one), else wrapped with a
    calibration fitted on ``rows`` and their labels ``y``: rows the model was not fitted on."""
    if hasattr(model, "predict_proba") or not hasattr(model, "decision_function"):
        return model
    labels = np.asarray(y)
    if len(labels) < _MIN_ROWS or len(np.unique(labels)) < 2:
        return model
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calibrator = LogisticRegression(C=1.0, max_iter=1000).fit(_scores(model, rows), labels)
    return DecisionCalibrated(model, calibrator)
