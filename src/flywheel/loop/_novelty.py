"""Reasons to review a prediction that need no class probabilities: inputs outside the data the
model learnt from, and (for regression) members of an ensemble that disagree.

Uncertainty from probabilities covers classifiers; a regressor, or a classifier with no scores at
all, still has predictions worth a person's look. An input outside the range of every value the
project's data holds for a feature is one the model extrapolates on, whatever its output says.
For a regressor built from many trees (a random forest, extra trees, bagging), the spread of its
members' predictions is its own uncertainty: a row where they disagree widely is one a label
would settle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "score_out_of_range",
    "score_spread",
]

WIDE = 1.25  # a spread this many times the batch's median is a reason to look (about the widest tenth)


def score_out_of_range(frame: pd.DataFrame, schema: Any, score: np.ndarray, reasons: list[list[str]]) -> None:
    """Add 1 to ``score`` per row with a numeric input outside the data's range; out-of-range."""
    ranges = getattr(schema, "ranges", None) or {}
    outside = np.zeros(len(frame), dtype=int)
    first: list[str | None] = [None] * len(frame)
    for col, (low, high) in ranges.items():
        if col not in frame:
            continue
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        beyond = (values < low) | (values > high)
        for j in np.flatnonzero(beyond):
            i = int(j)
            outside[i] += 1
            if first[i] is None:
                first[i] = f"{col} {values[i]:.4g} outside [{low:.4g}, {high:.4g}]"
    for j in np.flatnonzero(outside):
        k = int(j)
        score[k] += 1.0
        more = f" and {outside[k] - 1} more" if outside[k] > 1 else ""
        reasons[k].append(f"out-of-range ({first[k]}{more})")


def _members(model: Any) -> tuple[Any, list[Any]] | None:
    """(the preprocessing before the ensemble or None, the ensemble's fitted members) when the
    model's last step is an ensemble of regressors whose mean is its prediction."""
    steps = getattr(model, "steps", None)
    final = steps[-1][1] if steps else model
    members = getattr(final, "estimators_", None)
    if members is None:
        return None
    if type(final).__name__ not in ("RandomForestRegressor", "ExtraTreesRegressor", "BaggingRegressor"):
        return None  # boosting's members are not draws of the same prediction
    flat = list(np.ravel(members))
    return (model[:-1] if steps else None), flat


def score_spread(model: Any, frame: pd.DataFrame, score: np.ndarray, reasons: list[list[str]]) -> None:
    """For a tree-ensemble regressor, add spread / median spread to ``score``; wide-spread."""
    found = _members(model)
    if found is None or len(frame) == 0:
        return
    before, members = found
    rows = before.transform(frame) if before is not None else frame
    if hasattr(rows, "to_numpy"):  # the members were fitted on the ensemble's arrays, not a frame
        rows = rows.to_numpy(dtype=float)
    preds = np.stack([np.asarray(m.predict(rows), dtype=float) for m in members])
    spread = preds.std(axis=0)
    typical = float(np.median(spread))
    if not typical > 0:
        return
    score += spread / typical
    for j in np.flatnonzero(spread > WIDE * typical):
        i = int(j)
        reasons[i].append(f"wide-spread (±{spread[i]:.4g}, {spread[i] / typical:.1f}× the batch's median)")
