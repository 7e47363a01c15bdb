"""What production is compared with: the training split's inputs and the champion's test answers.

Every comparison the monitor makes is on **bins fixed by the training split**, so the logged
inputs can be counted into them chunk by chunk and day by day (the counts add up, so the log is
read once, incrementally) and the same bins serve every test:

- a numeric feature: edges at the training split's 2 %, 4 %, …, 98 % quantiles (fewer where values
  repeat), one bin below the first edge and one above the last, and a bin for missing values.
  The Kolmogorov–Smirnov statistic computed on these bins is within one bin's mass (2 %) of the
  exact one, and never larger (the test errs on the side of "no drift");
- a categorical feature: the training split's categories (the 200 most frequent), one bin for a
  category never seen in training, one for missing values;
- a text feature: the training split's 500 most frequent tokens and one bin for the others, each
  token counted once per row (rows are the independent draws the chi-square test assumes).

The champion's answers on the test split give the reference for prediction drift (its class mix
and score distribution) and the test estimate of the objective's metric that live quality is
held against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "Binning",
    "Reference",
    "SCORE_EDGES",
    "bin_codes",
    "build_reference",
    "lab_estimate",
    "make_binning",
    "tokens",
]

_QUANTILES = np.linspace(0.02, 0.98, 49)
_MAX_CATEGORIES = 200
_MAX_TOKENS = 500
_TOKEN = re.compile(r"\w+")
# Scores (a classifier's top probability) in twenty equal bins of [0, 1].
SCORE_EDGES = np.linspace(0.05, 0.95, 19)


def tokens(text: Any) -> list[str]:
    """The lower-cased word tokens of a text value (none for a missing one)."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return []
    return _TOKEN.findall(str(text).lower())


@dataclass(frozen=True)
class Binning:
    """How one feature's values are counted: its kind and its bins (see the module's docstring)."""

    feature: str
    kind: str  # numeric | categorical | text
    edges: list[float] = field(default_factory=list)  # numeric
    values: list[str] = field(default_factory=list)  # categorical categories or text tokens

    @property
    def size(self) -> int:
        """How many bins: numeric len(edges)+1 and missing; categorical values, unseen, missing;
        text tokens and other."""
        if self.kind == "numeric":
            return len(self.edges) + 2
        if self.kind == "categorical":
            return len(self.values) + 2
        return len(self.values) + 1

    def label(self, index: int) -> str:
        """A bin's name for people: a range, a category, a token."""
        if self.kind == "numeric":
            e = self.edges
            if index == len(e) + 1:
                return "missing"
            if not e:
                return "any value"
            if index == 0:
                return f"≤ {e[0]:.4g}"
            if index == len(e):
                return f"> {e[-1]:.4g}"
            return f"({e[index - 1]:.4g}, {e[index]:.4g}]"
        if index < len(self.values):
            return self.values[index]
        if self.kind == "categorical":
            return "unseen in training" if index == len(self.values) else "missing"
        return "other tokens"

    def bounds(self, index: int) -> tuple[float | None, float | None]:
        """A numeric bin's lower (exclusive) and upper (inclusive) edges; None where it is open."""
        e = self.edges
        if self.kind != "numeric" or index > len(e) or not e:
            return None, None
        return (e[index - 1] if index > 0 else None), (e[index] if index < len(e) else None)

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "kind": self.kind, "edges": self.edges, "values": self.values}


def make_binning(feature: str, kind: str, column: pd.Series) -> Binning:
    """The bins of ``feature`` from its training values."""
    if kind == "numeric":
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        edges = np.unique(np.quantile(finite, _QUANTILES)) if finite.size else np.empty(0)
        return Binning(feature, kind, edges=[float(e) for e in edges])
    if kind == "text":
        counts: dict[str, int] = {}
        for text in column.tolist():
            for tok in set(tokens(text)):
                counts[tok] = counts.get(tok, 0) + 1
        top = sorted(counts, key=lambda t: (-counts[t], t))[:_MAX_TOKENS]
        return Binning(feature, kind, values=top)
    seen = column.dropna().astype(str).value_counts()
    top = sorted(seen.index[:_MAX_CATEGORIES].tolist(), key=lambda c: (-int(seen[c]), c))
    return Binning(feature, kind, values=top)


def bin_codes(binning: Binning, values: list[Any] | np.ndarray) -> np.ndarray:
    """Counts of ``values`` in each of the feature's bins (text: of their tokens)."""
    counts = np.zeros(binning.size, dtype=np.int64)
    if len(values) == 0:
        return counts
    if binning.kind == "numeric":
        try:
            x = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            x = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)
        missing = ~np.isfinite(x)
        # ±inf were refused at the door; NaN (or None) is a missing value.
        codes = np.searchsorted(np.asarray(binning.edges), x[~missing], side="left")
        counts[: len(binning.edges) + 1] = np.bincount(codes, minlength=len(binning.edges) + 1)
        counts[-1] = int(missing.sum())
        return counts
    index = {v: i for i, v in enumerate(binning.values)}
    if binning.kind == "text":
        other = len(binning.values)
        for text in values:  # each token once per row: rows, not words, are the independent draws
            for tok in set(tokens(text)):
                counts[index.get(tok, other)] += 1
        return counts
    unseen, missing_bin = len(binning.values), len(binning.values) + 1
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            counts[missing_bin] += 1
        else:
            counts[index.get(str(v), unseen)] += 1
    return counts


@dataclass(frozen=True)
class Reference:
    """The training split's bins and counts, a sample of its rows, and the champion's test answers.

    ``test_value``/``test_interval`` is the champion's objective metric on the test split;
    ``test_classes`` its predicted class counts (classification) and ``test_scores`` the counts of
    its top probability (classification) or predicted value (regression) in ``score_binning``.
    """

    fingerprint: str
    task: str
    classes: list[Any] | None
    binnings: dict[str, Binning]
    counts: dict[str, np.ndarray]
    train_rows: int
    sample: pd.DataFrame  # up to 2,000 training rows, for the domain classifier
    metric: str
    greater_is_better: bool
    test_rows: int
    test_value: float | None
    test_interval: tuple[float, float] | None
    test_classes: np.ndarray | None
    score_binning: Binning
    test_scores: np.ndarray
    model: dict[str, Any]  # the champion it was made for: id, name, version
    # Accuracy on test (classification): what expected accuracy is held against when the objective's
    # metric cannot be estimated without labels.
    test_accuracy: float | None = None
    test_accuracy_interval: tuple[float, float] | None = None


def build_reference(project: Any, champion: Any, objective_metric: Any, ds: Any, split: Any) -> Reference:
    """The reference for ``champion`` (a :class:`~flywheel.evaluation.LoadedModel`): the project's
    data ``ds``, split as every run splits it (``split``), and the champion's answers on its test rows."""
    schema = champion.schema
    train = ds.X.iloc[split.train]
    binnings: dict[str, Binning] = {}
    counts: dict[str, np.ndarray] = {}
    for feature, kind in schema.features.items():
        if feature not in train.columns:
            continue
        binnings[feature] = make_binning(feature, kind, train[feature])
        counts[feature] = bin_codes(binnings[feature], train[feature].tolist())
    sample = train.sample(n=min(2000, len(train)), random_state=0) if len(train) else train
    labels, proba, value, interval = lab_estimate(champion, ds, split, objective_metric.name)
    classes = schema.classes
    accuracy: tuple[float | None, tuple[float, float] | None] = (None, None)
    if classes is not None:
        y_test = np.asarray(ds.y)[split.test]
        accuracy = (
            (value, interval)
            if objective_metric.name == "accuracy"
            else _test_estimate(y_test, labels, proba, "accuracy", classes)
        )
    test_classes = None
    if classes is not None:
        index = {str(c): i for i, c in enumerate(classes)}
        codes = np.array([index.get(str(v), -1) for v in labels.tolist()])
        test_classes = np.bincount(codes[codes >= 0], minlength=len(classes))
    if classes is not None and proba is not None:
        score_binning = Binning("score", "numeric", edges=[float(e) for e in SCORE_EDGES])
        scores = proba.max(axis=1).tolist()
    elif classes is None:
        score_binning = make_binning("prediction", "numeric", pd.Series(np.asarray(labels, dtype=float)))
        scores = np.asarray(labels, dtype=float).tolist()
    else:
        score_binning, scores = Binning("score", "numeric"), []
    return Reference(
        fingerprint=ds.fingerprint,
        task=ds.task,
        classes=None if classes is None else list(classes),
        binnings=binnings,
        counts=counts,
        train_rows=len(train),
        sample=sample,
        metric=objective_metric.name,
        greater_is_better=bool(objective_metric.greater_is_better),
        test_rows=len(split.test),
        test_value=value,
        test_interval=interval,
        test_classes=test_classes,
        score_binning=score_binning,
        test_scores=bin_codes(score_binning, scores),
        model={"id": champion.model_id, "name": champion.name, "version": champion.version},
        test_accuracy=accuracy[0],
        test_accuracy_interval=accuracy[1],
    )


def lab_estimate(
    model: Any, ds: Any, split: Any, metric: str
) -> tuple[np.ndarray, np.ndarray | None, float | None, tuple[float, float] | None]:
    """A loaded model's answers on the test rows and its ``metric`` there, with the 95 % interval."""
    from flywheel.evaluation import predict_with_scores

    test = ds.X.iloc[split.test]
    y_test = np.asarray(ds.y)[split.test]
    labels, proba = predict_with_scores(model.model, test, model.schema.classes)
    value, interval = _test_estimate(y_test, labels, proba, metric, model.schema.classes)
    return labels, proba, value, interval


def _test_estimate(
    y: np.ndarray, labels: np.ndarray, proba: np.ndarray | None, metric: str, classes: list[Any] | None
) -> tuple[float | None, tuple[float, float] | None]:
    """The objective's metric on the test rows with its 95 % interval (None where it is undefined)."""
    from flywheel.metrics import get_metric, score

    needs_scores = get_metric(metric).needs == "scores"
    if needs_scores and proba is None:
        return None, None
    try:
        est = score(
            y,
            y_pred=labels,
            y_score=proba if needs_scores else None,
            metrics=[metric],
            classes=classes,
            n_resamples=1000,
        )[metric]
    except ValueError:
        return None, None
    interval = None if est.low is None or est.high is None else (float(est.low), float(est.high))
    return (None if est.value is None else float(est.value)), interval
