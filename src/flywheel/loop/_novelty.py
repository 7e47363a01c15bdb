"""Reasons to review a prediction that need no class probabilities: inputs outside the data the
model learnt from, inputs in the region where `flywheel monitor` saw the live data drift, and (for
regression) members of an ensemble that disagree.

Uncertainty from probabilities covers classifiers; a regressor, or a classifier with no scores at
all, still has predictions worth a person's look. An input outside the range of every value the
project's data holds for a feature is one the model extrapolates on, whatever its output says.
For a regressor built from many trees (a random forest, extra trees, bagging), the spread of its
members' predictions is its own uncertainty: a row where they disagree widely is one a label
would settle. Where the monitor found the live inputs drifting (a feature's values moved into
ranges, or categories, the training data holds few of), the model answers from little evidence
and its next training set is short of exactly those rows: labels there are what the move back to
data asks for.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DRIFT_WEIGHT",
    "in_drift_region",
    "score_drift",
    "score_out_of_range",
    "score_spread",
]

WIDE = 1.25  # a spread this many times the batch's median is a reason to look (about the widest tenth)
DRIFT_WEIGHT = 1.0  # as much as an input outside the data: the model saw little like it


def _entry_hits(frame: pd.DataFrame, entry: dict[str, Any]) -> tuple[np.ndarray, list[str]]:
    """(rows inside one drift-region entry, a description of each row's hit)."""
    col = entry["feature"]
    n = len(frame)
    if entry["kind"] == "numeric":
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        inside = np.zeros(n, dtype=bool)
        said = [""] * n
        for low, high in entry["ranges"]:
            hit = (values >= low) & (values <= high) & ~inside
            for j in np.flatnonzero(hit):
                said[int(j)] = f"{col} {values[int(j)]:.4g} in [{low:.4g}, {high:.4g}]"
            inside |= hit
        return inside, said
    wanted = {str(v) for v in entry["values"]}
    column = frame[col]
    inside = (column.notna() & column.astype(str).isin(wanted)).to_numpy(dtype=bool)
    return inside, [f"{col} {v!s}" if hit else "" for v, hit in zip(column, inside, strict=True)]


def in_drift_region(frame: pd.DataFrame, region: list[dict[str, Any]]) -> tuple[np.ndarray, list[str | None]]:
    """Which rows lie in the drift ``region`` (any entry: a value in one of a numeric feature's
    ranges, bounds included, or among a categorical feature's values), and for each the first hit.

    Entries for a feature the frame lacks are skipped: the region may come from a monitor of
    another schema version.
    """
    inside = np.zeros(len(frame), dtype=bool)
    first: list[str | None] = [None] * len(frame)
    counts = np.zeros(len(frame), dtype=int)
    for entry in region:
        if entry["feature"] not in frame:
            continue
        hit, said = _entry_hits(frame, entry)
        for j in np.flatnonzero(hit):
            i = int(j)
            counts[i] += 1
            if first[i] is None:
                first[i] = said[i]
        inside |= hit
    for j in np.flatnonzero(counts > 1):
        i = int(j)
        first[i] = f"{first[i]} and {counts[i] - 1} more"
    return inside, first


def score_drift(
    frame: pd.DataFrame, region: list[dict[str, Any]], score: np.ndarray, reasons: list[list[str]]
) -> np.ndarray:
    """Add ``DRIFT_WEIGHT`` to ``score`` per row in the drift ``region``; drift. Returns the rows."""
    inside, first = in_drift_region(frame, region)
    score += inside * DRIFT_WEIGHT
    for j in np.flatnonzero(inside):
        i = int(j)
        reasons[i].append(f"drift ({first[i]})")
    return inside


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
