"""Data sources: scikit-learn's built-in sets (no download) and CSV, Parquet or JSONL files.

Reading is where a path meets the file system, so every error here names the project file, the
field that gave the path, and the path as the person wrote it. A header that names a column twice
is refused here (:mod:`flywheel.data._checks`), before pandas renames the second one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from flywheel.data._checks import check_header
from flywheel.errors import DataError
from flywheel.project import PROJECT_FILE

__all__ = [
    "BUILTIN_SETS",
    "read_table",
]


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
    shown = given if given is not None else str(path)
    if path.is_dir():
        raise DataError(
            f"{where}: {field} {shown!r} is a directory; allowed: a .csv, .parquet or .jsonl file"
        )
    if suffix not in _READERS:
        raise DataError(f"{where}: {field} must be a .csv, .parquet or .jsonl file; got {path.name!r}")
    if not path.is_file():
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
    check_header(frame, path, field=field, where=where)
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
