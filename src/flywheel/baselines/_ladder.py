"""The baseline ladder: from a constant to boosted trees, plus rules, published results and people.

Rungs are ordered from the cheapest to the strongest, so every later model has
a floor and every step up has a price:

- classification: the most frequent class (``dummy``); a stratified random
  guess (``random``); the user's rules (``rule:NAME``); the best one-feature
  rule (``one-feature``, OneR); a keyword rule on text columns (``keywords``);
  logistic regression (``linear``); small boosted trees (``boosted-trees``:
  scikit-learn's HistGradientBoosting, or LightGBM when installed).
- regression: ``mean``; ``median``; the user's rules; the best one-feature fit
  (``one-feature``); ridge (``linear``); boosted trees.

The first rungs are *not ML* (a constant, chance, a rule a person could
write); "do we need ML?" compares the best of them with the best ML model.
Declared human and external baselines are kept apart: declared, not measured
(unless human level is measured from an annotators file, see
:mod:`flywheel.baselines._human`).
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import TruncatedSVD
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

from flywheel.baselines._heuristics import KeywordRule, OneFeatureLinear, OneFeatureRule
from flywheel.data import ColumnKinds, Dataset, Split
from flywheel.evaluation import (
    Candidate,
    Evaluation,
    compare_evaluations,
    fill_text,
    resolve_rule,
    with_preprocessing,
)
from flywheel.metrics import MetricRef, parse_metric, rows_to_decide, wilson_interval
from flywheel.project import PROJECT_FILE, Project

__all__ = [
    "NOT_ML_KINDS",
    "NeedML",
    "build_ladder",
    "declared_baselines",
    "default_margin",
    "need_ml",
    "tree_preprocessor",
]

NOT_ML_KINDS = frozenset({"constant", "chance", "rule"})
SMALL_SAMPLE = 30  # fewer test rows than this cannot settle "do we need ML?"
_MAX_TREE_CATEGORIES = 250  # HistGradientBoosting takes at most 255 categories per feature


class _TextAxes(BaseEstimator, TransformerMixin):
    """TF-IDF reduced to a few dense SVD axes (trees take no sparse input); fewer for a small vocabulary."""

    def __init__(self, n_components: int = 32) -> None:
        self.n_components = n_components

    def fit(self, x: Any, y: Any = None) -> _TextAxes:
        self.tfidf_ = TfidfVectorizer(min_df=2, max_features=20000).fit(fill_text(x))
        matrix = self.tfidf_.transform(fill_text(x))
        k = max(1, min(self.n_components, matrix.shape[1] - 1))
        self.svd_ = TruncatedSVD(n_components=k, random_state=0).fit(matrix) if matrix.shape[1] > 1 else None
        return self

    def transform(self, x: Any) -> Any:
        matrix = self.tfidf_.transform(fill_text(x))
        return self.svd_.transform(matrix) if self.svd_ is not None else matrix.toarray()


def tree_preprocessor(columns: ColumnKinds) -> ColumnTransformer:
    """Categories first (as ordinals), then numbers as they are (trees split on NaN), then text axes.

    Categories come first so their positions are known before fitting, whatever
    the text columns turn into.
    """
    parts: list[tuple[str, Any, Any]] = []
    if columns.categorical:
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            encoded_missing_value=np.nan,
            max_categories=_MAX_TREE_CATEGORIES,
        )
        parts.append(
            ("cat", make_pipeline(FunctionTransformer(_as_text), encoder), list(columns.categorical))
        )
    if columns.numeric:
        parts.append(("num", "passthrough", list(columns.numeric)))
    for i, col in enumerate(columns.text):
        parts.append((f"text{i}", _TextAxes(), col))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def _as_text(frame: Any) -> Any:
    # OrdinalEncoder needs one type per column; missing values stay missing.
    return frame.astype(object).where(frame.notna(), np.nan).astype(str).where(frame.notna(), np.nan)


def _rung(name: str, description: str, stage: str, make: Callable[[], Any]) -> Candidate:
    """A built-in rung: fitted on train like any model, placed on the ladder by ``stage``."""
    return Candidate(name, "baseline", "rung", description, make=make, stage=stage)


def _boosting_backend() -> str:
    """``FLYWHEEL_BOOSTING`` = sklearn | lightgbm | auto (default: LightGBM when installed)."""
    choice = os.environ.get("FLYWHEEL_BOOSTING", "auto").lower()
    if choice == "lightgbm" or (choice == "auto" and importlib.util.find_spec("lightgbm") is not None):
        return "lightgbm"
    return "sklearn"


def _trees(ds: Dataset, seed: int) -> Candidate:
    columns = ds.columns
    categorical = list(range(len(columns.categorical))) or None
    regression = ds.task == "regression"
    if _boosting_backend() == "lightgbm":
        import lightgbm

        cls = lightgbm.LGBMRegressor if regression else lightgbm.LGBMClassifier
        description = "LightGBM, 200 trees"

        def make() -> Any:
            return Pipeline(
                [
                    ("prep", tree_preprocessor(columns)),
                    ("model", cls(n_estimators=200, random_state=seed, verbose=-1)),
                ]
            )
    else:
        hgb = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        description = "histogram gradient boosting (scikit-learn)"

        # With enough rows, grow until a held-out 10% stops improving; small sets keep 200 rounds.
        enough = len(ds.frame) >= 20000
        settings: dict[str, Any] = (
            {"max_iter": 1000, "max_leaf_nodes": 63, "early_stopping": True, "n_iter_no_change": 30}
            if enough
            else {"max_iter": 200, "early_stopping": False}
        )

        def make() -> Any:
            model = hgb(random_state=seed, categorical_features=categorical, **settings)
            return Pipeline([("prep", tree_preprocessor(columns)), ("model", model)])

    return _rung("boosted-trees", description, "model", make)


def _classification_rungs(ds: Dataset, seed: int) -> tuple[list[Candidate], list[Candidate]]:
    cols = ds.columns
    simple = [
        _rung(
            "dummy", "the most frequent training class", "constant", lambda: DummyClassifier(strategy="prior")
        ),
        _rung(
            "random",
            "a random guess at the training class frequencies",
            "chance",
            lambda: DummyClassifier(strategy="stratified", random_state=seed),
        ),
    ]
    learned: list[Candidate] = []
    if cols.numeric or cols.categorical:
        learned.append(
            _rung(
                "one-feature",
                "the best one-feature rule (OneR), chosen on train",
                "rule",
                lambda: OneFeatureRule(cols.numeric, cols.categorical),
            )
        )
    if cols.text:
        learned.append(
            _rung(
                "keywords",
                "a decision list of the most telling words, chosen on train",
                "rule",
                lambda: KeywordRule(cols.text),
            )
        )
    learned.append(
        _rung(
            "linear",
            "logistic regression, standard preprocessing",
            "model",
            lambda: with_preprocessing(LogisticRegression(max_iter=2000), cols),
        )
    )
    return simple, learned


def _regression_rungs(ds: Dataset) -> tuple[list[Candidate], list[Candidate]]:
    cols = ds.columns
    simple = [
        _rung("mean", "the mean of the training target", "constant", lambda: DummyRegressor(strategy="mean")),
        _rung(
            "median",
            "the median of the training target",
            "constant",
            lambda: DummyRegressor(strategy="median"),
        ),
    ]
    learned: list[Candidate] = []
    if cols.numeric or cols.categorical:
        learned.append(
            _rung(
                "one-feature",
                "the best one-feature fit, chosen on train",
                "rule",
                lambda: OneFeatureLinear(cols.numeric, cols.categorical),
            )
        )
    learned.append(
        _rung(
            "linear",
            "ridge regression, standard preprocessing",
            "model",
            lambda: with_preprocessing(Ridge(alpha=1.0), cols),
        )
    )
    return simple, learned


def build_ladder(project: Project, ds: Dataset, where: str = PROJECT_FILE) -> list[Candidate]:
    """The internal rungs, cheapest first."""
    seed = project.data.split.seed
    rules = [
        Candidate(
            f"rule:{path.rpartition(':')[2]}",
            "baseline",
            "rule",
            f"user rule {path}",
            rule=resolve_rule(path, i, project, where),
            stage="rule",
        )
        for i, path in enumerate(project.baselines.rules)
    ]
    simple, learned = _regression_rungs(ds) if ds.task == "regression" else _classification_rungs(ds, seed)
    return [*simple, *rules, *learned, _trees(ds, seed)]


def declared_baselines(project: Project, task: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Human and external baselines as declared in the project file, marked as declared.

    A declared human accuracy on ``n`` rows is a proportion, so it gets its Wilson
    interval: 0.985 on 50 rows is weaker evidence than on 5,000. A declared value
    of a metric that does not apply to the ``task`` is left out, with a note.
    """
    out: list[dict[str, Any]] = []
    notes: list[str] = []

    def applicable(where: str, values: dict[str, float]) -> dict[str, float]:
        kept = {}
        for name, value in values.items():
            if task is None or parse_metric(name).applies_to(task):
                kept[name] = value
            else:
                notes.append(f"{where}: {name} does not apply to a {task} target; left out")
        return kept

    human = project.baselines.human
    if human is not None and human.values:
        values = applicable("baselines.human", human.values)
        entry: dict[str, Any] = {
            "name": "human",
            "kind": "human",
            "tier": human.tier,
            "n": human.n,
            "source": human.source,
            "values": values,
            "declared": True,
        }
        if human.n is not None and "accuracy" in values:
            entry["intervals"] = {"accuracy": wilson_interval(values["accuracy"] * human.n, human.n)}
        out.append(entry)
    for i, ext in enumerate(project.baselines.external):
        out.append(
            {
                "name": ext.name,
                "kind": "external",
                "source": ext.source,
                "caveat": ext.caveat,
                "values": applicable(f"baselines.external[{i}]", ext.values),
                "declared": True,
            }
        )
    return out, notes


# --- the ladder table and "do we need ML?" -----------------------------------------------------


@dataclass(frozen=True)
class NeedML:
    """The answer to "do we need ML?", with the paired comparison behind it."""

    answer: Literal["yes", "no", "not yet clear", "cannot tell"]
    reason: str
    best_ml: str | None = None
    best_simple: str | None = None
    margin: float = 0.0
    comparison: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


def default_margin(metric: MetricRef) -> float:
    """One point (0.01) for metrics bounded in [0, 1] or [-1, 1]; zero for unbounded ones."""
    return 0.01 if math.isfinite(metric.upper) and math.isfinite(metric.lower) else 0.0


def _best(evaluations: Sequence[Evaluation], metric: MetricRef, split: str, ml: bool) -> Evaluation | None:
    sign = 1.0 if metric.greater_is_better else -1.0
    pool = [
        e
        for e in evaluations
        if e.ok and (e.stage == "model") == ml and e.value(metric.name, split) is not None
    ]
    return max(pool, key=lambda e: sign * float(e.value(metric.name, split))) if pool else None  # type: ignore[arg-type]


def need_ml(
    evaluations: Sequence[Evaluation],
    ds: Dataset,
    split: Split,
    metric: MetricRef,
    selection_split: str,
    margin: float,
) -> NeedML:
    """The best ML model against the best non-ML rung, paired on the same test rows.

    Both are chosen on ``selection_split``; the answer is ``yes`` when ML's
    improvement interval lies above ``margin``, ``no`` when it lies below (the
    simple rung is as good within the margin), else ``not yet clear``.
    """
    best_ml = _best(evaluations, metric, selection_split, ml=True)
    best_simple = _best(evaluations, metric, selection_split, ml=False)
    if best_ml is None or best_simple is None:
        missing = "an ML model" if best_ml is None else "a non-ML rung"
        return NeedML("cannot tell", f"no {missing} produced {metric.name}", margin=margin)
    comp = compare_evaluations(best_ml, best_simple, ds, split, "test", metric.name, margin=margin)
    if comp is None:
        return NeedML(
            "cannot tell", f"{metric.name} cannot be compared on test", best_ml.name, best_simple.name, margin
        )
    gain = (
        f"{best_ml.name} vs {best_simple.name}: {metric.name} improvement {comp['improvement']:+.4f} "
        f"[{comp['low']:+.4f}, {comp['high']:+.4f}] on {comp['n']} test rows, margin {margin:g}"
    )
    if comp["n"] < SMALL_SAMPLE:
        return NeedML(
            "not yet clear",
            f"only {comp['n']} test rows: too few to tell. {gain}",
            best_ml.name,
            best_simple.name,
            margin,
            comp,
        )
    if comp["verdict"] == "better":
        return NeedML(
            "yes", f"ML wins by more than the margin. {gain}", best_ml.name, best_simple.name, margin, comp
        )
    if comp["verdict"] == "worse":
        return NeedML(
            "no",
            f"the simple rung is as good within the margin. {gain}",
            best_ml.name,
            best_simple.name,
            margin,
            comp,
        )
    decide = rows_to_decide(comp, "labelled test")
    hint = f"; {decide}" if decide else ""
    return NeedML(
        "not yet clear",
        f"the interval straddles the margin{hint}. {gain}",
        best_ml.name,
        best_simple.name,
        margin,
        comp,
    )
