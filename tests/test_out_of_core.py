"""Out-of-core scoring (``score_dataset``, ``score_batches``) against ``score`` on data that fits.

The data sets have more rows than ``score_dataset`` keeps (8,192) and ``max_rows`` is small, so
every path is the streaming one: confusion counts, spilled score runs, sums of per-row values,
``score``'s own m-out-of-n subsample picked by row number. Points and intervals must agree to
1e-12 (most agree bit for bit); where an approximation is documented, its note must say so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flywheel.metrics._dataset as dataset_module
import flywheel.metrics._stream as stream_module
from flywheel.metrics import Scores, score, score_batches, score_dataset

N = 12_000
MAX_ROWS = 1_000  # score()'s subsample: small, so the m-out-of-n path runs on small data
OPTIONS: dict[str, Any] = {"n_resamples": 200, "seed": 3, "max_rows": MAX_ROWS}
BINARY = ["accuracy", "f1_macro", "f1", "mcc", "roc_auc", "average_precision", "log_loss", "brier", "ece"]
MULTICLASS = ["accuracy", "f1_macro", "balanced_accuracy", "cohen_kappa", "roc_auc", "log_loss", "brier"]
REGRESSION = ["mae", "mse", "rmse", "r2", "mape", "median_ae", "max_error", "pinball[q=0.8]"]


def assert_same(a: Scores, b: Scores, tol: float = 1e-12) -> None:
    """Same metrics, points and intervals within ``tol`` (relative), same method, notes and n."""
    assert list(a) == list(b)
    for name in a:
        x, y = a[name], b[name]
        assert (x.method, x.note, x.n, x.confidence) == (y.method, y.note, y.n, y.confidence), name
        for part in ("value", "low", "high"):
            u, v = getattr(x, part), getattr(y, part)
            assert (u is None) == (v is None), (name, part)
            if u is not None:
                assert abs(u - v) <= tol * max(1.0, abs(u)), (name, part, u, v)


def binary(n: int = N, seed: int = 0, decimals: int | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = 1 / (1 + np.exp(-(1.2 * (2 * y - 1) + 1.5 * rng.normal(size=n))))
    s = s if decimals is None else np.round(s, decimals)
    return {"label": y, "prediction": (s > 0.5).astype(np.int64), "score": s}


def multiclass(n: int = N, k: int = 4, seed: int = 1, decimals: int | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if decimals is not None:  # few distinct rows: score() resamples their joint cells
        p = np.round(p, decimals)
        p[:, -1] = 1 - p[:, :-1].sum(axis=1)
    return {"label": y, "prediction": p.argmax(axis=1), **{f"p{j}": p[:, j] for j in range(k)}}


def regression(n: int = N, seed: int = 2, decimals: int | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(3, 1, n)
    pred = y + rng.normal(0, 0.5, n)
    if decimals is not None:
        y, pred = np.round(y, decimals), np.round(pred, decimals)
    return {"label": y, "prediction": pred}


def write(folder: Path, columns: dict[str, np.ndarray], files: int = 1, row_group: int = 2_500) -> Path:
    """The columns as Parquet: one file, or a folder of ``files`` files."""
    table = pa.table(columns)
    if files == 1:
        pq.write_table(table, folder / "data.parquet", row_group_size=row_group)
        return folder / "data.parquet"
    size = -(-table.num_rows // files)
    for i in range(files):
        pq.write_table(table.slice(i * size, size), folder / f"part-{i}.parquet", row_group_size=row_group)
    return folder


def scores_of(columns: dict[str, np.ndarray]) -> np.ndarray | None:
    names = sorted(c for c in columns if c.startswith("p") and c != "prediction")
    if "score" in columns:
        return columns["score"]
    return np.column_stack([columns[c] for c in names]) if names else None


def score_columns(columns: dict[str, np.ndarray]) -> str | list[str] | None:
    names = sorted(c for c in columns if c.startswith("p") and c != "prediction")
    return "score" if "score" in columns else (names or None)


CASES: dict[str, tuple[Callable[[], dict[str, np.ndarray]], list[str]]] = {
    "binary": (binary, BINARY),
    "binary, scores to 2 decimals": (lambda: binary(decimals=2), BINARY),
    "multiclass": (multiclass, MULTICLASS),
    "multiclass, few distinct rows": (lambda: multiclass(k=3, decimals=1), ["roc_auc", "average_precision"]),
    "regression": (regression, REGRESSION),
    "regression, values to 1 decimal": (lambda: regression(decimals=1), REGRESSION),
}


@pytest.mark.parametrize("case", list(CASES))
def test_parquet_scores_equal_score_in_memory(case: str, tmp_path: Path) -> None:
    make, names = CASES[case]
    columns = make()
    classification = "score" in columns or "p0" in columns
    expected = score(columns["label"], columns["prediction"], scores_of(columns), names, **OPTIONS)
    source = write(tmp_path, columns, files=3)
    got = score_dataset(
        source,
        label="label",
        prediction="prediction",
        scores=score_columns(columns) if classification else None,
        metrics=names,
        batch_rows=1_777,
        **OPTIONS,
    )
    assert_same(expected, got)
    for name in ("accuracy", "f1_macro", "roc_auc", "median_ae", "max_error"):  # bit for bit
        if name in expected:
            assert got[name].value == expected[name].value, name


def test_spilled_runs_give_the_same_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "RUN_CAP", 3_000)  # spill the distinct scores to run files
    monkeypatch.setattr(stream_module, "KEY_CAP", 2_500)  # and keep per-row metrics as sums
    for columns, names, classes in (
        (binary(), ["roc_auc", "average_precision", "log_loss", "ece"], [0, 1]),
        (multiclass(k=3), ["roc_auc", "average_precision", "log_loss"], [0, 1, 2]),
        (regression(), ["median_ae", "mae", "rmse", "r2"], None),
    ):
        truth, pred, proba = columns["label"], columns["prediction"], scores_of(columns)
        expected = score(truth, pred, proba, names, classes=classes, **OPTIONS)
        batches = [(truth[i : i + 1_000], pred[i : i + 1_000], _rows(proba, i)) for i in range(0, N, 1_000)]
        assert_same(expected, score_batches(batches, names, classes=classes, n_rows=N, **OPTIONS))


def _rows(a: np.ndarray | None, i: int) -> np.ndarray | None:
    return None if a is None else a[i : i + 1_000]


def test_runs_spill_and_merge_back_every_key_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "RUN_CAP", 500)
    monkeypatch.setattr(stream_module, "_STEP", 64)  # 64 records held over all files
    rng = np.random.default_rng(4)
    runs, all_keys = stream_module.Runs(1), []
    for _ in range(20):
        keys = np.round(rng.random(300), 3)  # repeats within and across batches
        all_keys.append(keys)
        distinct, counts = np.unique(keys, return_counts=True)
        runs.add(distinct, counts)
        assert runs.held <= 500  # what stays in memory is bounded
    assert runs.files  # spilled
    chunks = list(runs.chunks())
    keys = np.concatenate([k for k, _ in chunks])
    counts = np.concatenate([c[:, 0] for _, c in chunks])
    expected_keys, expected_counts = np.unique(np.concatenate(all_keys), return_counts=True)
    assert np.array_equal(keys, expected_keys) and np.array_equal(counts, expected_counts)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch_rows=st.integers(50, 9_500))
def test_the_result_does_not_depend_on_the_batch_size(batch_rows: int, tmp_path_factory: Any) -> None:
    folder = tmp_path_factory.mktemp("batches")
    columns = binary(n=9_500, seed=7)
    names = ["accuracy", "f1_macro", "roc_auc", "log_loss", "brier"]
    path = write(folder, columns, row_group=1_000)
    expected = score(columns["label"], columns["prediction"], columns["score"], names, **OPTIONS)
    got = score_dataset(
        path,
        label="label",
        prediction="prediction",
        scores="score",
        metrics=names,
        batch_rows=batch_rows,
        **OPTIONS,
    )
    assert_same(expected, got)


def test_a_partition_key_column_is_read_through_the_dataset_scanner(tmp_path: Path) -> None:
    pq.write_to_dataset(pa.table(binary()), tmp_path / "parts", partition_cols=["label"])
    data = pads.dataset(tmp_path / "parts", format="parquet", partitioning="hive")
    table = data.to_table()  # the rows in the order the scan reads them: the subsample depends on it
    names = ["accuracy", "roc_auc", "log_loss"]
    truth, pred, s = (table[c].to_numpy() for c in ("label", "prediction", "score"))
    expected = score(truth, pred, s, names, **OPTIONS)
    got = score_dataset(
        data, label="label", prediction="prediction", scores="score", metrics=names, **OPTIONS
    )
    assert_same(expected, got)


def test_small_data_is_scored_by_score_itself(tmp_path: Path) -> None:
    columns = binary(n=3_000)
    names = ["accuracy", "roc_auc", "log_loss"]
    expected = score(columns["label"], columns["prediction"], columns["score"], names, n_resamples=300)
    got = score_dataset(
        pads.dataset(write(tmp_path, columns)),
        label="label",
        prediction="prediction",
        scores="score",
        metrics=names,
        batch_rows=400,
        n_resamples=300,
    )
    assert_same(expected, got, tol=0.0)


def test_classes_are_inferred_from_the_label_column(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    labels = np.array(["cat", "dog", "owl"])[rng.integers(0, 3, N)]
    predicted = np.where(rng.random(N) < 0.7, labels, np.array(["cat", "dog", "owl"])[rng.integers(0, 3, N)])
    path = write(tmp_path, {"label": labels, "prediction": predicted})
    names = ["accuracy", "f1_macro", "mcc"]
    expected = score(labels, predicted, None, names, **OPTIONS)
    got = score_dataset(
        path, label="label", prediction="prediction", metrics=names, batch_rows=5_000, **OPTIONS
    )
    assert_same(expected, got, tol=0.0)


def test_batches_are_bounded_and_the_rows_kept_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    streams: list[stream_module.Stream] = []
    update, estimates = stream_module.Stream.update, dataset_module.estimates

    def counting(self: stream_module.Stream, y_true: Any, *rest: Any) -> None:
        seen.append(len(y_true))
        update(self, y_true, *rest)
        assert self.buffer is None or self.n <= self.plan.keep_rows  # rows kept only while few
        assert all(len(s.index) <= MAX_ROWS for s in self.samples.values())

    def capture(stream: stream_module.Stream, options: Any) -> Scores:
        streams.append(stream)
        return estimates(stream, options)

    monkeypatch.setattr(stream_module.Stream, "update", counting)
    monkeypatch.setattr(dataset_module, "estimates", capture)
    columns = binary()
    path = write(tmp_path, columns, row_group=5_000)
    score_dataset(
        path,
        label="label",
        prediction="prediction",
        scores="score",
        metrics=BINARY,
        batch_rows=700,
        **OPTIONS,
    )
    assert max(seen) <= 700 and sum(seen) == N and len(seen) >= N // 700
    assert streams[0].buffer is None and len(streams[0].samples[8].index) == MAX_ROWS  # ece's subsample
    assert 6 not in streams[0].samples  # log_loss, a mean, keeps bins of its values instead of rows


def test_dask_partitions_merge_to_the_same_scores() -> None:
    dd = pytest.importorskip("dask.dataframe")
    dask = pytest.importorskip("dask")
    columns = multiclass(k=3)
    frame = dd.from_pandas(pa.table(columns).to_pandas(), npartitions=7)
    names = ["accuracy", "f1_macro", "roc_auc", "log_loss"]
    expected = score(columns["label"], columns["prediction"], scores_of(columns), names, **OPTIONS)
    with dask.config.set(scheduler="synchronous"):
        got = score_dataset(
            frame, label="label", prediction="prediction", scores=["p0", "p1", "p2"], metrics=names, **OPTIONS
        )
    assert_same(expected, got)


def test_dask_partitions_merge_r2_to_the_same_score() -> None:
    """Each partition bins R²'s rows about its own first batch's mean target; merged, ``score``'s bins."""
    dd = pytest.importorskip("dask.dataframe")
    dask = pytest.importorskip("dask")
    rng = np.random.default_rng(9)
    y = np.sort(rng.lognormal(0.0, 1.0, N))  # sorted: the partitions' shifts lie far apart
    columns = {"label": y, "prediction": y + rng.standard_t(3, N)}
    frame = dd.from_pandas(pa.table(columns).to_pandas(), npartitions=7)
    names = ["r2", "mse", "median_ae"]
    expected = score(columns["label"], columns["prediction"], None, names, **OPTIONS)
    assert "binned bootstrap of R²" in str(expected["r2"].note)
    with dask.config.set(scheduler="synchronous"):
        got = score_dataset(frame, label="label", prediction="prediction", metrics=names, **OPTIONS)
    assert_same(expected, got)


def test_documented_approximations_say_so() -> None:
    columns = binary()
    truth, pred, s = columns["label"], columns["prediction"], columns["score"]
    names = ["log_loss", "ece"]
    expected_both = score(truth, pred, s, names, **OPTIONS)
    batches = ((truth[i : i + 900], pred[i : i + 900], s[i : i + 900]) for i in range(0, N, 900))
    got_both = score_batches(batches, names, classes=[0, 1], **OPTIONS)  # length unknown
    # A mean's bins need no row count: the same interval as score()'s, with no caveat about it.
    assert_same(Scores({"log_loss": expected_both["log_loss"]}), Scores({"log_loss": got_both["log_loss"]}))
    expected, got = expected_both["ece"], got_both["ece"]  # ECE: score()'s subsample is not known
    assert got.value == pytest.approx(expected.value, rel=1e-12)
    assert got.note is not None and "uniform subsample, not score()'s" in got.note
    assert abs(got.high - got.low) == pytest.approx(expected.high - expected.low, rel=0.3)  # type: ignore[operator]
    rng = np.random.default_rng(6)
    truth = rng.integers(0, 50, N)
    pred = np.where(rng.random(N) < 0.6, truth, rng.integers(0, 50, N))
    expected = score(truth, pred, None, ["accuracy"], classes=np.arange(50), **OPTIONS)["accuracy"]
    got = score_batches([(truth, pred)], ["accuracy"], classes=np.arange(50), n_rows=N, **OPTIONS)["accuracy"]
    assert got.value == expected.value and "multinomial draws of the 2500 confusion cells" in str(got.note)


def _one_line(call: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_bad_inputs_are_one_line_naming_what_was_given_and_what_is_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, binary(n=500))
    kw: dict[str, Any] = {
        "label": "label",
        "prediction": "prediction",
        "scores": "score",
        "metrics": ["accuracy"],
    }
    message = _one_line(lambda: score_dataset(tmp_path / "missing.parquet", **kw))
    assert "no such file or folder" in message and "missing.parquet" in message
    message = _one_line(lambda: score_dataset(path, **{**kw, "label": "truth"}))
    assert "no column 'truth'" in message and "its columns are label, prediction, score" in message
    assert "no column 'p9'" in _one_line(lambda: score_dataset(path, **{**kw, "scores": ["p9"]}))
    message = _one_line(lambda: score_dataset(path, **{**kw, "classes": [0, 2]}))
    assert "label column 'label' has a label that is not among classes: 1; add it to classes" in message
    (tmp_path / "notes.parquet").write_text("not parquet")
    assert "is not a Parquet data set" in _one_line(lambda: score_dataset(tmp_path / "notes.parquet", **kw))
    assert "got int" in _one_line(lambda: score_dataset(5, **kw))
    (tmp_path / "holes").mkdir()
    holes = write(
        tmp_path / "holes", {"label": pa.array([0, None, 1] * 4000), "prediction": np.zeros(12_000, int)}
    )
    message = _one_line(lambda: score_dataset(holes, **{**kw, "scores": None}))  # in the pass for classes
    assert message.endswith(
        "column 'label' has 4000 missing values in " + str(holes) + "; every row needs one"
    )
    assert "column 'label' has 4000 missing values in rows 0–11,999; every row needs one" in _one_line(
        lambda: score_dataset(holes, **{**kw, "scores": None, "classes": [0, 1]})
    )
    empty = write(tmp_path / "holes", {"label": np.zeros(0, int), "prediction": np.zeros(0, int)})
    assert "holds no rows" in _one_line(lambda: score_dataset(empty, **{**kw, "scores": None}))
    assert "unknown metric 'acc'" in _one_line(lambda: score_dataset(path, **{**kw, "metrics": ["acc"]}))
    assert "batch_rows must be >= 1; got 0" in _one_line(lambda: score_dataset(path, **kw, batch_rows=0))
    assert "classes is required" in _one_line(lambda: score_batches([([0], [0])], ["accuracy"]))
    message = _one_line(lambda: score_batches([([0, 1], [0, 1])], ["accuracy"], classes=[0, 1], n_rows=3))
    assert message == "n_rows is 3 but the batches hold 2 rows; they must match"
