"""Checks on a table's contents before anything is fitted on it.

What pandas accepts quietly would cost a run later, or worse, change its numbers without a word:
a header naming a column twice (pandas renames the second ``x.1``), infinities in a numeric column
(scaling turns them into NaN or a crash an hour in), and a column of numbers with a few stray
words (read as a category, so the numbers lose their order). Each is refused here with one line
naming the columns and how many rows, before the first fit.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from flywheel.errors import DataError

__all__ = [
    "check_header",
    "check_values",
]

_SHOWN = 5  # columns named in one message; the rest are counted


def _rows(n: int) -> str:
    return f"{n} row{'s' if n != 1 else ''}"


def _listed(parts: list[str], noun: str = "") -> str:
    more = len(parts) - _SHOWN
    head = f"{noun}{'s' if len(parts) > 1 else ''} " if noun else ""
    return head + ", ".join(parts[:_SHOWN]) + (f" and {more} more" if more > 0 else "")


def _csv_header(path: Path) -> list[str]:
    """The first line of a CSV file as written, before pandas renames a repeated name."""
    try:
        head = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
    except Exception:  # an unreadable file is reported by the reader itself
        return []
    return [str(v) for v in head.iloc[0].tolist()] if len(head) else []


def check_header(frame: pd.DataFrame, path: Path, *, field: str, where: str) -> None:
    """Refuse a table whose header names a column more than once."""
    names = _csv_header(path) if path.suffix.lower() == ".csv" else []
    names = names or [str(c) for c in frame.columns]
    repeated = [(name, n) for name, n in Counter(names).items() if n > 1]
    if repeated:
        shown = _listed([f"{name!r} ({n} times)" for name, n in repeated])
        raise DataError(
            f"{where}: {field} {path.name!r} names a column more than once: {shown}; "
            "allowed: each column named once"
        )


def _infinite(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    found = []
    for col in columns:
        s = frame[col]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            n = int(np.isinf(s.to_numpy(dtype=float, na_value=np.nan)).sum())
            if n:
                found.append(f"{col!r} ({_rows(n)})")
    return found


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def _mixed(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """Object columns holding numbers and text, where the numbers are not a stray minority of text.

    A CSV gives every cell of such a column as text, so a number is a cell that reads as one; a
    JSON-lines file keeps real numbers, and any number beside a string there is a mix.
    """
    found = []
    for col in columns:
        s = frame[col]
        if not (s.dtype == object or isinstance(s.dtype, pd.StringDtype)):
            continue
        values = s.dropna()
        typed = np.zeros(len(values), dtype=bool)
        if s.dtype == object:  # a string column holds only text; an object column may hold numbers
            typed = np.fromiter((_is_number(v) for v in values), dtype=bool, count=len(values))
        numbers = typed | pd.to_numeric(values.astype(str), errors="coerce").notna().to_numpy()
        n_numbers, n_text = int(numbers.sum()), int((~numbers).sum())
        if n_numbers and n_text and (typed.any() or n_numbers >= n_text):
            example = values[~numbers].iloc[0]
            found.append(f"{col!r} ({n_numbers} numbers, {n_text} text, e.g. {example!r})")
    return found


def check_values(frame: pd.DataFrame, columns: list[str], *, source: str, where: str) -> None:
    """Refuse infinite numbers, and numbers mixed with text, in ``columns`` of ``frame``."""
    infinite = _infinite(frame, columns)
    if infinite:
        raise DataError(
            f"{where}: data.source {source!r} has infinite values in {_listed(infinite, 'column')}; "
            "allowed: finite numbers (leave a missing value empty)"
        )
    mixed = _mixed(frame, columns)
    if mixed:
        raise DataError(
            f"{where}: data.source {source!r} mixes numbers and text in {_listed(mixed, 'column')}; "
            "allowed: numbers only or text only in a column (leave a missing value empty)"
        )
