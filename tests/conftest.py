"""Shared fixtures: small projects and data files the tests write themselves."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import FLYWHEEL, IRIS_PROJECT, write_project


@pytest.fixture
def iris_project(tmp_path: Path) -> Path:
    """A fast project on the built-in iris set."""
    return write_project(tmp_path / "iris", IRIS_PROJECT)


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed ``flywheel`` console script in a subprocess."""

    def call(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(FLYWHEEL), *args], capture_output=True, text=True, cwd=cwd or tmp_path, timeout=300
        )

    return call
