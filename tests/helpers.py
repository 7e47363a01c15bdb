"""Helpers the tests share: small projects and data they write themselves."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

FLYWHEEL = Path(sys.executable).parent / "flywheel"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def copy_examples(dest: Path) -> Path:
    """Copy the example projects' own files into ``dest``, never what a user's runs left in them.

    The examples' ``.flywheel/`` stores and ``MODEL_CARD.md`` files are ignored by git; a copy
    with them would start the tests from someone's history.
    """
    for path in EXAMPLES.rglob("*"):
        rel = path.relative_to(EXAMPLES)
        if any(part.startswith(".") for part in rel.parts) or rel.name == "MODEL_CARD.md":
            continue
        if path.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / rel)
    return dest


IRIS_PROJECT = """\
project: iris-test
problem: Tell iris species apart.
data:
  source: builtin:iris
  target: species
  split: {test: 0.25, valid: 0.25, seed: 3}
objective:
  optimize: accuracy
  target: 0.9
"""

# Iris with two fitted candidates (logreg, tree) and no forecast: the small project the loop,
# portability and crash tests run; ``{name}`` is the project's name.
IRIS_TWO_MODELS = """\
project: {name}
data: {{source: builtin:iris, target: species, split: {{test: 0.3, valid: 0.2, seed: 2}}}}
objective: {{optimize: accuracy}}
diagnosis: {{forecast: false}}
models:
  - {{name: logreg, estimator: sklearn.linear_model.LogisticRegression, params: {{max_iter: 500}}}}
  - {{name: tree, estimator: sklearn.tree.DecisionTreeClassifier, params: {{max_depth: 2, random_state: 0}}}}
"""


def write_project(folder: Path, text: str) -> Path:
    """Write a project file (dedented) into ``folder`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "flywheel.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def tabular_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A small mixed-type classification table: numbers, a category, free text, an id."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    words = np.array(
        [
            "great product works well",
            "terrible broke after a day",
            "fine but a bit slow today",
            "excellent value for money here",
        ]
    )
    text = words[rng.integers(0, len(words), size=n)]
    logit = 1.5 * x1 - x2 + (colour == "red")
    label = np.where(logit + rng.normal(scale=0.5, size=n) > 0, "yes", "no")
    return pd.DataFrame(
        {
            "id": [f"r{i:04d}" for i in range(n)],
            "x1": x1,
            "x2": x2,
            "colour": colour,
            "review": text,
            "label": label,
        }
    )


def slice_ns(pid: int | str) -> int | None:
    """A process's (or ``thread-self``'s) scheduler slice in ns; None where Linux does not show it."""
    for line in Path(f"/proc/{pid}/sched").read_text().splitlines():
        if line.startswith("se.slice"):
            return int(float(line.split(":")[1]))
    return None


class LoadsOnlyHere:
    """A picklable stand-in for a model that cannot be loaded in any other process."""

    def __init__(self) -> None:
        self.pid = os.getpid()

    def __setstate__(self, state: dict[str, int]) -> None:
        if state["pid"] != os.getpid():
            raise RuntimeError("this model loads only where it was made")
        self.__dict__.update(state)
