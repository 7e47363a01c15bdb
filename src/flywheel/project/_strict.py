"""What every section of the project file shares: the strict base model (frozen, unknown keys an
error naming the allowed ones), the patterns names and import paths must match, and the helpers
that keep each validation message to one line (the allowed values, and a close match).
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

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
    close = difflib.get_close_matches(given, allowed, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Strict(BaseModel):
    """A section of the file: frozen, and unknown keys are an error naming the allowed ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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
