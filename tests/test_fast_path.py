"""The fast path gives the pipeline's own predictions (differential, property-based), and steps
aside — for good, with one line — when it cannot."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_wine
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from flywheel.baselines import tree_preprocessor
from flywheel.data import ColumnKinds
from flywheel.evaluation import make_preprocessor
from flywheel.serving import FastPath, fast_path


def _wine(missing: float = 0.1) -> tuple[pd.DataFrame, pd.Series]:
    data = load_wine(as_frame=True)
    X = data.data.copy()
    rng = np.random.default_rng(0)
    X = X.mask(rng.random(X.shape) < missing)  # the imputers have work to do
    return X, data.target


def _kinds(X: pd.DataFrame) -> ColumnKinds:
    return ColumnKinds(numeric=tuple(X.columns))


def _features(X: pd.DataFrame) -> dict[str, str]:
    return dict.fromkeys(X.columns, "numeric")


def _fitted(estimator: Any, prep: Any = None) -> tuple[Pipeline, pd.DataFrame]:
    X, y = _wine()
    model = Pipeline(
        [("prep", prep if prep is not None else make_preprocessor(_kinds(X))), ("model", estimator)]
    )
    return model.fit(X, y), X


@pytest.mark.parametrize(
    "estimator, prep",
    [
        (LogisticRegression(max_iter=2000), None),
        (RandomForestClassifier(n_estimators=20, random_state=0), "tree"),
        (HistGradientBoostingClassifier(max_iter=30, random_state=0), "tree"),
    ],
)
def test_the_fast_path_gives_the_pipelines_predictions(estimator: Any, prep: Any) -> None:
    X, _ = _wine()
    model, X = _fitted(estimator, tree_preprocessor(_kinds(X)) if prep == "tree" else None)
    fast = fast_path(model, _features(X), check_rows=8)
    assert isinstance(fast, FastPath)
    for start in range(0, len(X), 7):  # the first calls are checked both ways, the rest are not
        rows = X.iloc[start : start + 7]
        np.testing.assert_allclose(
            fast.predict_proba(rows), model.predict_proba(rows), rtol=1e-12, atol=1e-15
        )
        assert (fast.predict(rows) == model.predict(rows)).all()
    assert not fast.off and fast.checked >= 8


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(
            st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)),
            min_size=13,
            max_size=13,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_any_numeric_rows_get_the_same_answer(rows: list[list[float | None]]) -> None:
    model, X = _LOGISTIC
    frame = pd.DataFrame(np.array(rows, dtype=float), columns=X.columns)
    fast = fast_path(model, _features(X), check_rows=0)  # no checking: the fast answer itself
    assert fast is not None
    np.testing.assert_allclose(fast.predict_proba(frame), model.predict_proba(frame), rtol=1e-12, atol=1e-15)
    assert (fast.predict(frame) == model.predict(frame)).all()


_LOGISTIC = _fitted(LogisticRegression(max_iter=2000))


def test_it_does_not_apply_where_it_cannot_be_exact() -> None:
    model, X = _LOGISTIC
    assert fast_path(model[-1], _features(X)) is None  # no column transformer in front
    assert fast_path(model, {**_features(X), "color": "categorical"}) is None  # rows are not all numbers
    full, y = _wine(missing=0.0)
    by_slice = ColumnTransformer([("num", StandardScaler(), slice(0, 13))])
    sliced = make_pipeline(by_slice, LogisticRegression(max_iter=5000)).fit(full, y)
    assert fast_path(sliced, _features(full)) is None  # a selection it does not resolve to names
    every = ColumnTransformer([("num", StandardScaler(), lambda frame: list(frame.columns))])
    by_callable = make_pipeline(every, LogisticRegression(max_iter=5000)).fit(full, y)
    fast = fast_path(by_callable, _features(full))  # a callable is resolved to names when fitted
    assert fast is not None
    np.testing.assert_allclose(fast.predict_proba(full), by_callable.predict_proba(full), rtol=1e-12)
    named = ColumnTransformer([("num", StandardScaler(), list(full.columns))]).set_output(transform="pandas")
    to_frames = make_pipeline(named, LogisticRegression(max_iter=5000)).fit(full, y)
    assert fast_path(to_frames, _features(full)) is None  # what follows was fitted on named columns
    regression = make_pipeline(make_preprocessor(_kinds(X)), Ridge()).fit(X.fillna(0), np.arange(len(X)))
    fast = fast_path(regression, _features(X))
    assert fast is not None  # predict() alone works too
    np.testing.assert_allclose(fast.predict(X.iloc[:5]), regression.predict(X.iloc[:5]), rtol=1e-12)


def test_a_disagreement_turns_it_off_and_the_pipeline_answers(capsys: pytest.CaptureFixture[str]) -> None:
    X, y = _wine(missing=0.0)

    def doubled_for_arrays(values: Any) -> Any:  # a transformer that treats arrays differently
        return values * 2.0 if isinstance(values, np.ndarray) else values

    prep = ColumnTransformer([("num", FunctionTransformer(doubled_for_arrays), list(X.columns))])
    model = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=5000))]).fit(X, y)
    fast = fast_path(model, _features(X))
    assert fast is not None
    rows = X.iloc[:10]
    np.testing.assert_array_equal(fast.predict_proba(rows), model.predict_proba(rows))
    assert fast.off
    assert capsys.readouterr().err.count("no fast path for LogisticRegression (it disagreed") == 1
    np.testing.assert_array_equal(fast.predict_proba(rows), model.predict_proba(rows))  # still the pipeline


def test_sparse_parts_and_other_column_orders_go_through_the_pipeline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    X, y = _wine(missing=0.0)
    binned = ColumnTransformer(
        [
            ("num", StandardScaler(), list(X.columns[:5])),
            ("bins", OneHotEncoder(handle_unknown="ignore"), ["magnesium"]),
        ],
        sparse_threshold=0.0,  # the transformer densifies; its part on its own is sparse
    )
    model = Pipeline([("prep", binned), ("model", LogisticRegression(max_iter=5000))]).fit(X, y)
    fast = fast_path(model, _features(X))
    assert fast is not None
    np.testing.assert_array_equal(fast.predict_proba(X.iloc[:3]), model.predict_proba(X.iloc[:3]))
    assert fast.off and "sparse output" in capsys.readouterr().err

    logistic, X = _LOGISTIC
    fast = fast_path(logistic, _features(X))
    assert fast is not None
    reordered = X.iloc[:4, ::-1]  # named columns in another order: the positions would not hold
    np.testing.assert_array_equal(fast.predict_proba(reordered), logistic.predict_proba(reordered))
    assert not fast.off and fast.checked == 0
