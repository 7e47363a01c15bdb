"""Rule baselines a person could write by hand, learned from train: one feature, or keywords.

"Do we need ML?" is only answered against the best *simple* rule, so the ladder
learns the rules a domain expert would try first:

- :class:`OneFeatureRule` (classification; OneR): the single numeric or
  categorical feature whose bins (quantile bins of a number, or the categories)
  best predict the class on train, each bin predicting its majority class.
- :class:`OneFeatureLinear` (regression): the single feature whose straight-line
  fit (a number) or per-category mean (a category) best predicts the target.
- :class:`KeywordRule` (text): a decision list of the most discriminative tokens
  on train; the first listed token found in a text decides its class.

Written here because no library offers OneR-style rules that take a pandas
frame with mixed column kinds and missing values; each is a scikit-learn
estimator, so the ladder fits, times and pickles them like any model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.feature_extraction.text import CountVectorizer

__all__ = [
    "KeywordRule",
    "OneFeatureLinear",
    "OneFeatureRule",
]

_MISSING = "(missing)"


def _numeric_bins(x: np.ndarray, max_bins: int) -> np.ndarray:
    finite = x[np.isfinite(x)]
    if len(finite) == 0:
        return np.array([])
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, max_bins + 1)[1:-1]))
    return edges


def _best_threshold(x: np.ndarray, y_codes: np.ndarray, k: int) -> np.ndarray:
    """The single cut of ``x`` whose two sides' majority classes are right most often (a stump)."""
    finite = np.isfinite(x)
    order = np.argsort(x[finite], kind="stable")
    xs, ys = x[finite][order], y_codes[finite][order]
    if len(xs) < 2 or xs[0] == xs[-1]:
        return np.array([])
    left = np.cumsum(np.eye(k, dtype=np.int64)[ys], axis=0)
    right = left[-1] - left
    correct = left.max(axis=1) + right.max(axis=1)
    cuts = np.flatnonzero(xs[1:] != xs[:-1])  # a cut between distinct values only
    best = cuts[np.argmax(correct[cuts])]
    return np.array([(xs[best] + xs[best + 1]) / 2])


def _bin_numeric(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    codes = np.searchsorted(edges, x, side="right")
    return np.where(np.isfinite(x), codes, len(edges) + 1)  # the last bin holds missing values


def _category_map(values: pd.Series, max_categories: int) -> dict[str, int]:
    counts = values.fillna(_MISSING).astype(str).value_counts()
    return {c: i for i, c in enumerate(counts.index[:max_categories])}


def _bin_categorical(values: pd.Series, mapping: dict[str, int]) -> np.ndarray:
    texts = values.fillna(_MISSING).astype(str)
    return texts.map(mapping).fillna(len(mapping)).to_numpy(dtype=np.int64)  # unseen -> "other"


def _as_float(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


class OneFeatureRule(ClassifierMixin, BaseEstimator):
    """The best single-feature rule (OneR): one threshold, bins or categories of one feature.

    For each numeric feature, the best single threshold and quantile bins are
    tried; for each categorical feature, its categories. Each region predicts
    its majority training class; the option right most often on train wins.

    Parameters
    ----------
    numeric, categorical
        Column names of each kind to consider.
    max_bins
        Quantile bins per numeric feature (plus one for missing values).
    max_categories
        Most frequent categories kept per categorical feature; the rest share a bin.
    """

    def __init__(
        self,
        numeric: tuple[str, ...] = (),
        categorical: tuple[str, ...] = (),
        max_bins: int = 8,
        max_categories: int = 50,
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.max_bins = max_bins
        self.max_categories = max_categories

    def _codes(self, X: pd.DataFrame, column: str, spec: Any) -> np.ndarray:
        if column in self.numeric:
            return _bin_numeric(_as_float(X[column]), spec)
        return _bin_categorical(X[column], spec)

    def fit(self, X: pd.DataFrame, y: Any) -> OneFeatureRule:
        """Choose the feature whose bins predict the class best on the training rows."""
        self.classes_, y_codes = np.unique(np.asarray(y), return_inverse=True)
        k = len(self.classes_)
        if not (self.numeric or self.categorical):
            raise ValueError("OneFeatureRule needs at least one numeric or categorical feature")
        best: tuple[float, str, Any, np.ndarray] | None = None
        options: list[tuple[str, Any, int]] = []
        for column in self.numeric:
            x = _as_float(X[column])
            # A single threshold first (simplest wins ties), then quantile bins.
            for edges in (_best_threshold(x, y_codes, k), _numeric_bins(x, self.max_bins)):
                options.append((column, edges, len(edges) + 2))
        for column in self.categorical:
            mapping = _category_map(X[column], self.max_categories)
            options.append((column, mapping, len(mapping) + 1))
        for column, spec, n_bins in options:
            codes = self._codes(X, column, spec)
            table = np.bincount(codes * k + y_codes, minlength=n_bins * k).reshape(n_bins, k)
            correct = table.max(axis=1).sum()
            if best is None or correct > best[0]:
                best = (float(correct), column, spec, table)
        assert best is not None
        _, self.column_, self.spec_, table = best
        prior = np.bincount(y_codes, minlength=k).astype(float)
        # Empty bins fall back to the class prior; smoothing keeps probabilities off 0 and 1.
        self.proba_ = (table + prior / prior.sum()) / (table.sum(axis=1, keepdims=True) + 1)
        self.train_accuracy_ = best[0] / len(y_codes)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class frequencies of each row's bin on train."""
        return np.asarray(self.proba_[self._codes(X, self.column_, self.spec_)])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The majority training class of each row's bin."""
        return np.asarray(self.classes_[self.predict_proba(X).argmax(axis=1)])


class OneFeatureLinear(RegressorMixin, BaseEstimator):
    """The best single-feature fit: a line on one number, or a mean per category."""

    def __init__(
        self, numeric: tuple[str, ...] = (), categorical: tuple[str, ...] = (), max_categories: int = 50
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.max_categories = max_categories

    def fit(self, X: pd.DataFrame, y: Any) -> OneFeatureLinear:
        """Choose the feature whose fit has the smallest squared error on train."""
        target = np.asarray(y, dtype=float)
        if not (self.numeric or self.categorical):
            raise ValueError("OneFeatureLinear needs at least one numeric or categorical feature")
        best: tuple[float, str, Any] | None = None
        for column in self.numeric:
            x = _as_float(X[column])
            fill = float(np.nanmean(x)) if np.isfinite(x).any() else 0.0
            x = np.where(np.isfinite(x), x, fill)
            var = x.var()
            slope = float(np.mean((x - x.mean()) * (target - target.mean())) / var) if var > 0 else 0.0
            intercept = float(target.mean() - slope * x.mean())
            sse = float(np.sum((target - intercept - slope * x) ** 2))
            if best is None or sse < best[0]:
                best = (sse, column, ("line", fill, slope, intercept))
        for column in self.categorical:
            mapping = _category_map(X[column], self.max_categories)
            codes = _bin_categorical(X[column], mapping)
            sums = np.bincount(codes, weights=target, minlength=len(mapping) + 1)
            counts = np.bincount(codes, minlength=len(mapping) + 1)
            means = np.where(counts > 0, sums / np.maximum(counts, 1), target.mean())
            sse = float(np.sum((target - means[codes]) ** 2))
            if best is None or sse < best[0]:
                best = (sse, column, ("means", mapping, means))
        assert best is not None
        _, self.column_, self.spec_ = best
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The chosen feature's fitted value for each row."""
        if self.spec_[0] == "line":
            _, fill, slope, intercept = self.spec_
            x = _as_float(X[self.column_])
            return np.asarray(intercept + slope * np.where(np.isfinite(x), x, fill))
        _, mapping, means = self.spec_
        return np.asarray(means[_bin_categorical(X[self.column_], mapping)])


class KeywordRule(ClassifierMixin, BaseEstimator):
    """A decision list of discriminative tokens: the first listed token in a text decides its class.

    Tokens are ranked by how pure their class is on train (smoothed), among
    tokens in at least ``min_support`` texts; a text with none of them gets the
    majority class.
    """

    def __init__(self, text: tuple[str, ...] = (), max_keywords: int = 30, min_support: int = 5) -> None:
        self.text = text
        self.max_keywords = max_keywords
        self.min_support = min_support

    def _fit_column(self, docs: pd.Series, y_codes: np.ndarray, k: int) -> tuple[float, Any]:
        vectorizer = CountVectorizer(binary=True, min_df=self.min_support, max_features=20000)
        try:
            present = vectorizer.fit_transform(docs.fillna("").astype(str))
        except ValueError:  # no token reaches the minimum support
            return -1.0, None
        onehot = np.eye(k)[y_codes]
        per_class = np.asarray(present.T @ onehot)  # tokens x classes
        support = per_class.sum(axis=1)
        purity = (per_class + 1) / (support[:, None] + k)
        best_class = purity.argmax(axis=1)
        score = purity.max(axis=1)
        prior = np.bincount(y_codes, minlength=k) / len(y_codes)
        useful = np.flatnonzero(score > prior[best_class])
        order = useful[np.lexsort((-support[useful], -score[useful]))][: self.max_keywords]
        vocabulary = vectorizer.get_feature_names_out()
        rules = [(str(vocabulary[i]), int(best_class[i])) for i in order]
        spec = (vectorizer, [i for i in order], [c for _, c in rules], rules)
        predicted = self._apply(present, spec, int(prior.argmax()))
        return float(np.mean(predicted == y_codes)), spec

    @staticmethod
    def _apply(present: Any, spec: Any, default: int) -> np.ndarray:
        _, columns, classes, _ = spec
        out = np.full(present.shape[0], default)
        if not columns:
            return out
        hits = present[:, columns].toarray().astype(bool)
        first = hits.argmax(axis=1)
        matched = hits.any(axis=1)
        out[matched] = np.asarray(classes)[first[matched]]
        return out

    def fit(self, X: pd.DataFrame, y: Any) -> KeywordRule:
        """Build a decision list for each text column and keep the most accurate on train."""
        self.classes_, y_codes = np.unique(np.asarray(y), return_inverse=True)
        if not self.text:
            raise ValueError("KeywordRule needs a text column")
        k = len(self.classes_)
        self.default_ = int(np.bincount(y_codes, minlength=k).argmax())
        best: tuple[float, str, Any] | None = None
        for column in self.text:
            accuracy, spec = self._fit_column(X[column], y_codes, k)
            if spec is not None and (best is None or accuracy > best[0]):
                best = (accuracy, column, spec)
        if best is None:
            raise ValueError(f"no token appears in at least {self.min_support} training texts")
        self.train_accuracy_, self.column_, self.spec_ = best
        self.keywords_ = [(word, self.classes_[c]) for word, c in self.spec_[3]]
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The class of the first listed keyword in each text, else the majority class."""
        present = self.spec_[0].transform(X[self.column_].fillna("").astype(str))
        return np.asarray(self.classes_[self._apply(present, self.spec_, self.default_)])
