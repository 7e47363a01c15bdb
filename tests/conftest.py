"""Shared fixtures: small projects and data files the tests write themselves."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A throw-away PostgreSQL cluster on 127.0.0.1 (see ``tests/postgres.py``) for the whole session.

    Missing server binaries skip the PostgreSQL tests on a laptop and fail them in CI, where
    `make test` installs them.
    """
    from postgres import Cluster, server_binaries

    binaries = server_binaries()
    if binaries is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; `make test` installs it (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (make test installs it where apt-get is available)")
    cluster = Cluster(binaries)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store location on each back-end: a SQLite file, and a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres").database())


@pytest.fixture(params=["sqlite", "postgresql"])
def log_at(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A fresh, empty prediction log on each back-end: a SQLite file, and a PostgreSQL database's
    tables (as :func:`flywheel.registry.log_location` gives them for a PostgreSQL store)."""
    from flywheel.prediction_log import LOG_NAME, PostgresLog

    if request.param == "sqlite":
        return tmp_path / LOG_NAME
    url = str(request.getfixturevalue("postgres").database())
    return PostgresLog(url.replace("postgresql+psycopg://", "postgresql://", 1), url)
