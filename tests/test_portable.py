"""Portable projects: artifact paths relative to the store, and artifacts checked by hash before use."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flywheel.errors import ModelError
from flywheel.pipeline import promote, run
from flywheel.project import load_project
from flywheel.registry import DB_NAME, SCHEMA_VERSION, load_alias, open_store
from helpers import IRIS_TWO_MODELS, write_project

Cli = Callable[..., subprocess.CompletedProcess[str]]

PROJECT = IRIS_TWO_MODELS.format(name="portable")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project that has run once, with logreg as champion."""
    path = write_project(tmp_path / "original", PROJECT)
    run(path, report=False, diagnose=False)
    promote("logreg", path, force=True)
    return path


def _one_error_line(proc: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and all(e in lines[0] for e in expected), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def _stored_paths(store_dir: Path) -> list[str]:
    with sqlite3.connect(store_dir / DB_NAME) as conn:
        return [row[0] for row in conn.execute("SELECT path FROM models")]


def test_a_copied_project_uses_its_own_models(project: Path, tmp_path: Path, cli: Cli) -> None:
    original = project.parent
    stored = _stored_paths(original / ".flywheel")
    assert stored and all(not Path(p).is_absolute() and p.startswith("models/") for p in stored)
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(original, copy)
    shutil.rmtree(original)
    listed = json.loads(cli("models", str(copy), "--json").stdout)
    assert listed and all(Path(m["path"]).is_relative_to(copy) and Path(m["path"]).is_file() for m in listed)
    assert all(len(m["sha256"]) == 64 for m in listed)
    gated = cli("gate", str(copy), "--candidate", "tree", "--json")
    assert gated.returncode in (0, 1), gated.stderr
    assert cli("promote", "tree", str(copy), "--force").returncode == 0
    champion = load_alias(load_project(copy / "flywheel.yaml"))
    assert champion.name == "tree" and hasattr(champion.model, "predict")


def test_old_absolute_paths_read_the_local_copy(project: Path, tmp_path: Path) -> None:
    """A store from before paths were relative, copied: the copy's files are used, never the original's."""
    original = project.parent
    with sqlite3.connect(original / ".flywheel" / DB_NAME) as conn:
        conn.execute("UPDATE models SET path = ? || '/.flywheel/' || path", (str(original),))
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)  # the original stays: its absolute paths still exist
    store = open_store(copy / ".flywheel")
    try:
        models = store.list_models("portable")
        champion = store.get_alias("portable", "champion")
    finally:
        store.close()
    assert models and all(Path(m["path"]).is_relative_to(copy.resolve()) for m in models)
    assert champion is not None and Path(champion["path"]).is_file()
    # A path with no local counterpart is left as it was recorded.
    store = open_store(tmp_path / "other")
    try:
        entry = store.register_model(
            "p", "m", 1, tmp_path / "nowhere" / "m.pkl", "d", "s", "o", "r", datetime.now(UTC)
        )
    finally:
        store.close()
    assert entry["path"] == str(tmp_path / "nowhere" / "m.pkl") and entry["sha256"] is None


def test_a_store_of_the_previous_schema_gains_the_hash_column(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.close()
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        conn.execute("ALTER TABLE models DROP COLUMN sha256")
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")  # before hashes
    store = open_store(tmp_path)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        entry = store.register_model(
            "p", "m", 1, tmp_path / "models/m/v1.pkl", "d", "s", "o", "r", datetime.now(UTC), sha256="ab"
        )
    finally:
        store.close()
    assert entry["sha256"] == "ab" and entry["path"] == str(tmp_path.resolve() / "models" / "m" / "v1.pkl")
    assert _stored_paths(tmp_path) == ["models/m/v1.pkl"]


def test_an_altered_or_missing_artifact_is_refused(project: Path, cli: Cli) -> None:
    models = project.parent / ".flywheel" / "models"
    champion = next((models / "logreg").glob("v*.pkl"))
    saved = champion.read_bytes()
    champion.write_bytes(saved[:-1] + bytes([saved[-1] ^ 1]))  # one byte changed
    runs = len(json.loads(cli("runs", str(project), "--json").stdout))
    refused = cli("gate", str(project), "--candidate", "tree")
    _one_error_line(refused, "champion logreg v1", "altered", str(champion))
    assert len(json.loads(cli("runs", str(project), "--json").stdout)) == runs  # nothing ran or was stored
    with pytest.raises(ModelError, match=r"^champion logreg v1 .*altered"):
        load_alias(load_project(project))
    champion.write_bytes(saved)
    assert load_alias(load_project(project)).name == "logreg"
    # The candidate's artifact altered, then missing: `promote --force` refuses, the champion stays.
    tree = next((models / "tree").glob("v*.pkl"))
    tree.write_bytes(tree.read_bytes() + b"\0")
    _one_error_line(cli("promote", "tree", str(project), "--force"), "tree v1", "altered")
    tree.unlink()
    _one_error_line(cli("promote", "tree", str(project), "--force"), "tree v1", "missing", str(tree))
    assert load_alias(load_project(project)).name == "logreg"
