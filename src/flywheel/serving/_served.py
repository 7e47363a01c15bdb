"""The model the service answers with: a loaded model version plus its fast path."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from flywheel.evaluation import LoadedModel, predict_with_scores
from flywheel.project import Project
from flywheel.registry import load_alias
from flywheel.serving._fast_path import FastPath, fast_path

__all__ = [
    "Served",
    "load_served",
]


@dataclass(frozen=True)
class Served(LoadedModel):
    """A loaded model and what it answers for."""

    # The same model's predictions without the DataFrame overhead, when it applies (_fast_path.py).
    fast: FastPath | None = field(default=None, compare=False, repr=False)


def serving(loaded: LoadedModel) -> Served:
    """``loaded`` with its fast path, ready to answer requests."""
    values: dict[str, Any] = {f.name: getattr(loaded, f.name) for f in fields(LoadedModel)}
    return Served(**values, fast=fast_path(loaded.model, loaded.schema.features))


def load_served(project: Project, alias: str = "champion") -> Served:
    """The model ``alias`` points at, loaded and checked; one-line errors when it cannot serve."""
    return serving(load_alias(project, alias))


def _predict(current: Served, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels and class probabilities aligned to the schema's classes, through the fast path."""
    return predict_with_scores(current.model, frame, current.schema.classes, runner=current.fast)
