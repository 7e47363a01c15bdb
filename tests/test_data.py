"""Data: sources, task inference, column kinds, splits and fingerprints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.data import BUILTIN_SETS, infer_task, load_dataset, split_dataset
from flywheel.errors import DataError
from flywheel.project import DataSpec, SplitSpec
from helpers import tabular_frame


def spec(**kw: object) -> DataSpec:
    return DataSpec.model_validate({"source": "data.csv", "target": "label", **kw})


@pytest.mark.parametrize(
    ("name", "task"),
    [
        ("digits", "multiclass"),
        ("breast_cancer", "binary"),
        ("wine", "multiclass"),
        ("iris", "multiclass"),
        ("diabetes", "regression"),
    ],
)
def test_builtin_sets_load_with_the_right_task(name: str, task: str) -> None:
    target = BUILTIN_SETS[name][1]
    ds = load_dataset(DataSpec(source=f"builtin:{name}", target=target), Path("."))
    assert ds.task == task
    assert ds.columns.numeric and not ds.columns.categorical and not ds.columns.text
    assert target not in ds.columns.features
    assert (ds.classes is None) == (task == "regression")


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_file_sources_agree(tmp_path: Path, suffix: str) -> None:
    frame = tabular_frame(120)
    path = tmp_path / f"data{suffix}"
    {
        ".csv": lambda: frame.to_csv(path, index=False),
        ".parquet": lambda: frame.to_parquet(path, index=False),
        ".jsonl": lambda: frame.to_json(path, orient="records", lines=True),
    }[suffix]()
    ds = load_dataset(spec(source=path.name, id="id"), tmp_path)
    assert ds.task == "binary" and ds.classes == ("no", "yes")
    assert ds.columns.numeric == ("x1", "x2")
    assert ds.columns.categorical == ("colour",)
    assert ds.columns.text == ("review",)
    assert ds.columns.ignored == {"label": "target", "id": "id"}
    assert len(ds.frame) == 120


def test_fingerprint_is_stable_and_sensitive(tmp_path: Path) -> None:
    frame = tabular_frame(100)
    frame.to_csv(tmp_path / "data.csv", index=False)
    a = load_dataset(spec(), tmp_path).fingerprint
    assert a == load_dataset(spec(), tmp_path).fingerprint
    frame.loc[5, "x1"] += 1e-9
    frame.to_csv(tmp_path / "data.csv", index=False)
    assert load_dataset(spec(), tmp_path).fingerprint != a
    assert load_dataset(spec(target="colour"), tmp_path).fingerprint != a


def test_split_fingerprint_depends_on_settings(tmp_path: Path) -> None:
    tabular_frame(100).to_csv(tmp_path / "data.csv", index=False)
    ds = load_dataset(spec(), tmp_path)
    a = split_dataset(ds, SplitSpec(seed=1)).fingerprint
    assert a == split_dataset(ds, SplitSpec(seed=1)).fingerprint
    assert a != split_dataset(ds, SplitSpec(seed=2)).fingerprint
    assert a != split_dataset(ds, SplitSpec(seed=1, test=0.3)).fingerprint


@pytest.mark.parametrize(
    ("values", "task"),
    [
        ([0, 1, 0, 1], "binary"),
        ([True, False, True], "binary"),
        (["a", "b", "c"], "multiclass"),
        ([1, 2, 3, 4, 5], "multiclass"),
        ([0.1, 0.7, 2.5], "regression"),
        (list(range(100)), "regression"),
        ([1.0, 2.0, 1.0, 3.0], "multiclass"),
        (["yes", "no"], "binary"),
    ],
)
def test_infer_task(values: list[object], task: str) -> None:
    assert infer_task(pd.Series(values)) == task


def test_declared_task_overrides_inference(tmp_path: Path) -> None:
    pd.DataFrame({"x": range(50), "label": [i % 5 for i in range(50)]}).to_csv(tmp_path / "data.csv")
    assert load_dataset(spec(), tmp_path).task == "multiclass"
    assert load_dataset(spec(task="regression"), tmp_path).task == "regression"


def test_unlabelled_rows_are_counted_not_used(tmp_path: Path) -> None:
    frame = tabular_frame(50)
    frame.loc[[3, 7], "label"] = None
    frame.to_csv(tmp_path / "data.csv", index=False)
    ds = load_dataset(spec(), tmp_path)
    assert len(ds.frame) == 48 and ds.n_unlabelled == 2
    assert 3 not in ds.ids.tolist() and 4 in ds.ids.tolist()  # ids are file row numbers


@pytest.mark.parametrize(
    ("setup", "kw", "expected"),
    [
        (None, {"source": "missing.csv"}, "data.source 'missing.csv' does not exist"),
        (
            None,
            {"source": "data.xlsx"},
            "data.source must be a .csv, .parquet or .jsonl file; got 'data.xlsx'",
        ),
        (None, {"source": "builtin:mnist"}, "data.source must be one of builtin:digits"),
        ("ok", {"target": "nope"}, "data.target 'nope' is not a column of data.csv; columns: id, x1"),
        ("one_class", {}, "data.target 'label' has a single class ('yes') in 50 labelled rows"),
        ("ok", {"id": "colour"}, "data.id 'colour' must be unique"),
        ("ok", {"split": {"group": "nope"}}, "data.split.group 'nope' is not a column"),
        ("ok", {"task": "regression"}, "data.task is regression but target 'label' is not numeric"),
        ("empty", {}, "data.source 'data.csv' is empty"),
        ("garbage", {}, "cannot be read as CSV"),
        ("ok", {"split": {"group": "colour"}}, "needs at least 3 groups"),
        ("ok", {"split": {"time": "review"}}, "data.split.time 'review' must hold numbers or dates"),
    ],
)
def test_bad_data_is_one_clear_line(
    tmp_path: Path, setup: str | None, kw: dict[str, object], expected: str
) -> None:
    frame = tabular_frame(50)
    if setup == "one_class":
        frame["label"] = "yes"
    if setup == "ok" and kw.get("split") == {"group": "colour"}:
        frame["colour"] = np.where(frame.index < 25, "a", "b")
    if setup in ("ok", "one_class"):
        frame.to_csv(tmp_path / "data.csv", index=False)
    elif setup == "empty":
        (tmp_path / "data.csv").write_text("")
    elif setup == "garbage":
        (tmp_path / "data.csv").write_bytes(b'a,b\n1,2\n"unterminated,3\n4,5,6,7\n')
    with pytest.raises(DataError) as info:
        ds = load_dataset(spec(**kw), tmp_path)
        split_dataset(ds, ds_split(kw))
    assert "\n" not in str(info.value)
    assert expected in str(info.value)
    assert str(info.value).startswith("flywheel.yaml: ")


def ds_split(kw: dict[str, object]) -> SplitSpec:
    return SplitSpec.model_validate(kw.get("split", {}))


# --- splits --------------------------------------------------------------------------------------


def _ds(frame: pd.DataFrame, tmp_path: Path, **kw: object):  # type: ignore[no-untyped-def]
    frame.to_csv(tmp_path / "data.csv", index=False)
    return load_dataset(spec(**kw), tmp_path)


def test_split_is_a_deterministic_partition(tmp_path: Path) -> None:
    ds = _ds(tabular_frame(200), tmp_path)
    a, b = split_dataset(ds, SplitSpec(seed=5)), split_dataset(ds, SplitSpec(seed=5))
    for part in ("train", "valid", "test"):
        assert np.array_equal(getattr(a, part), getattr(b, part))
    everything = np.concatenate([a.train, a.valid, a.test])
    assert sorted(everything.tolist()) == list(range(200))
    c = split_dataset(ds, SplitSpec(seed=6))
    assert not np.array_equal(a.test, c.test)


def test_split_is_stratified(tmp_path: Path) -> None:
    frame = tabular_frame(1000)
    frame["label"] = np.where(np.arange(1000) < 100, "rare", "common")
    ds = _ds(frame, tmp_path)
    s = split_dataset(ds, SplitSpec(test=0.2, valid=0.2, seed=0))
    assert s.strategy == "stratified"
    for part in (s.train, s.valid, s.test):
        share = np.mean(ds.y[part] == "rare")
        assert abs(share - 0.1) < 0.01


@settings(max_examples=40, deadline=None)
@given(
    n_groups=st.integers(3, 40),
    n=st.integers(30, 200),
    seed=st.integers(0, 2**16),
    test=st.floats(0.1, 0.4),
    valid=st.floats(0.0, 0.4),
)
def test_group_split_never_shares_a_group(
    n_groups: int, n: int, seed: int, test: float, valid: float
) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"x": rng.normal(size=n), "g": rng.integers(0, n_groups, size=n), "label": rng.normal(size=n)}
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ds = _ds(frame, Path(tmp), split={"group": "g"})
    try:
        s = split_dataset(ds, SplitSpec(test=test, valid=valid, seed=seed, group="g"))
    except DataError:
        return  # too few rows landed in train or test: refused with a message, which is fine
    groups = [set(ds.frame["g"].to_numpy()[p].tolist()) for p in (s.train, s.valid, s.test)]
    assert not groups[0] & groups[1] and not groups[0] & groups[2] and not groups[1] & groups[2]
    assert s.strategy == "group"
    assert len(s.train) + len(s.valid) + len(s.test) == len(ds.frame)


def test_time_split_puts_the_latest_rows_in_test(tmp_path: Path) -> None:
    frame = tabular_frame(100)
    dates = pd.date_range("2024-01-01", periods=100, freq="D")
    frame["when"] = np.random.default_rng(0).permutation(dates.astype(str))
    ds = _ds(frame, tmp_path, split={"time": "when"})
    s = split_dataset(ds, SplitSpec(time="when", test=0.2, valid=0.1))
    when = pd.to_datetime(ds.frame["when"])
    assert when[s.test].min() > when[s.valid].max() > when[s.train].max()
    assert len(s.test) == 20 and len(s.valid) == 10
    assert "when" not in ds.columns.features


def test_split_refuses_when_nothing_is_left_to_train(tmp_path: Path) -> None:
    frame = tabular_frame(4)
    frame["label"] = ["yes", "no", "yes", "no"]
    ds = _ds(frame, tmp_path)
    with pytest.raises(DataError, match="need at least 2 train and 1 test row"):
        split_dataset(ds, SplitSpec(test=0.2, valid=0.1))


def test_train_dev_is_held_out_from_train_and_keeps_groups_whole(tmp_path: Path) -> None:
    frame = tabular_frame(400).assign(team=[f"g{i % 20}" for i in range(400)])
    frame.to_csv(tmp_path / "d.csv", index=False)
    spec = DataSpec(source="d.csv", target="label", split={"group": "team", "train_dev": 0.25})
    ds = load_dataset(spec, tmp_path)
    split = split_dataset(ds, spec.split)
    assert len(split.train_dev) and not set(split.train_dev) & set(split.train)
    assert not set(split.train_dev) & (set(split.valid) | set(split.test))
    teams = ds.frame["team"].to_numpy()
    assert not set(teams[split.train_dev]) & set(teams[split.train])
    assert split.sizes()["train_dev"] == len(split.train_dev)
    plain = DataSpec(source="d.csv", target="label")
    no_dev = split_dataset(ds, plain.split)
    assert "train_dev" not in no_dev.sizes() and len(no_dev.train_dev) == 0


# --- values refused before fitting ---------------------------------------------------------------


def _write(tmp_path: Path, case: str) -> None:
    frame = tabular_frame(50)
    if case == "infinite":
        frame.loc[[1, 2, 3], "x1"] = np.inf
        frame.loc[4, "x2"] = -np.inf
    elif case == "infinite_target":
        frame["label"] = np.linspace(0, 1, 50)
        frame.loc[7, "label"] = np.inf
    elif case == "mixed":
        frame["x1"] = frame["x1"].astype(object)
        frame.loc[[5, 9], "x1"] = "unknown"
    elif case == "mixed_target":
        frame["label"] = pd.Series(np.arange(50), dtype=object)
        frame.loc[[0, 1, 2], "label"] = "later"
    if case == "mixed_jsonl":
        frame["x1"] = frame["x1"].astype(object)
        frame.loc[3, "x1"] = "n.a."
        frame.to_json(tmp_path / "data.jsonl", orient="records", lines=True)
    else:
        frame.to_csv(tmp_path / "data.csv", index=False)
    if case == "duplicate":
        (tmp_path / "data.csv").write_text(
            (tmp_path / "data.csv").read_text().replace("x2", "x1", 1).replace("review", "colour", 1)
        )


@pytest.mark.parametrize(
    ("case", "kw", "expected"),
    [
        (
            "infinite",
            {},
            "flywheel.yaml: data.source 'data.csv' has infinite values in columns 'x1' (3 rows), "
            "'x2' (1 row); allowed: finite numbers (leave a missing value empty)",
        ),
        ("infinite_target", {}, "has infinite values in column 'label' (1 row)"),
        (
            "mixed",
            {},
            "flywheel.yaml: data.source 'data.csv' mixes numbers and text in column 'x1' (48 numbers, "
            "2 text, e.g. 'unknown'); allowed: numbers only or text only in a column",
        ),
        ("mixed_target", {}, "column 'label' (47 numbers, 3 text, e.g. 'later')"),
        ("mixed_jsonl", {"source": "data.jsonl"}, "column 'x1' (49 numbers, 1 text, e.g. 'n.a.')"),
        (
            "duplicate",
            {},
            "flywheel.yaml: data.source 'data.csv' names a column more than once: 'x1' (2 times), "
            "'colour' (2 times); allowed: each column named once",
        ),
        ("folder", {"source": "data.csv"}, "flywheel.yaml: data.source 'data.csv' is a directory; allowed:"),
        ("folder", {"source": "tables"}, "flywheel.yaml: data.source 'tables' is a directory; allowed:"),
    ],
)
def test_values_that_would_hurt_a_fit_are_refused(
    tmp_path: Path, case: str, kw: dict[str, object], expected: str
) -> None:
    if case == "folder":
        (tmp_path / str(kw["source"])).mkdir()
    else:
        _write(tmp_path, case)
    with pytest.raises(DataError) as info:
        load_dataset(spec(**kw), tmp_path)
    assert "\n" not in str(info.value)
    assert expected in str(info.value)


def test_a_text_column_with_a_few_numbers_is_not_mixed(tmp_path: Path) -> None:
    frame = tabular_frame(50)
    frame.loc[[1, 2], "review"] = "5"  # a review that is a number is still a review
    frame["code"] = np.where(np.arange(50) % 2, "A1", "B2")
    frame.to_csv(tmp_path / "data.csv", index=False)
    ds = load_dataset(spec(id="id"), tmp_path)
    assert ds.columns.text == ("review",) and "code" in ds.columns.categorical


def test_id_and_group_columns_may_mix_numbers_and_text(tmp_path: Path) -> None:
    frame = tabular_frame(60)
    frame["id"] = [str(i) if i % 3 else f"r{i}" for i in range(60)]
    frame.to_csv(tmp_path / "data.csv", index=False)
    assert len(load_dataset(spec(id="id"), tmp_path).frame) == 60
