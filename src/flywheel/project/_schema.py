"""The project file's schema: ``flywheel.yaml`` as pydantic models.

A project is declared in one YAML file (see DESIGN.md). It is validated at the boundary by
these models (loading is :mod:`flywheel.project._load`); everything downstream trusts a
:class:`Project`. Every mistake a person can make yields one line in the form
``flywheel.yaml: objective.optimize must be one of accuracy, …; got 'acc'``.

Nothing in the file is ever evaluated as code: models and rules are named by
dotted import paths that :mod:`flywheel.project._imports` imports explicitly, and only
what :mod:`flywheel.project._trust` allows is ever called.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from flywheel.project._baselines import Baselines
from flywheel.project._objective import ObjectiveSpec
from flywheel.project._strict import _DOTTED, _MODULE_FN, _NAME, _hint, _Strict, display_path
from flywheel.project._trust import TrustedPackage

__all__ = [
    "ARCHETYPES",
    "Costs",
    "DataSpec",
    "DiagnosisSpec",
    "Difficulty",
    "GateSpec",
    "Impact",
    "LENSES",
    "ModelSpec",
    "PROJECT_FILE",
    "Project",
    "READINESS_ITEMS",
    "RESERVED_MODEL_NAMES",
    "SplitSpec",
]

PROJECT_FILE = "flywheel.yaml"
# Readiness items (ML Test Score shape) a project may declare done by hand, by section.
READINESS_ITEMS = (
    "schema_checked",
    "data_fingerprinted_and_split_leak-free",
    "personal_data_scanned",
    "baselines_measured",
    "held-out_evaluation_with_intervals",
    "model_diagnosed",
    "model_versioned_in_the_registry",
    "gate_decided_a_promotion",
    "serving_latency_measured",
    "predictions_logged",
    "feedback_labels_collected",
    "champion_watched_against_the_objective",
)
ARCHETYPES = ("software-2.0", "human-in-the-loop", "autonomous")
LENSES = ("cheap-prediction", "product-friction", "automate-manual-process", "others-already-do-it")
RESERVED_MODEL_NAMES = frozenset(
    {
        "dummy",
        "random",
        "mean",
        "median",
        "one-feature",
        "keywords",
        "linear",
        "boosted-trees",
        "human",
        "external",
    }
)

Level = Literal["low", "medium", "high"]


class Impact(_Strict):
    """Declared value of the project and the lenses through which it creates value."""

    value_per_year: float = Field(default=0.0, ge=0)
    volume_per_year: float | None = Field(default=None, ge=0)
    lenses: list[
        Literal["cheap-prediction", "product-friction", "automate-manual-process", "others-already-do-it"]
    ] = Field(default_factory=list)


class Costs(_Strict):
    """Declared cost of one label and of one wrong prediction, in the project's currency."""

    label: float | None = Field(default=None, ge=0)
    wrong_prediction: float | None = Field(default=None, ge=0)


class Difficulty(_Strict):
    """Declared difficulty drivers: output complexity, reliability and generalisation needs."""

    output: Level = "medium"
    reliability: Level = "medium"
    generalization: Level = "medium"


class SplitSpec(_Strict):
    """How rows are split into train / valid / test (deterministic from ``seed``)."""

    test: float = Field(default=0.2, gt=0, lt=1)
    valid: float = Field(default=0.2, ge=0, lt=1)
    # Seeds reach numpy and scikit-learn's random_state, which take 0 to 2**32 - 1.
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    group: str | None = None
    time: str | None = None
    # Share of the training rows held out from fitting: rows from the training distribution the
    # model never sees, so validation error minus train-dev error measures data mismatch.
    train_dev: float = Field(default=0.0, ge=0, lt=0.5)

    @model_validator(mode="after")
    def _fractions(self) -> SplitSpec:
        if self.test + self.valid >= 1:
            raise ValueError(
                f"test + valid must leave rows for training (sum < 1); got {self.test} + {self.valid}"
            )
        if self.group and self.time:
            raise ValueError(
                "takes a group column or a time column, not both; "
                f"got group={self.group!r} and time={self.time!r}"
            )
        return self


class DiagnosisSpec(_Strict):
    """What to do next: learning curve, forecast, weak segments, a training history."""

    forecast: bool = True
    sizes: int = Field(default=8, ge=4, le=30)
    seeds: int = Field(default=3, ge=1, le=20)
    min_support: int = Field(default=30, ge=5)
    fdr: float = Field(default=0.1, gt=0, lt=1)
    history: str | None = None  # CSV with step, train, valid (the objective's metric per epoch)


class DataSpec(_Strict):
    """Where the data is, which column is the target, and how to split it."""

    source: str
    target: str
    task: Literal["binary", "multiclass", "regression"] | None = None
    id: str | None = None
    split: SplitSpec = Field(default_factory=SplitSpec)
    stability: Literal["stable", "seasonal", "drifting"] | None = None  # declared: how the data changes

    @field_validator("source", "target")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v


class GateSpec(_Strict):
    """How a candidate must beat the champion: by ``margin`` (superiority) or not lose by more."""

    margin: float = Field(default=0.0, ge=0)
    policy: Literal["superiority", "non-inferiority"] = "superiority"


class ModelSpec(_Strict):
    """A candidate model: an estimator class, a factory function, or a predictions file."""

    name: str
    estimator: str | None = None
    factory: str | None = None
    predictions: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    preprocess: bool = True
    id: str | None = None
    column: str = "prediction"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(
                f"must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit; got {v!r}"
            )
        if v in RESERVED_MODEL_NAMES:
            raise ValueError(
                f"must not be one of the reserved names {sorted(RESERVED_MODEL_NAMES)}; got {v!r}"
            )
        return v

    @field_validator("estimator")
    @classmethod
    def _dotted(cls, v: str | None) -> str | None:
        if v is not None and not _DOTTED.match(v):
            raise ValueError(f"must be a dotted import path like sklearn.svm.SVC; got {v!r}")
        return v

    @field_validator("factory")
    @classmethod
    def _module_fn(cls, v: str | None) -> str | None:
        if v is not None and not _MODULE_FN.match(v):
            raise ValueError(f"must look like module:function; got {v!r}")
        return v

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> ModelSpec:
        kinds = [k for k in ("estimator", "factory", "predictions") if getattr(self, k)]
        if len(kinds) != 1:
            got = ", ".join(kinds) if kinds else "none"
            raise ValueError(f"needs exactly one of estimator, factory, predictions; got {got}")
        if self.params and self.predictions:
            raise ValueError("params apply to estimator or factory models, not to a predictions file")
        return self

    @property
    def kind(self) -> Literal["estimator", "factory", "predictions"]:
        """Which of the three kinds of model spec this is."""
        if self.estimator:
            return "estimator"
        return "factory" if self.factory else "predictions"


class Project(_Strict):
    """A validated ``flywheel.yaml``; ``path`` is where it was read from."""

    project: str
    problem: str = ""
    archetype: Literal["software-2.0", "human-in-the-loop", "autonomous"] = "software-2.0"
    impact: Impact = Field(default_factory=Impact)
    costs: Costs = Field(default_factory=Costs)
    difficulty: Difficulty = Field(default_factory=Difficulty)
    data: DataSpec
    objective: ObjectiveSpec
    baselines: Baselines = Field(default_factory=Baselines)
    models: list[ModelSpec] = Field(default_factory=list)
    # Packages (top-level module names) whose functions factory: and baselines.rules may name,
    # besides the modules in the project folder; see flywheel.project._trust.
    trust: list[TrustedPackage] = Field(default_factory=list)
    gate: GateSpec = Field(default_factory=GateSpec)
    diagnosis: DiagnosisSpec = Field(default_factory=DiagnosisSpec)
    ethics: str | None = None  # a note: who could be harmed, and what was done about it
    # Readiness items done by hand (declared: worth half of one shown by an artifact).
    readiness: dict[str, bool] = Field(default_factory=dict)
    # Where runs and the registry are kept: None is .flywheel/flywheel.db beside this file; a team
    # shares a database URL (postgresql+psycopg://USER@HOST/DB). $FLYWHEEL_STORE overrides it.
    store: str | None = None
    _path: Path = PrivateAttr(default=Path(PROJECT_FILE))

    @field_validator("store")
    @classmethod
    def _store_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        scheme = v.split("://", 1)[0] if "://" in v else ""
        if scheme not in ("sqlite", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"):
            shown = v.split("@")[-1] if "@" in v else v
            raise ValueError(
                f"must be a database URL: sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB; "
                f"got {shown!r}"
            )
        return v

    @field_validator("project")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(
                f"must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit; got {v!r}"
            )
        return v

    @field_validator("readiness")
    @classmethod
    def _known_items(cls, v: dict[str, bool]) -> dict[str, bool]:
        for name in v:
            if name not in READINESS_ITEMS:
                raise ValueError(
                    f"unknown item {name!r}; known: {', '.join(READINESS_ITEMS)}"
                    + _hint(name, list(READINESS_ITEMS))
                )
        return v

    @field_validator("models")
    @classmethod
    def _unique_names(cls, v: list[ModelSpec]) -> list[ModelSpec]:
        seen: set[str] = set()
        for spec in v:
            if spec.name in seen:
                raise ValueError(f"names must be unique; got {spec.name!r} twice")
            seen.add(spec.name)
        return v

    @property
    def path(self) -> Path:
        """The project file this was loaded from."""
        return self._path

    @property
    def root(self) -> Path:
        """The folder holding the project file; relative paths in it resolve here."""
        return self._path.parent

    @property
    def where(self) -> str:
        """The project file's path as messages show it: relative to the working folder where it can be."""
        return display_path(self._path)

    @property
    def store_dir(self) -> Path:
        """``.flywheel/`` next to the project file: database, reports, models."""
        return self.root / ".flywheel"

    def resolve(self, relative: str) -> Path:
        """A path from the project file, resolved against the project folder."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.root / p

    def objective_fingerprint(self) -> str:
        """A short hash of the objective, so a result says which formula judged it."""
        blob = json.dumps(self.objective.model_dump(mode="json", exclude={"reason"}), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]
