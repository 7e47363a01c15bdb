"""The public API: one place, sorted, every name importable."""

import importlib

import flywheel


def test_all_is_sorted_and_unique() -> None:
    assert flywheel.__all__ == sorted(set(flywheel.__all__))


def test_every_public_name_imports() -> None:
    for name in flywheel.__all__:
        assert getattr(flywheel, name) is not None, name


def test_issue_minimum_api_is_public() -> None:
    for name in ("load_project", "run", "Project", "RunResult"):
        assert name in flywheel.__all__


def test_submodule_all_names_exist() -> None:
    for module in (
        "project",
        "data",
        "metrics",
        "prediction_log",
        "execution",
        "evaluation",
        "registry",
        "baselines",
        "diagnosis",
        "scoping",
        "results",
        "report",
        "pipeline",
        "loop",
        "serving",
        "errors",
        "cli",
    ):
        mod = importlib.import_module(f"flywheel.{module}")
        assert mod.__all__ == sorted(mod.__all__), module
        for name in mod.__all__:
            assert hasattr(mod, name), f"flywheel.{module}.{name}"
