"""The data set: a labelled table as read, plus what flywheel inferred about it.

A :class:`Dataset` is the table as read (a built-in scikit-learn set or a CSV,
Parquet or JSONL file, see :mod:`flywheel.data._sources`) plus the task and the
column kinds inferred from it, and a fingerprint so every stored result says
exactly which data produced it. Splitting it is :mod:`flywheel.data._splits`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from flywheel.data._checks import check_values
from flywheel.data._sources import _load_source
from flywheel.errors import DataError
from flywheel.project import PROJECT_FILE, DataSpec

__all__ = [
    "ColumnKinds",
    "Dataset",
    "infer_column_kinds",
    "infer_task",
    "load_dataset",
]

Task = Literal["binary", "multiclass", "regression"]
_MAX_CLASSES_FOR_INTEGERS = 20
_TEXT_MIN_TOKENS = 4


@dataclass(frozen=True)
class ColumnKinds:
    """Which feature columns are numeric, categorical or text, and which were left out."""

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    ignored: dict[str, str] = field(default_factory=dict)  # column -> why it is not a feature

    @property
    def features(self) -> list[str]:
        """All feature columns, numeric first."""
        return [*self.numeric, *self.categorical, *self.text]


def infer_task(y: pd.Series) -> Task:
    """Binary, multiclass or regression, from the target's values.

    Non-numeric and boolean targets are classification; numeric targets with
    fractional values, or more than 20 distinct integers, are regression.

    Examples
    --------
    >>> infer_task(pd.Series([0, 1, 1, 0]))
    'binary'
    >>> infer_task(pd.Series(["cat", "dog", "bird"]))
    'multiclass'
    >>> infer_task(pd.Series([0.5, 1.25, 3.0]))
    'regression'
    """
    values = y.dropna()
    n_unique = values.nunique()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "binary" if n_unique <= 2 else "multiclass"
    as_float = values.to_numpy(dtype=float)
    integral = bool(np.all(np.isfinite(as_float)) and np.all(as_float == np.round(as_float)))
    if integral and n_unique <= _MAX_CLASSES_FOR_INTEGERS:
        return "binary" if n_unique <= 2 else "multiclass"
    return "regression"


def infer_column_kinds(frame: pd.DataFrame, exclude: dict[str, str]) -> ColumnKinds:
    """Sort columns into numeric, categorical and text; ``exclude`` maps column -> role."""
    numeric: list[str] = []
    categorical: list[str] = []
    text: list[str] = []
    ignored = {col: role for col, role in exclude.items() if col in frame.columns}
    for col in frame.columns:
        if col in ignored:
            continue
        s = frame[col]
        if s.isna().all():
            ignored[col] = "empty"
        elif pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            numeric.append(col)
        elif pd.api.types.is_datetime64_any_dtype(s) or isinstance(s.dtype, pd.PeriodDtype):
            ignored[col] = "datetime (not used as a feature)"
        else:
            tokens = s.dropna().astype(str).str.split().str.len()
            (text if tokens.median() >= _TEXT_MIN_TOKENS else categorical).append(col)
    return ColumnKinds(tuple(numeric), tuple(categorical), tuple(text), ignored)


# --- the dataset -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled table and what flywheel inferred about it.

    ``frame`` holds only the labelled rows, in file order, with a fresh
    RangeIndex; row positions index the :class:`~flywheel.data.Split`.
    """

    frame: pd.DataFrame
    source: str
    target: str
    task: Task
    columns: ColumnKinds
    classes: tuple[Any, ...] | None
    id_column: str | None
    fingerprint: str
    rows: np.ndarray  # each labelled row's position in the source file (0-based)
    n_unlabelled: int = 0

    @property
    def X(self) -> pd.DataFrame:
        """The feature columns."""
        return self.frame[self.columns.features]

    @property
    def y(self) -> np.ndarray:
        """The target as a numpy array."""
        return self.frame[self.target].to_numpy()

    @property
    def ids(self) -> pd.Series:
        """Row ids: the id column's values, or the row's position in the source when there is none."""
        if self.id_column is None:
            return pd.Series(self.rows, name="row")
        return self.frame[self.id_column]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description of the data set."""
        out: dict[str, Any] = {
            "source": self.source,
            "rows": len(self.frame),
            "unlabelled_rows": self.n_unlabelled,
            "target": self.target,
            "task": self.task,
            "numeric": list(self.columns.numeric),
            "categorical": list(self.columns.categorical),
            "text": list(self.columns.text),
            "ignored": dict(self.columns.ignored),
            "fingerprint": self.fingerprint,
        }
        if self.classes is not None:
            counts = self.frame[self.target].value_counts()
            out["classes"] = {str(c): int(counts.get(c, 0)) for c in self.classes}
        return out


def _fingerprint(frame: pd.DataFrame, target: str, task: str) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    digest.update(json.dumps({"target": target, "task": task}).encode())
    hashed = pd.util.hash_pandas_object(frame, index=False)
    digest.update(hashed.to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _sorted_classes(y: pd.Series) -> tuple[Any, ...]:
    values = y.unique().tolist()
    try:
        return tuple(sorted(values))
    except TypeError:  # mixed types: order by their text
        return tuple(sorted(values, key=str))


def _check_task(declared: Task | None, inferred: Task, y: pd.Series, target: str, where: str) -> Task:
    task = declared or inferred
    n_unique = y.nunique()
    if task == "regression" and not pd.api.types.is_numeric_dtype(y):
        raise DataError(
            f"{where}: data.task is regression but target {target!r} is not numeric (e.g. {y.iloc[0]!r})"
        )
    if task != "regression" and n_unique < 2:
        raise DataError(
            f"{where}: data.target {target!r} has a single class ({y.iloc[0]!r}) in {len(y)} "
            "labelled rows; classification needs at least two"
        )
    if task == "binary" and n_unique != 2:
        raise DataError(
            f"{where}: data.task is binary but target {target!r} has {n_unique} classes; use multiclass"
        )
    if task == "regression" and n_unique < 2:
        raise DataError(f"{where}: data.target {target!r} is constant ({y.iloc[0]!r}); nothing to predict")
    return task


def load_dataset(spec: DataSpec, root: Path, *, where: str = PROJECT_FILE) -> Dataset:
    """Read the source, check the named columns and their values, infer the task and column kinds.

    Rows whose target is missing are unlabelled: they are counted, not used. Infinite numbers and
    columns that mix numbers with text are refused, naming the columns and how many rows.
    """
    frame = _load_source(spec.source, root, where)
    columns = list(frame.columns)
    if spec.target not in columns:
        shown = ", ".join(columns[:8]) + (", …" if len(columns) > 8 else "")
        raise DataError(
            f"{where}: data.target {spec.target!r} is not a column of {spec.source}; "
            f"columns: {shown} ({len(columns)} in all)"
        )
    roles = {spec.target: "target"}
    for name, col in (
        ("data.id", spec.id),
        ("data.split.group", spec.split.group),
        ("data.split.time", spec.split.time),
    ):
        if col is None:
            continue
        if col not in columns:
            raise DataError(f"{where}: {name} {col!r} is not a column of {spec.source}")
        roles[col] = name.rsplit(".", 1)[-1]
    labelled = frame[spec.target].notna()
    n_unlabelled = int((~labelled).sum())
    rows = np.flatnonzero(labelled.to_numpy())
    frame = frame.loc[labelled].reset_index(drop=True)
    if frame.empty:
        raise DataError(f"{where}: data.target {spec.target!r} has no values; nothing is labelled")
    if spec.id is not None:
        ids = frame[spec.id]
        if ids.isna().any() or ids.duplicated().any():
            dup = ids[ids.duplicated()].head(1).tolist()
            raise DataError(
                f"{where}: data.id {spec.id!r} must be unique and present on every row; "
                f"got {'a duplicate ' + repr(dup[0]) if dup else 'missing values'}"
            )
    values = [c for c in frame.columns if c == spec.target or c not in roles]
    check_values(frame, values, source=spec.source, where=where)
    y = frame[spec.target]
    task = _check_task(spec.task, infer_task(y), y, spec.target, where)
    kinds = infer_column_kinds(frame, roles)
    if not kinds.features:
        raise DataError(f"{where}: {spec.source} has no feature columns besides {sorted(roles)}")
    classes = _sorted_classes(y) if task != "regression" else None
    return Dataset(
        frame=frame,
        source=spec.source,
        target=spec.target,
        task=task,
        columns=kinds,
        classes=classes,
        id_column=spec.id,
        fingerprint=_fingerprint(frame, spec.target, task),
        rows=rows,
        n_unlabelled=n_unlabelled,
    )
