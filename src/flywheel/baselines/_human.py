"""Human level: a declared number with its interval, or measured from annotators' labels.

Human-level performance stands in for the best achievable error, so it bounds
what a model can be expected to reach. A declared accuracy on ``n`` rows gets a
Wilson interval (a declared 0.985 on 50 rows is much weaker evidence than on
5,000). Given a file of two or more annotators' labels for the same rows, each
annotator's and the panel's (majority vote) score is measured against the
reference label, with intervals: the better and more numerous the annotators,
the higher and more trustworthy the human rung.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flywheel.data import Dataset, read_table
from flywheel.errors import DataError
from flywheel.metrics import score
from flywheel.project import PROJECT_FILE

__all__ = [
    "HumanLevel",
    "measure_annotators",
]


@dataclass(frozen=True)
class HumanLevel:
    """Human level on the objective's metric, measured from annotators."""

    metric: str
    value: float
    low: float | None
    high: float | None
    n_rows: int
    annotators: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


def _majority(labels: pd.Series) -> Any:
    counts = labels.value_counts()
    top = counts[counts == counts.iloc[0]].index
    return sorted(top, key=str)[0]  # ties: the first label in sorted order, so the vote is reproducible


def measure_annotators(
    path: Path, ds: Dataset, metric: str, *, given: str, where: str = PROJECT_FILE
) -> HumanLevel:
    """Each annotator's and the panel's score against the reference labels.

    The file has one row per (item, annotator): columns ``id`` (the data's id
    column, or the row number when there is none), ``annotator`` and ``label``;
    an optional ``reference`` column gives the true label where the data set
    lacks the row.
    """
    field_name = "baselines.human.annotators"
    frame = read_table(path, field=field_name, where=where, given=given)
    missing = [c for c in ("id", "annotator", "label") if c not in frame.columns]
    if missing:
        raise DataError(
            f"{where}: {field_name} {given!r} lacks column {missing[0]!r}; "
            "expected columns id, annotator, label"
        )
    data_ids = ds.ids.astype(str)
    position = pd.Series(np.arange(len(data_ids)), index=data_ids.to_numpy())
    ids = frame["id"].astype(str)
    unknown = ~ids.isin(position.index)
    if unknown.any() and "reference" not in frame.columns:
        shown = ", ".join(ids[unknown].unique()[:3])
        raise DataError(
            f"{where}: {field_name} {given!r} has {int(unknown.sum())} rows whose id is not in "
            f"the data (e.g. {shown}); ids must match {ds.id_column or 'the row number'}"
        )
    if frame["annotator"].nunique() < 1:
        raise DataError(f"{where}: {field_name} {given!r} has no annotators")
    classes = None if ds.classes is None else np.asarray(ds.classes)
    by_text = {str(c): c for c in ds.classes} if ds.classes is not None else {}

    def labels_of(values: Any) -> np.ndarray:
        if ds.classes is None:
            return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
        return np.asarray([by_text.get(str(v), v) for v in values], dtype=object)

    # One reference label per item: the data's target, else the file's reference column.
    items = pd.Index(ids.unique())
    in_data = items.isin(position.index)
    reference = pd.Series(index=items, dtype=object)
    reference[in_data] = list(ds.y[position[items[in_data]].to_numpy()])
    if (~in_data).any():
        first = frame.assign(_id=ids).groupby("_id")["reference"].first()
        reference[~in_data] = first[items[~in_data]].to_numpy()

    def measured(truth: Any, labels: Any) -> Any:
        try:
            return score(labels_of(truth), labels_of(labels), metrics=[metric], classes=classes)[metric]
        except ValueError as exc:
            raise DataError(f"{where}: {field_name} {given!r}: {exc}") from None

    per_annotator: dict[str, dict[str, Any]] = {}
    for name, rows in frame.groupby("annotator", sort=True):
        est = measured(reference[ids[rows.index]].to_numpy(), rows["label"].to_numpy())
        per_annotator[str(name)] = {"value": est.value, "low": est.low, "high": est.high, "n": est.n}
    votes = frame.assign(_id=ids).groupby("_id")["label"].agg(_majority)
    panel = measured(reference[votes.index].to_numpy(), votes.to_numpy())
    note = None
    if len(per_annotator) < 2:
        note = "one annotator: the panel is that annotator"
    return HumanLevel(metric, panel.value, panel.low, panel.high, panel.n, per_annotator, note or panel.note)
