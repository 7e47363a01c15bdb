"""The project file, ``flywheel.yaml``: schema, loading and one-line errors.

A project is declared in one YAML file (see DESIGN.md). It is validated here, at
the boundary, by pydantic models; everything downstream trusts a
:class:`Project`. Every mistake a person can make yields one line in the form
``flywheel.yaml: objective.optimize must be one of accuracy, …; got 'acc'``.

Nothing in the file is ever evaluated as code: models and rules are named by
dotted import paths that :mod:`flywheel.project._imports` imports explicitly.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from flywheel.errors import ProjectError
from flywheel.metrics import SYSTEMS_METRICS, is_metric, metric_names

__all__ = [
    "ARCHETYPES",
    "Baselines",
    "Bound",
    "Costs",
    "DataSpec",
    "DiagnosisSpec",
    "Difficulty",
    "ExternalBaseline",
    "GateSpec",
    "HumanBaseline",
    "Impact",
    "LENSES",
    "ModelSpec",
    "ObjectiveSpec",
    "PROJECT_FILE",
    "Project",
    "READINESS_ITEMS",
    "RESERVED_MODEL_NAMES",
    "SplitSpec",
    "find_project_file",
    "load_project",
    "parse_project",
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
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MODULE_FN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_DOTTED = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+$")

Level = Literal["low", "medium", "high"]


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
    seed: int = 0
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


class Bound(_Strict):
    """A constraint's bounds; with ``confidence``, the interval's bound must hold, not the point."""

    min: float | None = None
    max: float | None = None
    confidence: float | None = Field(default=None, gt=0, lt=1)

    @model_validator(mode="after")
    def _some_bound(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("needs min or max; got neither")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min must not exceed max; got min={self.min}, max={self.max}")
        return self

    def holds(self, value: float) -> bool:
        """Whether ``value`` lies within the bounds."""
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def violation(self, value: float) -> float:
        """How far ``value`` lies outside the bounds (0 when it holds)."""
        if self.min is not None and value < self.min:
            return self.min - value
        if self.max is not None and value > self.max:
            return value - self.max
        return 0.0


_PARAMETRIZED = "precision[class=C], recall[class=C], f1[class=C], pinball[q=Q]"


def _check_quality_metric(name: str) -> str:
    names = metric_names()
    if not is_metric(name):
        raise ValueError(
            f"must be one of {_one_of(names)} or {_PARAMETRIZED}; got {name!r}{_hint(name, names)}"
        )
    return name


class ObjectiveSpec(_Strict):
    """One metric to optimize (or a weighted average of several), a success target, and constraints."""

    optimize: str | None = None
    weights: dict[str, float] = Field(default_factory=dict)
    target: float | None = None
    constraints: dict[str, Bound] = Field(default_factory=dict)
    # Why the formula is what it is; recorded in the objective's history, not part of the formula.
    reason: str | None = None

    @field_validator("optimize")
    @classmethod
    def _known_metric(cls, v: str | None) -> str | None:
        return None if v is None else _check_quality_metric(v)

    @field_validator("weights")
    @classmethod
    def _valid_weights(cls, v: dict[str, float]) -> dict[str, float]:
        for name, weight in v.items():
            _check_quality_metric(name)
            if weight < 0:
                raise ValueError(f"must be >= 0; got {name}: {weight:g}")
        if v and sum(v.values()) <= 0:
            raise ValueError(f"must not all be zero; got {v}")
        return v

    @field_validator("constraints")
    @classmethod
    def _known_constraints(cls, v: dict[str, Bound]) -> dict[str, Bound]:
        allowed = metric_names() + sorted(SYSTEMS_METRICS)
        for name in v:
            if not is_metric(name) and name not in SYSTEMS_METRICS:
                raise ValueError(
                    f"names an unknown metric; allowed: {_one_of(allowed, 40)}; "
                    f"got {name!r}{_hint(name, allowed)}"
                )
        return v

    @model_validator(mode="after")
    def _one_formula(self) -> ObjectiveSpec:
        if (self.optimize is None) == (not self.weights):
            got = "both" if self.optimize is not None else "neither"
            raise ValueError(f"needs optimize (one metric) or weights (several), not both; got {got}")
        return self

    def metrics(self) -> list[str]:
        """Quality metrics the objective names (the optimized or weighted ones, then constrained ones)."""
        head = [self.optimize] if self.optimize is not None else list(self.weights)
        return head + [m for m in self.constraints if is_metric(m) and m not in head]


def _metric_values(values: dict[str, Any], fields: list[str]) -> dict[str, float]:
    names = metric_names()
    out: dict[str, float] = {}
    for key, value in values.items():
        if not is_metric(str(key)):
            raise ValueError(
                f"has an unknown field {key!r}; allowed: {', '.join(fields)} or a metric "
                f"({_one_of(names)}){_hint(str(key), names + fields)}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{key} must be a number; got {value!r}")
        out[key] = float(value)
    return out


class HumanBaseline(BaseModel):
    """Declared human-level performance: metric values, who, how many rows, and where from."""

    model_config = ConfigDict(frozen=True, extra="allow")

    tier: Literal["crowd", "generalist", "expert", "expert-panel"] = "generalist"
    n: int | None = Field(default=None, gt=0)
    source: str = ""
    # A file of annotators' labels (columns: id, annotator, label) from which human level is measured.
    annotators: str | None = None
    _values: dict[str, float] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _collect_metrics(self) -> HumanBaseline:
        self._values = _metric_values(dict(self.model_extra or {}), sorted(type(self).model_fields))
        if not self._values and not self.annotators:
            raise ValueError("needs at least one metric value, e.g. accuracy: 0.98, or an annotators file")
        return self

    @property
    def values(self) -> dict[str, float]:
        """The declared metric values."""
        return dict(self._values)


class ExternalBaseline(BaseModel):
    """A declared external result (a published paper, a vendor's claim)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    name: str
    source: str = ""
    caveat: str = ""
    _values: dict[str, float] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _collect_metrics(self) -> ExternalBaseline:
        self._values = _metric_values(dict(self.model_extra or {}), sorted(type(self).model_fields))
        if not self._values:
            raise ValueError("needs at least one metric value, e.g. accuracy: 0.99")
        return self

    @property
    def values(self) -> dict[str, float]:
        """The declared metric values."""
        return dict(self._values)


class Baselines(_Strict):
    """Baselines the user declares: human level, external results and hand-written rules."""

    human: HumanBaseline | None = None
    external: list[ExternalBaseline] = Field(default_factory=list)
    rules: list[str] = Field(default_factory=list)
    # Each rung gets this long to fit and predict before it is stopped and reported as too slow.
    time_budget_s: float = Field(default=120.0, gt=0)
    # "Do we need ML?": how much better (in the optimized metric) ML must be to be worth it.
    margin: float = Field(default=0.0, ge=0)

    @field_validator("rules")
    @classmethod
    def _rule_paths(cls, v: list[str]) -> list[str]:
        for path in v:
            if not _MODULE_FN.match(path):
                raise ValueError(f"entries must look like module:function; got {path!r}")
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
    gate: GateSpec = Field(default_factory=GateSpec)
    diagnosis: DiagnosisSpec = Field(default_factory=DiagnosisSpec)
    ethics: str | None = None  # a note: who could be harmed, and what was done about it
    # Readiness items done by hand (declared: worth half of one shown by an artifact).
    readiness: dict[str, bool] = Field(default_factory=dict)
    _path: Path = PrivateAttr(default=Path(PROJECT_FILE))

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
        try:
            return os.path.relpath(self._path)
        except ValueError:
            return str(self._path)

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


# --- error formatting --------------------------------------------------------------------------

_TYPE_WORDS = {
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "string_type": "must be a string",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "finite_number": "must be a finite number",
}


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _describe(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    given = err.get("input")
    if kind == "missing":
        return "is required"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"must be one of {expected}; got {given!r}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        shown = f"{limit:g}" if isinstance(limit, float) else str(limit)
        return f"must be {bounds[kind]} {shown}; got {given!r}"
    if kind in _TYPE_WORDS:
        return f"{_TYPE_WORDS[kind]}; got {given!r}"
    return f"{err['msg']}; got {given!r}"


def _format_validation(err: ValidationError, where: str) -> str:
    errors = err.errors(include_url=False)
    first = errors[0]
    loc = _loc(tuple(first["loc"]))
    text = _describe(first)
    line = f"{where}: {loc} {text}" if loc else f"{where}: {text}"
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return line


# --- loading -----------------------------------------------------------------------------------


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def find_project_file(path: str | os.PathLike[str] = ".") -> Path:
    """The project file at ``path``: the file itself, or ``flywheel.yaml`` inside a folder."""
    p = Path(path)
    if p.is_dir():
        p = p / PROJECT_FILE
    if not p.is_file():
        raise ProjectError(
            f"{_display(p)}: no project file here; create one with `flywheel init` or pass its path"
        )
    return p


def parse_project(text: str, *, where: str = PROJECT_FILE) -> Project:
    """Validate project-file text; ``where`` names the file in error messages."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ProjectError(f"{where}: {at}not valid YAML: {problem}") from None
    if raw is None:
        raise ProjectError(f"{where}: the file is empty; expected a mapping with project, data, objective")
    if not isinstance(raw, dict):
        raise ProjectError(
            f"{where}: must be a mapping with project, data, objective; got {type(raw).__name__}"
        )
    try:
        return Project.model_validate(raw)
    except ValidationError as exc:
        raise ProjectError(_format_validation(exc, where)) from None


def load_project(path: str | os.PathLike[str] = ".") -> Project:
    """Load and validate a project file (or the ``flywheel.yaml`` in a folder).

    Raises
    ------
    ProjectError
        With one line naming the field, what is allowed and what was given.
    """
    file = find_project_file(path)
    where = _display(file)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{where}: cannot be read: {exc}") from None
    project = parse_project(text, where=where)
    project._path = file.resolve()
    return project
