"""What every section of the project file shares: the strict base model (frozen, unknown keys an
error naming the allowed ones), the patterns names and import paths must match, and the helpers
that keep each validation message to one line (the allowed values, and a close match).
"""

from __future__ import annotations

import difflib
import math
import os
import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

__all__: list[str] = []

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MODULE_FN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_DOTTED = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+$")


def display_path(path: Path) -> str:
    """``path`` as messages show it: relative to the working folder where it can be."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def _one_of(values: list[str] | tuple[str, ...], limit: int = 12) -> str:
    shown = list(values[:limit])
    return ", ".join(shown) + (", …" if len(values) > limit else "")


def _hint(given: str, allowed: list[str]) -> str:
    """`` (did you mean 'accuracy'?)`` for a close match, or nothing.

    A name the given text begins is the likelier meaning (``acc`` is short for ``accuracy``, though
    difflib finds ``mcc`` closer), so the shortest such name wins; difflib's match is the fallback.
    """
    key = given.strip().lower()
    prefixed = sorted((a for a in allowed if len(key) >= 2 and a.lower().startswith(key)), key=len)
    close = prefixed[:1] or difflib.get_close_matches(given, allowed, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _range_words(lower: float, upper: float) -> str:
    """``lie in [0, 1]``, ``be >= 0`` or ``be <= 1``: a metric's range as a message says it."""
    if math.isinf(upper):
        return f"be >= {lower:g}"
    if math.isinf(lower):
        return f"be <= {upper:g}"
    return f"lie in [{lower:g}, {upper:g}]"


def _number_kinds(annotation: Any) -> set[type]:
    """The scalar types a field's annotation allows (``float | None`` -> {float, NoneType})."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return set().union(*(_number_kinds(a) for a in typing.get_args(annotation)))
    return {annotation} if isinstance(annotation, type) else {object}


class _Strict(BaseModel):
    """A section of the file: frozen, and unknown keys are an error naming the allowed ones."""

    # NaN and infinity are never a meaningful setting: refused as "must be a finite number".
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls.model_config.get("extra") == "forbid":
            allowed = sorted(cls.model_fields)
            unknown = [k for k in data if k not in cls.model_fields]
            if unknown:
                raise ValueError(
                    f"has an unknown field {unknown[0]!r}; allowed: {', '.join(allowed)}"
                    + _hint(str(unknown[0]), allowed)
                )
        return data

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # YAML's true is a bool, which pydantic would quietly read as 1 for a number.
        if isinstance(value, bool) and info.field_name is not None:
            kinds = _number_kinds(cls.model_fields[info.field_name].annotation) - {type(None)}
            if kinds and kinds <= {int, float}:
                raise ValueError(f"must be {'an integer' if kinds == {int} else 'a number'}; got {value!r}")
        return value
