"""The baseline ladder: the cheapest models first, so every later model has a floor.

This first ladder has the rungs every project needs before anything else: a
constant (the most frequent class, or the mean), the user's own rules
(``baselines.rules``: rows -> labels, the "minimum viable product with manual
rules"), and a linear model behind the standard preprocessing. Declared human
and external baselines are kept apart: they are *declared*, never measured.
"""

from __future__ import annotations

from typing import Any

from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LogisticRegression, Ridge

from flywheel.data import Dataset
from flywheel.models import Candidate, resolve_rule, with_preprocessing
from flywheel.project import PROJECT_FILE, Project

__all__ = [
    "build_ladder",
    "declared_baselines",
]


def _dummy(ds: Dataset) -> Candidate:
    if ds.task == "regression":
        return Candidate(
            "dummy",
            "baseline",
            "rung",
            "the mean of the training target",
            make=lambda: DummyRegressor(strategy="mean"),
        )
    return Candidate(
        "dummy",
        "baseline",
        "rung",
        "the most frequent training class",
        make=lambda: DummyClassifier(strategy="prior"),
    )


def _linear(ds: Dataset) -> Candidate:
    if ds.task == "regression":
        return Candidate(
            "linear",
            "baseline",
            "rung",
            "ridge regression, standard preprocessing",
            make=lambda: with_preprocessing(Ridge(alpha=1.0), ds.columns),
        )
    return Candidate(
        "linear",
        "baseline",
        "rung",
        "logistic regression, standard preprocessing",
        make=lambda: with_preprocessing(LogisticRegression(max_iter=2000), ds.columns),
    )


def build_ladder(project: Project, ds: Dataset, where: str = PROJECT_FILE) -> list[Candidate]:
    """The internal rungs, cheapest first: dummy, the user's rules, linear."""
    rules = [
        Candidate(
            f"rule:{path.rpartition(':')[2]}",
            "baseline",
            "rule",
            f"user rule {path}",
            rule=resolve_rule(path, i, project, where),
        )
        for i, path in enumerate(project.baselines.rules)
    ]
    return [_dummy(ds), *rules, _linear(ds)]


def declared_baselines(project: Project) -> list[dict[str, Any]]:
    """Human and external baselines as declared in the project file, marked as declared."""
    out: list[dict[str, Any]] = []
    human = project.baselines.human
    if human is not None:
        out.append(
            {
                "name": "human",
                "kind": "human",
                "tier": human.tier,
                "n": human.n,
                "source": human.source,
                "values": human.values,
                "declared": True,
            }
        )
    for ext in project.baselines.external:
        out.append(
            {
                "name": ext.name,
                "kind": "external",
                "source": ext.source,
                "caveat": ext.caveat,
                "values": ext.values,
                "declared": True,
            }
        )
    return out
