"""Bad input that cannot hurt: any mutation of a valid project file loads or is refused in one line.

Hypothesis mutates one field of a valid ``flywheel.yaml`` at a time (a wrong type, an out-of-range
number, an unknown key, a key removed) or breaks its YAML, and loads it the way the CLI does. The
file either loads, or :func:`load_project` raises a :class:`FlywheelError` whose message is one
line, begins with the file and names the field. Then a few refusals end to end through the
``flywheel`` command: exit code 2, one line on stderr, no traceback, nothing stored.
"""

from __future__ import annotations

import copy
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flywheel.errors import FlywheelError
from flywheel.project import load_project
from helpers import tabular_frame, write_project

VALID: dict[str, Any] = {
    "project": "fuzz",
    "problem": "Tell iris species apart.",
    "archetype": "human-in-the-loop",
    "impact": {"value_per_year": 1000, "volume_per_year": 5000, "lenses": ["cheap-prediction"]},
    "costs": {"label": 0.1, "wrong_prediction": 2.0},
    "difficulty": {"output": "low", "reliability": "high"},
    "data": {
        "source": "builtin:iris",
        "target": "species",
        "split": {"test": 0.25, "valid": 0.25, "seed": 3, "train_dev": 0.1},
    },
    "objective": {
        "optimize": "accuracy",
        "target": 0.9,
        "constraints": {"latency_p95_ms": {"max": 25}, "accuracy": {"min": 0.5, "confidence": 0.9}},
    },
    "baselines": {
        "human": {"accuracy": 0.95, "n": 200, "tier": "expert"},
        "external": [{"name": "paper", "accuracy": 0.97}],
        "rules": ["my_rules:predict"],
        "time_budget_s": 60,
        "margin": 0.01,
    },
    "models": [
        {"name": "tree", "estimator": "sklearn.tree.DecisionTreeClassifier", "params": {"max_depth": 3}},
        {"name": "mine", "factory": "my_models:build"},
        {"name": "vendor", "predictions": "vendor.csv"},
    ],
    "trust": ["sklearn"],
    "gate": {"margin": 0.01, "policy": "superiority"},
    "diagnosis": {"sizes": 6, "seeds": 2, "min_support": 10, "fdr": 0.1},
    "readiness": {"schema_checked": True},
}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and list position in the valid file, containers included."""
    out: list[tuple[Any, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        out.append((*prefix, key))
        out += _paths(value, (*prefix, key))
    return out


def _at(path: tuple[Any, ...]) -> Any:
    node: Any = VALID
    for key in path:
        node = node[key]
    return node


PATHS = _paths(VALID)
MAPPINGS: list[tuple[Any, ...]] = [(), *(p for p in PATHS if isinstance(_at(p), dict))]
KNOWN = sorted({str(p[-1]) for p in PATHS if isinstance(p[-1], str)})

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
BAD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text("abcxyz_", min_size=1, max_size=5), st.integers(-3, 3), max_size=2),
    st.sampled_from(["os:system", "os.system", "acc", "-1", "builtin:nope", "a b", "", "1e-3", "[", "{x"]),
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder whose rules and factory modules exist (they are not imported at load)."""
    path = tmp_path_factory.mktemp("fuzz")
    (path / "my_rules.py").write_text("def predict(rows):\n    return ['setosa'] * len(rows)\n")
    (path / "my_models.py").write_text("def build():\n    return None\n")
    return path


def _named(path: tuple[Any, ...]) -> str:
    """How a message names the top of ``path``: ``models``, ``data`` or a root key itself."""
    return str(path[0])


def _load_or_refuse(folder: Path, text: str, names: list[str]) -> None:
    """Load ``text``: success, or one line from the file naming one of ``names``."""
    file = folder / "flywheel.yaml"
    file.write_text(text, encoding="utf-8")
    try:
        load_project(folder)
    except FlywheelError as exc:
        message, where = str(exc), os.path.relpath(file)
        assert "\n" not in message
        assert message.startswith(f"{where}: "), message
        rest = message[len(where) + 2 :]
        assert any(name in rest for name in names), (names, message)
    assert not (folder / ".flywheel").exists()


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _delete(data: dict[str, Any], path: tuple[Any, ...]) -> None:
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]


def _dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def test_the_valid_file_loads(folder: Path) -> None:
    (folder / "flywheel.yaml").write_text(_dump(VALID))
    project = load_project(folder)
    assert project.trust == ["sklearn"] and len(project.models) == 3


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=BAD_VALUES)
def test_a_field_given_a_bad_value(folder: Path, path: tuple[Any, ...], value: Any) -> None:
    data = copy.deepcopy(VALID)
    _set(data, path, value)
    _load_or_refuse(folder, _dump(data), [_named(path)])


@settings(max_examples=80, deadline=None)
@given(path=st.sampled_from(PATHS))
def test_a_field_removed(folder: Path, path: tuple[Any, ...]) -> None:
    data = copy.deepcopy(VALID)
    _delete(data, path)
    _load_or_refuse(folder, _dump(data), [_named(path)])


@settings(max_examples=80, deadline=None)
@given(
    at=st.sampled_from(MAPPINGS),
    key=st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10),
    value=BAD_VALUES,
)
def test_an_unknown_key(folder: Path, at: tuple[Any, ...], key: str, value: Any) -> None:
    data = copy.deepcopy(VALID)
    _set(data, (*at, key), value)
    _load_or_refuse(folder, _dump(data), [_named(at) if at else key])


SYNTAX = ["{", "}", "[", "]", ":", "- ", "\t", '"', "'", "&a", "*a", "!!int", "!!float", "%", "@", "`", "|"]


@settings(max_examples=150, deadline=None)
@given(
    position=st.floats(0, 1),
    token=st.sampled_from(
        ["{", "}", "[", "]", ":", "- ", "\t", '"', "'", "&a", "*a", "!!int", "%", "@", "`", "|", ">"]
    )
    | TEXT,
    cut=st.integers(0, 6),
)
def test_broken_yaml(folder: Path, position: float, token: str, cut: int) -> None:
    text = _dump(VALID)
    at = int(position * len(text))
    names = ["not valid YAML", "must be a mapping", "the file is empty", *KNOWN]
    _load_or_refuse(folder, text[:at] + token + text[at + cut :], names)


# --- through the command line ---------------------------------------------------------------------

BASE = """\
project: cli-refusal
data: {source: data.csv, target: label, split: {seed: 1}}
objective: {optimize: accuracy}
"""


def _data(folder: Path, case: str) -> None:
    frame = tabular_frame(80)
    if case == "infinite":
        frame.loc[[2, 5], "x1"] = np.inf
    frame.to_csv(folder / "data.csv", index=False)
    if case == "duplicate":
        text = (folder / "data.csv").read_text().replace("x2", "x1", 1)
        (folder / "data.csv").write_text(text)


@pytest.mark.parametrize(
    ("case", "change", "expected"),
    [
        (
            "factory",
            "models:\n  - {name: x, factory: 'os:system', params: {command: 'touch MARKER'}}\n",
            "models[0].factory 'os:system' is not in the project folder nor a trusted package",
        ),
        (
            "estimator",
            "models:\n  - {name: x, estimator: os.system, params: {command: 'touch MARKER'}}\n",
            "models[0].estimator 'os.system' must name an estimator class with fit and predict",
        ),
        (
            "human",
            "baselines: {human: {accuracy: 1.7, n: 500}}\n",
            "baselines.human accuracy must lie in [0, 1]; got 1.7",
        ),
        ("seed", "", "data.split.seed must be >= 0; got -1"),
        ("directory", "", "data.source 'data.csv' is a directory"),
        ("infinite", "", "has infinite values in column 'x1' (2 rows)"),
        ("duplicate", "", "names a column more than once: 'x1' (2 times)"),
    ],
    ids=["factory", "estimator", "human", "seed", "directory", "infinite", "duplicate"],
)
def test_the_command_refuses_in_one_line_and_stores_nothing(
    tmp_path: Path,
    cli: Callable[..., subprocess.CompletedProcess[str]],
    case: str,
    change: str,
    expected: str,
) -> None:
    folder = tmp_path / case
    text = BASE + change
    if case == "seed":
        text = text.replace("seed: 1", "seed: -1")
    write_project(folder, text)
    if case == "directory":
        (folder / "data.csv").mkdir()
    else:
        _data(folder, case)
    done = cli("run", str(folder), cwd=folder)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: flywheel.yaml: "), done.stderr
    assert expected in lines[0]
    assert "Traceback" not in done.stdout + done.stderr
    assert not (folder / ".flywheel").exists()
    assert not (folder / "MARKER").exists()
