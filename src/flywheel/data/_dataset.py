"""Data: sources, task inference, column kinds, leak-free splits and a fingerprint.

A :class:`Dataset` is the table as read (a built-in scikit-learn set or a CSV,
Parquet or JSONL file) plus what flywheel inferred about it. A :class:`Split`
assigns every labelled row to train, valid or test, deterministically from the
seed: stratified by class for classification, keeping each group in one split
when a group column is named, and putting the latest rows in test when a time
column is named. Both carry a fingerprint so every stored result says exactly
which data and which split produced it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from flywheel.errors import DataError
from flywheel.project import PROJECT_FILE, DataSpec, SplitSpec

__all__ = [
    "BUILTIN_SETS",
    "ColumnKinds",
    "Dataset",
    "SPLIT_ALGORITHM",
    "Split",
    "infer_column_kinds",
    "infer_task",
    "load_dataset",
    "read_table",
    "split_dataset",
]

Task = Literal["binary", "multiclass", "regression"]
SPLIT_ALGORITHM = "split-v1"  # part of the split fingerprint: change it when the algorithm changes
_MAX_CLASSES_FOR_INTEGERS = 20
_TEXT_MIN_TOKENS = 4


# --- sources -----------------------------------------------------------------------------------


def _builtin(loader: str, target: str, names: bool) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from sklearn import datasets

        bunch = getattr(datasets, loader)(as_frame=True)
        frame = bunch.frame.rename(columns={"target": target})
        if names:
            frame[target] = pd.Series(
                np.asarray(bunch.target_names)[frame[target].to_numpy()], dtype=object, index=frame.index
            )
        return frame

    return load


BUILTIN_SETS: dict[str, tuple[Callable[[], pd.DataFrame], str]] = {
    # name: (loader, target column). All ship with scikit-learn: no download.
    "digits": (_builtin("load_digits", "digit", names=False), "digit"),
    "breast_cancer": (_builtin("load_breast_cancer", "diagnosis", names=True), "diagnosis"),
    "wine": (_builtin("load_wine", "cultivar", names=True), "cultivar"),
    "iris": (_builtin("load_iris", "species", names=True), "species"),
    "diabetes": (_builtin("load_diabetes", "progression", names=False), "progression"),
}

_READERS: dict[str, tuple[str, Callable[[Path], pd.DataFrame]]] = {
    ".csv": ("CSV", lambda p: pd.read_csv(p)),
    ".parquet": ("Parquet", lambda p: pd.read_parquet(p)),
    ".jsonl": ("JSON lines", lambda p: pd.read_json(p, lines=True)),
}


def read_table(
    path: Path, *, field: str, where: str = PROJECT_FILE, given: str | None = None
) -> pd.DataFrame:
    """Read a CSV, Parquet or JSONL file; errors name ``field`` and the path as ``given``."""
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise DataError(f"{where}: {field} must be a .csv, .parquet or .jsonl file; got {path.name!r}")
    if not path.is_file():
        shown = given if given is not None else str(path)
        looked = f" (looked for {path})" if shown != str(path) else ""
        raise DataError(f"{where}: {field} {shown!r} does not exist{looked}")
    kind, reader = _READERS[suffix]
    try:
        frame = reader(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{where}: {field} {path.name!r} is empty") from None
    except Exception as exc:  # parsers raise many types; any of them means "not readable"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{where}: {field} {path.name!r} cannot be read as {kind}: {reason}") from None
    if frame.empty:
        raise DataError(f"{where}: {field} {path.name!r} has no rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _load_source(source: str, root: Path, where: str) -> pd.DataFrame:
    if source.startswith("builtin:"):
        name = source.removeprefix("builtin:")
        if name not in BUILTIN_SETS:
            raise DataError(
                f"{where}: data.source must be one of "
                f"{', '.join('builtin:' + n for n in BUILTIN_SETS)} or a .csv, .parquet or .jsonl "
                f"file; got {source!r}"
            )
        return BUILTIN_SETS[name][0]()
    path = Path(source).expanduser()
    return read_table(
        path if path.is_absolute() else root / path, field="data.source", where=where, given=source
    )


# --- inference ---------------------------------------------------------------------------------


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
    RangeIndex; row positions index the :class:`Split`.
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
    """Read the source, check the named columns, infer the task and column kinds.

    Rows whose target is missing are unlabelled: they are counted, not used.
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


# --- splits ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Split:
    """Row positions of train, valid and test, and how they were chosen."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    strategy: Literal["stratified", "random", "group", "time"]
    spec: SplitSpec
    fingerprint: str
    # Rows from the training distribution held out from fitting (``split.train_dev``); may be empty.
    train_dev: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def sizes(self) -> dict[str, int]:
        """Rows per split (train_dev only when the project holds one out)."""
        out = {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}
        if len(self.train_dev):
            out["train_dev"] = len(self.train_dev)
        return out

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description of the split."""
        return {
            "strategy": self.strategy,
            **self.sizes(),
            "seed": self.spec.seed,
            "fingerprint": self.fingerprint,
        }


def _assign_by_quantile(order: np.ndarray, spec: SplitSpec) -> np.ndarray:
    """0 = test, 1 = valid, 2 = train for rows ranked by ``order`` (a permutation of positions)."""
    u = (np.arange(len(order)) + 0.5) / len(order)
    part = np.where(u < spec.test, 0, np.where(u < spec.test + spec.valid, 1, 2))
    out = np.empty(len(order), dtype=np.int8)
    out[order] = part
    return out


def _stratified(y: np.ndarray, spec: SplitSpec, rng: np.random.Generator) -> np.ndarray:
    part = np.empty(len(y), dtype=np.int8)
    _, codes = np.unique(y.astype(str), return_inverse=True)
    for code in range(codes.max() + 1):
        members = np.flatnonzero(codes == code)
        local = _assign_by_quantile(rng.permutation(len(members)), spec)
        part[members] = local
    return part


def _by_group(groups: pd.Series, spec: SplitSpec, rng: np.random.Generator, where: str) -> np.ndarray:
    if groups.isna().any():
        raise DataError(
            f"{where}: data.split.group {groups.name!r} has {int(groups.isna().sum())} missing "
            "values; every row needs a group"
        )
    codes, uniques = pd.factorize(groups, sort=True)
    if len(uniques) < 3:
        raise DataError(
            f"{where}: data.split.group {groups.name!r} needs at least 3 groups for train, valid "
            f"and test; got {len(uniques)}"
        )
    sizes = np.bincount(codes)
    order = rng.permutation(len(uniques))
    # A group goes to the split in which the middle of its rows falls.
    centres = (np.cumsum(sizes[order]) - sizes[order] / 2) / len(groups)
    group_part = np.empty(len(uniques), dtype=np.int8)
    group_part[order] = np.where(centres < spec.test, 0, np.where(centres < spec.test + spec.valid, 1, 2))
    return group_part[codes]


def _by_time(times: pd.Series, spec: SplitSpec, where: str) -> np.ndarray:
    values = times
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)):
        try:
            values = pd.to_datetime(values, format="mixed")
        except (ValueError, TypeError):
            raise DataError(
                f"{where}: data.split.time {times.name!r} must hold numbers or dates; got {times.iloc[0]!r}"
            ) from None
    if values.isna().any():
        raise DataError(
            f"{where}: data.split.time {times.name!r} has {int(values.isna().sum())} missing values"
        )
    # Latest rows go to test: rank descending, ties broken by file order (stable sort).
    order = np.argsort(
        -np.argsort(np.argsort(values.to_numpy(), kind="stable"), kind="stable"), kind="stable"
    )
    return _assign_by_quantile(order, spec)


def _split_fingerprint(ds: Dataset, spec: SplitSpec) -> str:
    # A field left at its default is left out, so adding a field keeps older fingerprints valid.
    described = spec.model_dump(mode="json", exclude={"train_dev"} if not spec.train_dev else set())
    blob = json.dumps(
        {"data": ds.fingerprint, "split": described, "algorithm": SPLIT_ALGORITHM},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def split_dataset(ds: Dataset, spec: SplitSpec, *, where: str = PROJECT_FILE) -> Split:
    """Split rows into train/valid/test, deterministically from ``spec.seed``.

    Time column: the latest rows are test, the next latest valid. Group column:
    each group falls in exactly one split. Otherwise classification is
    stratified by class and regression is a seeded random split.
    """
    rng = np.random.default_rng(spec.seed)
    strategy: Literal["stratified", "random", "group", "time"]
    if spec.time:
        part, strategy = _by_time(ds.frame[spec.time], spec, where), "time"
    elif spec.group:
        part, strategy = _by_group(ds.frame[spec.group], spec, rng, where), "group"
    elif ds.task != "regression":
        part, strategy = _stratified(ds.y, spec, rng), "stratified"
    else:
        part, strategy = _assign_by_quantile(rng.permutation(len(ds.frame)), spec), "random"
    train = np.flatnonzero(part == 2)
    train_dev = np.empty(0, dtype=np.int64)
    if spec.train_dev:
        train, train_dev = _hold_out(
            ds, train, spec.train_dev, np.random.default_rng([spec.seed, 1]), spec.group
        )
    split = Split(
        train=train,
        valid=np.flatnonzero(part == 1),
        test=np.flatnonzero(part == 0),
        strategy=strategy,
        spec=spec,
        fingerprint=_split_fingerprint(ds, spec),
        train_dev=train_dev,
    )
    _check_split(ds, split, where)
    return split


def _hold_out(
    ds: Dataset, train: np.ndarray, share: float, rng: np.random.Generator, group: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """Move ``share`` of the training rows to train-dev, at random: whole groups when the split has a
    group column (a group never straddles train and train-dev), else stratified by class."""
    if group is not None:
        codes, uniques = pd.factorize(ds.frame[group].to_numpy()[train], sort=True)
        chosen = rng.permutation(len(uniques))[: max(1, round(share * len(uniques)))]
        dev = np.sort(train[np.isin(codes, chosen)])
        return np.setdiff1d(train, dev, assume_unique=True), dev
    if ds.task == "regression":
        groups = [train]
    else:
        labels = ds.y[train].astype(str)
        groups = [train[labels == c] for c in np.unique(labels)]
    held = [g[rng.permutation(len(g))[: round(share * len(g))]] for g in groups]
    dev = np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)
    return np.setdiff1d(train, dev, assume_unique=True), dev


def _check_split(ds: Dataset, split: Split, where: str) -> None:
    sizes = split.sizes()
    if sizes["test"] == 0 or sizes["train"] < 2:
        raise DataError(
            f"{where}: data.split leaves {sizes['train']} train and {sizes['test']} test rows of "
            f"{len(ds.frame)}; need at least 2 train and 1 test row (lower test/valid or add rows)"
        )
    if ds.task != "regression" and len(np.unique(ds.y[split.train].astype(str))) < 2:
        raise DataError(
            f"{where}: data.split leaves a single class in train; classification needs two "
            "(check the group/time column or add rows)"
        )
