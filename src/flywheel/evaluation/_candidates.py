"""Candidates: models built from the project file, never from ``eval``.

A model spec names an estimator class by dotted path (``sklearn.svm.SVC``), a
factory by ``module:function``, or a file of predictions made elsewhere. This
module resolves each into a :class:`Candidate` *before* anything is fitted or
stored, so a typo in a path fails in a second with one line, not after an hour
of training. Modules next to the project file are importable (the project folder
is put on ``sys.path`` while importing), which is how user rules and factories
are found. Only what the project's trust model allows is called: an estimator
*class* with ``fit`` and ``predict``, and factories and rules from the project
folder or a package under ``trust:`` (see :mod:`flywheel.project`).

Fitted candidates get the standard preprocessing (impute, scale, one-hot,
TF-IDF per text column) unless their spec says ``preprocess: false``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from flywheel.data import ColumnKinds, Dataset, read_table
from flywheel.errors import ModelError
from flywheel.project import (
    PROJECT_FILE,
    ModelSpec,
    Project,
    import_estimator_class,
    import_trusted_callable,
    importable,
)

__all__ = [
    "Candidate",
    "PROBA_PREFIX",
    "fill_text",
    "make_preprocessor",
    "resolve_candidates",
    "resolve_rule",
    "with_preprocessing",
]

PROBA_PREFIX = "proba_"
Role = Literal["baseline", "candidate"]
Kind = Literal["estimator", "factory", "predictions", "rule", "rung"]


@dataclass(frozen=True, eq=False)
class Candidate:
    """Something that predicts on valid and test: a fittable model, a rule, or a file.

    Exactly one of ``make`` (returns a fresh unfitted estimator), ``rule``
    (rows -> labels) and ``table`` (predictions indexed by row position) is set.
    """

    name: str
    role: Role
    kind: Kind
    description: str
    make: Callable[[], Any] | None = None
    rule: Callable[[pd.DataFrame], Any] | None = None
    table: pd.DataFrame | None = field(default=None, repr=False)
    # Where it stands on the ladder: "constant", "chance", "rule" (not ML) or "model" (ML).
    stage: str = "model"

    @property
    def is_ml(self) -> bool:
        """Whether this is a learned model rather than a constant, chance or a rule."""
        return self.stage == "model"


def fill_text(x: Any) -> Any:
    """Text column values with missing texts as empty strings (TF-IDF rejects NaN)."""
    return pd.Series(x).fillna("").astype(str)


def make_preprocessor(columns: ColumnKinds) -> ColumnTransformer:
    """Impute and scale numbers, one-hot categories, TF-IDF each text column."""
    parts: list[tuple[str, Any, Any]] = []
    if columns.numeric:
        parts.append(
            (
                "num",
                make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()),
                list(columns.numeric),
            )
        )
    if columns.categorical:
        parts.append(
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="(missing)"),
                    OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=50),
                ),
                list(columns.categorical),
            )
        )
    for i, col in enumerate(columns.text):
        parts.append(
            (
                f"text{i}",
                make_pipeline(FunctionTransformer(fill_text), TfidfVectorizer(min_df=2, max_features=20000)),
                col,
            )
        )
    return ColumnTransformer(parts, remainder="drop")


def with_preprocessing(estimator: Any, columns: ColumnKinds) -> Pipeline:
    """``estimator`` behind the standard preprocessing."""
    return Pipeline([("prep", make_preprocessor(columns)), ("model", estimator)])


def _check_estimator(obj: Any, field: str, path: str, where: str) -> None:
    missing = [m for m in ("fit", "predict") if not callable(getattr(obj, m, None))]
    if missing:
        raise ModelError(
            f"{where}: {field} {path!r} must give an estimator with fit and predict; "
            f"got {type(obj).__name__} without {' or '.join(missing)}"
        )


def _estimator_maker(
    spec: ModelSpec, index: int, ds: Dataset, project: Project, where: str
) -> Callable[[], Any]:
    field = f"models[{index}].{spec.kind}"
    folder = project.root
    target: Callable[..., Any]
    if spec.estimator is not None:
        path = spec.estimator
        target = import_estimator_class(path, field=field, where=where, folder=folder)
    else:
        assert spec.factory is not None
        path = spec.factory
        target = import_trusted_callable(path, field=field, where=where, folder=folder, trust=project.trust)
    params = dict(spec.params)

    def build() -> Any:
        with importable(folder):
            est = target(**params)
        return with_preprocessing(est, ds.columns) if spec.preprocess else est

    try:  # build once now, so bad params fail before anything is fitted
        probe = build()
        final = probe.steps[-1][1] if isinstance(probe, Pipeline) and spec.preprocess else probe
        # scikit-learn's own check of each value, where the estimator declares its constraints
        # (a team's subclass of BaseEstimator may not): C: -5 is refused here, not by a failed fit.
        if hasattr(final, "_parameter_constraints") and callable(getattr(final, "_validate_params", None)):
            final._validate_params()
    except Exception as exc:
        raise ModelError(
            f"{where}: models[{index}] {path!r} cannot be built with params {params}: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    _check_estimator(
        probe.steps[-1][1] if isinstance(probe, Pipeline) and spec.preprocess else probe, field, path, where
    )
    return build


def _coerce_labels(values: pd.Series, ds: Dataset, field: str, where: str) -> np.ndarray:
    if ds.classes is None:
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.isna().any():
            bad = values[numbers.isna()].iloc[0]
            raise ModelError(f"{where}: {field} holds a non-numeric prediction {bad!r} for a regression")
        return numbers.to_numpy(dtype=float)
    by_text = {str(c): c for c in ds.classes}
    mapped = values.map(lambda v: by_text.get(str(v), by_text.get(str(v).removesuffix(".0"))))
    if mapped.isna().any():
        bad = values[mapped.isna()].iloc[0]
        raise ModelError(
            f"{where}: {field} predicts {bad!r}, which is not a class of the target; "
            f"classes: {', '.join(map(str, ds.classes[:10]))}"
        )
    return np.asarray(mapped.tolist(), dtype=ds.y.dtype)


def _prediction_table(
    spec: ModelSpec, index: int, ds: Dataset, needed: np.ndarray, folder: Path, where: str
) -> pd.DataFrame:
    field = f"models[{index}].predictions"
    assert spec.predictions is not None
    path = Path(spec.predictions).expanduser()
    frame = read_table(
        path if path.is_absolute() else folder / path, field=field, where=where, given=spec.predictions
    )
    id_col = spec.id or ds.id_column or "row"
    for col in (id_col, spec.column):
        if col not in frame.columns:
            raise ModelError(
                f"{where}: {field} {path.name!r} has no column {col!r}; columns: "
                f"{', '.join(map(str, frame.columns[:8]))}"
            )
    if frame[id_col].duplicated().any():
        dup = frame.loc[frame[id_col].duplicated(), id_col].iloc[0]
        raise ModelError(f"{where}: {field} {path.name!r} has id {dup!r} twice; ids must be unique")
    data_ids = ds.ids.astype(str).to_numpy()
    position = pd.Series(np.arange(len(data_ids)), index=data_ids)
    file_ids = frame[id_col].astype(str).to_numpy()
    known = np.isin(file_ids, data_ids)
    missing = np.setdiff1d(data_ids[needed], file_ids[known])
    if len(missing):
        shown = ", ".join(missing[:3]) + (", …" if len(missing) > 3 else "")
        data_col = ds.id_column or "row (the row number in the data file)"
        raise ModelError(
            f"{where}: {field} {path.name!r}: {len(missing)} of {len(needed)} valid/test rows have "
            f"no prediction (ids {shown}); its {id_col!r} must match the data's {data_col}"
        )
    frame = frame.loc[known]
    out = pd.DataFrame(index=position[file_ids[known]].to_numpy())
    out["prediction"] = _coerce_labels(frame[spec.column].reset_index(drop=True), ds, field, where)
    if ds.classes is not None:
        proba_cols = [f"{PROBA_PREFIX}{c}" for c in ds.classes]
        present = [c for c in proba_cols if c in frame.columns]
        if present and len(present) != len(proba_cols):
            absent = sorted(set(proba_cols) - set(present))
            raise ModelError(f"{where}: {field} {path.name!r} lacks probability columns {absent[:3]}")
        for col in present:
            values = pd.to_numeric(frame[col], errors="coerce").to_numpy()
            if np.isnan(values).any():
                raise ModelError(f"{where}: {field} {path.name!r} column {col!r} must be numbers")
            out[col] = values
    return out.sort_index()


def resolve_rule(path: str, index: int, project: Project, where: str = PROJECT_FILE) -> Callable[..., Any]:
    """Import a user rule (``module:function``, rows -> labels) from the project folder or ``trust:``."""
    folder = project.root
    fn = import_trusted_callable(
        path, field=f"baselines.rules[{index}]", where=where, folder=folder, trust=project.trust
    )

    def rule(rows: pd.DataFrame) -> Any:
        with importable(folder):
            return fn(rows)

    return rule


def resolve_candidates(
    project: Project, ds: Dataset, needed: np.ndarray, where: str = PROJECT_FILE
) -> list[Candidate]:
    """Resolve every ``models:`` entry; ``needed`` are the valid+test row positions."""
    out: list[Candidate] = []
    for i, spec in enumerate(project.models):
        if spec.kind == "predictions":
            table = _prediction_table(spec, i, ds, needed, project.root, where)
            out.append(
                Candidate(
                    spec.name, "candidate", "predictions", f"predictions from {spec.predictions}", table=table
                )
            )
        else:
            make = _estimator_maker(spec, i, ds, project, where)
            params = ", ".join(f"{k}={v!r}" for k, v in spec.params.items())
            out.append(
                Candidate(
                    spec.name,
                    "candidate",
                    spec.kind,
                    f"{spec.estimator or spec.factory}({params})",
                    make=make,
                )
            )
    return out
