"""The trust model: the project file alone never gets a command run.

``estimator:`` must be a class with fit and predict, checked before anything is instantiated;
``factory:`` and ``baselines.rules`` must come from the project folder or a package under
``trust:``, checked before a foreign module is imported. Each dangerous function below is
replaced by a recorder that passes calls through, and pointed at a marker it would create or
delete, so a call would show twice.
"""

from __future__ import annotations

import builtins
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flywheel.data import load_dataset
from flywheel.errors import FlywheelError, ModelError, ProjectError
from flywheel.evaluation import resolve_candidates, resolve_rule
from flywheel.project import Project, load_project, parse_project
from helpers import write_project

BASE = """\
project: trust
data: {source: builtin:iris, target: species, split: {seed: 1}}
objective: {optimize: accuracy}
"""

DANGEROUS = {
    "os.system": (os, "system"),
    "shutil.rmtree": (shutil, "rmtree"),
    "subprocess.call": (subprocess, "call"),
    "builtins.exec": (builtins, "exec"),
}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each dangerous function replaced by a recorder; what the project could pass is recorded."""
    seen: list[str] = []

    def recorder(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def record(*args: Any, **kwargs: Any) -> Any:
            # Other code may use these (dataclasses use exec); only a call with the project's
            # params, with nothing, or with the data's rows can come from calling what the file named.
            if not args or set(kwargs) & PARAM_NAMES or any(isinstance(a, pd.DataFrame) for a in args):
                seen.append(name)
            return original(*args, **kwargs)

        return record

    for name, (module, attr) in DANGEROUS.items():
        monkeypatch.setattr(module, attr, recorder(name, getattr(module, attr)))
    return seen


def _params(name: str, marker: Path) -> str:
    """Params that would leave a trace: a file created, or a folder deleted."""
    return {
        "os.system": f"{{command: 'touch {marker}'}}",
        "shutil.rmtree": f"{{path: '{marker.parent / 'keep'}'}}",
        "subprocess.call": f"{{args: [touch, '{marker}']}}",
        "builtins.exec": "{source: '1'}",
    }[name]


PARAM_NAMES = {"command", "path", "args", "source"}


def _untouched(folder: Path, calls: list[str]) -> None:
    assert calls == []
    assert not (folder / "MARKER").exists()
    assert (folder / "keep").is_dir()
    assert not (folder / ".flywheel").exists()


def _project_dir(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "p"
    write_project(folder, text)
    (folder / "keep").mkdir()
    return folder


def _resolve_all(project: Project) -> None:
    ds = load_dataset(project.data, project.root, where=project.where)
    resolve_candidates(project, ds, np.arange(len(ds.frame)), project.where)
    for i, path in enumerate(project.baselines.rules):
        resolve_rule(path, i, project, project.where)


@pytest.mark.parametrize("name", sorted(DANGEROUS))
def test_a_function_named_as_estimator_is_refused_uncalled(
    tmp_path: Path, calls: list[str], name: str
) -> None:
    folder = _project_dir(tmp_path, BASE)
    marker = folder / "MARKER"
    text = BASE + f"models:\n  - {{name: x, estimator: {name}, params: {_params(name, marker)}}}\n"
    write_project(folder, text)
    project = load_project(folder)  # an estimator is checked when it is imported, before a fit
    with pytest.raises(ModelError) as info:
        _resolve_all(project)
    message = str(info.value)
    assert f"models[0].estimator '{name}' must name an estimator class with fit and predict" in message
    assert "\n" not in message
    _untouched(folder, calls)


@pytest.mark.parametrize("name", sorted(DANGEROUS))
@pytest.mark.parametrize("where", ["factory", "rules"])
def test_a_foreign_function_as_factory_or_rule_is_refused_at_load(
    tmp_path: Path, calls: list[str], monkeypatch: pytest.MonkeyPatch, name: str, where: str
) -> None:
    folder = _project_dir(tmp_path, BASE)
    marker = folder / "MARKER"
    path = name.replace(".", ":")
    if where == "factory":
        text = BASE + f"models:\n  - {{name: x, factory: '{path}', params: {_params(name, marker)}}}\n"
        field = "models[0].factory"
    else:
        text = BASE + f"baselines: {{rules: ['{path}']}}\n"
        field = "baselines.rules[0]"
    write_project(folder, text)
    with pytest.raises(ProjectError) as info:
        load_project(folder)
    assert str(info.value).endswith(
        f"flywheel.yaml: {field} '{path}' is not in the project folder nor a trusted package; "
        "allowed: a module next to flywheel.yaml, or list its package under trust:"
    )
    # A project made in Python skips the load-time check; resolving it refuses all the same.
    monkeypatch.chdir(folder)
    with pytest.raises(ModelError, match="is not in the project folder nor a trusted package"):
        _resolve_all(parse_project(text))
    _untouched(folder, calls)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path, outside the project folder, holding installed-like packages."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name in [n for n in sys.modules if n.split(".")[0] in {"team_models", "eager_pkg"}]:
        del sys.modules[name]


TEAM = """\
from pathlib import Path

from sklearn.tree import DecisionTreeClassifier


def build(marker=None, **params):
    if marker:
        Path(marker).write_text("called")
    return DecisionTreeClassifier(**params)


def predict(rows):
    return ["setosa"] * len(rows)
"""


def test_a_package_is_called_only_when_trusted(tmp_path: Path, site: Path) -> None:
    (site / "team_models").mkdir()
    (site / "team_models" / "__init__.py").write_text(TEAM)
    folder = _project_dir(tmp_path, BASE)
    marker = folder / "MARKER"
    models = f"models:\n  - {{name: t, factory: 'team_models:build', params: {{marker: '{marker}'}}}}\n"
    rules = "baselines: {rules: ['team_models:predict']}\n"
    write_project(folder, BASE + models + rules)
    with pytest.raises(ProjectError, match=r"models\[0\].factory 'team_models:build' is not in the project"):
        load_project(folder)
    assert "team_models" not in sys.modules and not marker.exists()

    write_project(folder, BASE + models + rules + "trust: [team_models]\n")
    project = load_project(folder)
    ds = load_dataset(project.data, project.root)
    (candidate,) = resolve_candidates(project, ds, np.arange(len(ds.frame)))
    assert marker.exists()  # built once while resolving, to check its params
    assert candidate.make is not None and hasattr(candidate.make(), "fit")
    rule = resolve_rule("team_models:predict", 0, project)
    assert list(rule(ds.frame.head(2))) == ["setosa", "setosa"]


def test_a_foreign_module_is_not_even_imported(tmp_path: Path, site: Path) -> None:
    (site / "eager_pkg").mkdir()
    (site / "eager_pkg" / "__init__.py").write_text(
        f"open({str(tmp_path / 'IMPORTED')!r}, 'w').close()\n\ndef build():\n    return None\n"
    )
    folder = _project_dir(tmp_path, BASE + "models:\n  - {name: e, factory: 'eager_pkg:build'}\n")
    with pytest.raises(ProjectError, match="is not in the project folder nor a trusted package"):
        load_project(folder)
    assert not (tmp_path / "IMPORTED").exists() and "eager_pkg" not in sys.modules


def test_the_project_folders_own_code_still_runs(tmp_path: Path) -> None:
    folder = _project_dir(
        tmp_path,
        BASE
        + "baselines: {rules: ['my_rules:predict']}\n"
        + "models:\n"
        + "  - {name: f, factory: 'my_models:build', params: {max_depth: 2}}\n"
        + "  - {name: c, estimator: my_models.Tree, params: {max_depth: 2}}\n",
    )
    (folder / "my_models.py").write_text(
        "from sklearn.tree import DecisionTreeClassifier\n\n\n"
        "def build(**params):\n    return DecisionTreeClassifier(**params)\n\n\n"
        "class Tree(DecisionTreeClassifier):\n    pass\n"
    )
    (folder / "my_rules.py").write_text("def predict(rows):\n    return ['setosa'] * len(rows)\n")
    project = load_project(folder)
    ds = load_dataset(project.data, project.root)
    made = resolve_candidates(project, ds, np.arange(len(ds.frame)))
    assert [c.name for c in made] == ["f", "c"]
    assert all(c.make is not None and hasattr(c.make(), "predict") for c in made)
    assert len(resolve_rule("my_rules:predict", 0, project)(ds.frame.head(3))) == 3


def test_a_class_without_fit_and_predict_is_never_instantiated(tmp_path: Path) -> None:
    folder = _project_dir(tmp_path, BASE + "models:\n  - {name: c, estimator: odd.Spawner}\n")
    (folder / "odd.py").write_text(
        "from pathlib import Path\n\n\nclass Spawner:\n"
        "    def __init__(self):\n        Path(__file__).with_name('MARKER').write_text('made')\n\n"
        "    def fit(self, X, y):\n        return self\n"
    )
    with pytest.raises(ModelError, match=r"got class Spawner without predict"):
        _resolve_all(load_project(folder))
    assert not (folder / "MARKER").exists()


@pytest.mark.parametrize(
    ("trust", "expected"),
    [
        ("[os]", "trust[0] must name an installed package, not Python's standard library"),
        ("[sklearn, subprocess]", "trust[1] must name an installed package, not Python's standard"),
        ("[team.models]", "trust[0] must be a top-level module name like sklearn or team_models; got"),
        ("sklearn", "trust must be a list; got 'sklearn'"),
    ],
)
def test_the_trust_list_is_validated(trust: str, expected: str) -> None:
    with pytest.raises(FlywheelError) as info:
        parse_project(BASE + f"trust: {trust}\n")
    assert expected in str(info.value)


def test_a_module_missing_everywhere_says_it_does_not_import(tmp_path: Path) -> None:
    folder = _project_dir(tmp_path, BASE + "models:\n  - {name: m, factory: 'nowhere_at_all:build'}\n")
    project = load_project(folder)  # not refused at load: it is not foreign, it is missing
    with pytest.raises(
        ModelError, match="does not import: ModuleNotFoundError: No module named 'nowhere_at_all'"
    ):
        _resolve_all(project)
