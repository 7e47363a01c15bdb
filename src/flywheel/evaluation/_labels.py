"""A classifier's labels and class scores, from one pass over the model where that is exact.

Scoring needs both a model's labels (accuracy, F1) and its class scores (log loss, AUC, mining);
``predict`` and ``predict_proba`` each walk the whole model: for boosted trees on 20,000 rows,
two passes over 900 trees, half of a rung's scoring time. Where the final estimator's
``predict`` is the class of its largest probability by construction (scikit-learn's linear
models, ensembles, trees, neighbours, naive Bayes, discriminant analysis, neural networks and
dummies; LightGBM), the labels come from the scores. Rows whose two largest scores lie within
``1e-9`` of each other, where a threshold on a raw score and an ``argmax`` on probabilities may
break a tie differently, are asked of ``predict`` itself, so the labels are ``predict``'s.
Any other model (an SVC with Platt probabilities, a calibrated wrapper, a user's class) is
asked both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "align_proba",
    "class_scores",
    "predict_with_scores",
]

# Final estimators whose predict() is the argmax of predict_proba(), ties aside.
_ARGMAX_MODULES = (
    "sklearn.linear_model",
    "sklearn.ensemble",
    "sklearn.tree",
    "sklearn.neighbors",
    "sklearn.naive_bayes",
    "sklearn.discriminant_analysis",
    "sklearn.neural_network",
    "sklearn.dummy",
    "lightgbm.sklearn",
)
_TIE = 1e-9


def align_proba(raw: np.ndarray, model_classes: Sequence[Any], classes: Sequence[Any]) -> np.ndarray:
    """A model's class scores (columns in ``model_classes`` order) as columns in ``classes`` order.

    Classes match by their text, so labels read back from JSON (``"7"``) meet the model's (``7``);
    a class the model never saw scores 0.
    """
    position = {str(c): i for i, c in enumerate(classes)}
    out = np.zeros((raw.shape[0], len(classes)))
    for j, c in enumerate(model_classes):
        if str(c) in position:
            out[:, position[str(c)]] = raw[:, j]
    return out


def _raw_scores(model: Any, rows: pd.DataFrame) -> np.ndarray | None:
    if not hasattr(model, "predict_proba"):
        return None
    try:
        return np.asarray(model.predict_proba(rows), dtype=float)
    except (AttributeError, NotImplementedError):
        return None


def class_scores(model: Any, rows: pd.DataFrame, classes: Sequence[Any]) -> np.ndarray | None:
    """``predict_proba`` aligned to ``classes``, or ``None`` when the model gives no scores."""
    raw = _raw_scores(model, rows)
    return None if raw is None else align_proba(raw, list(getattr(model, "classes_", classes)), classes)


def _final_step(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return _final_step(steps[-1][1]) if steps else model


def _argmax_consistent(model: Any) -> bool:
    final = _final_step(model)
    module = type(final).__module__
    return module.startswith(_ARGMAX_MODULES) and type(final).__name__ != "SGDClassifier"


def predict_with_scores(
    model: Any, frame: pd.DataFrame, classes: Sequence[Any] | None, runner: Any = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``predict``'s labels (or values) and the class scores aligned to ``classes`` (None for
    regression or a model without scores), in one model call where the labels are the scores'
    argmax.

    ``runner`` predicts in the model's stead when given: the same predictions, faster (the
    service's fast path for numeric pipelines).
    """
    runner = runner or model
    raw = _raw_scores(runner, frame) if classes is not None else None
    if raw is None or classes is None:
        return np.asarray(runner.predict(frame)), None
    model_classes = list(getattr(model, "classes_", classes))
    if not _argmax_consistent(model) or raw.ndim != 2 or raw.shape[1] != len(model_classes):
        return np.asarray(runner.predict(frame)), align_proba(raw, model_classes, classes)
    labels = np.asarray(model_classes)[np.argmax(raw, axis=1)]
    if raw.shape[1] > 1 and len(raw):
        top2 = np.partition(raw, raw.shape[1] - 2, axis=1)[:, -2:]
        near = np.flatnonzero(top2[:, 1] - top2[:, 0] <= _TIE)
        if len(near):
            labels[near] = np.asarray(runner.predict(frame.iloc[near]))  # classes_: the same dtype
    return labels, align_proba(raw, model_classes, classes)
