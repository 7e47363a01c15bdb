"""The store: round trip, schema versioning, refusing stores it cannot read."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from flywheel.errors import StoreError
from flywheel.pipeline import run
from flywheel.registry import SCHEMA_VERSION, EvaluationRow, RunRow, ScoreRow, open_store


def test_fresh_store_is_wal_and_versioned(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    assert s.schema_version() == SCHEMA_VERSION
    s.close()
    con = sqlite3.connect(tmp_path / "flywheel.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_run_round_trip(iris_project: Path, tmp_path: Path) -> None:
    s = open_store(tmp_path / "store")
    result = run(iris_project, store=s, report=False)
    assert s.count(RunRow) == 1
    assert s.count(EvaluationRow) == len(result.evaluations)
    assert s.count(ScoreRow) > 0
    with s.session() as session:
        from sqlalchemy import select

        row = session.scalars(
            select(ScoreRow).where(ScoreRow.metric == "accuracy", ScoreRow.split == "test")
        ).first()
        assert row is not None and row.lower is not None and row.lower <= row.value <= row.upper
    [row] = s.list_runs()
    assert row["id"] == result.run_id
    assert row["data_fingerprint"] == result.data["fingerprint"]
    assert row["best_model"] == result.ranking.best
    stored = s.get_run(result.run_id)
    assert stored is not None
    assert stored["ranking"] == result.to_dict()["ranking"]
    assert s.get_run("nope") is None
    s.close()


def test_newer_store_is_refused_and_left_alone(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    db = tmp_path / "flywheel.db"
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    before = db.read_bytes()
    with pytest.raises(StoreError, match=f"newer flywheel \\(store schema v{SCHEMA_VERSION + 1}\\)"):
        open_store(tmp_path)
    con = sqlite3.connect(db)
    assert con.execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION + 1)
    con.close()
    assert len(db.read_bytes()) == len(before)


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "flywheel.db")
    con.execute("CREATE TABLE other (x INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="is not a flywheel store"):
        open_store(tmp_path)


def test_not_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "flywheel.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot be opened as a flywheel store"):
        open_store(tmp_path)


def test_a_race_that_registered_a_version_twice_is_refused_unchanged(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    con = sqlite3.connect(tmp_path / "flywheel.db")
    con.execute("DROP INDEX ux_models_version")
    for _ in range(2):
        con.execute(
            "INSERT INTO models(project, name, version, path, data_fingerprint, split_fingerprint, "
            "objective_version, run_id, created_at) "
            "VALUES ('p', 'm', 1, 'x', 'd', 's', 'o', 'r', '2026-01-01')"
        )
    con.execute("UPDATE meta SET value='5' WHERE key='schema_version'")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="version 1 of p/m is registered twice"):
        open_store(tmp_path)
    con = sqlite3.connect(tmp_path / "flywheel.db")
    assert con.execute("SELECT value FROM meta").fetchone()[0] == "5"  # rolled back whole
    assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0006"
    con.close()


def test_missing_store_is_not_created_for_reading(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no flywheel store here yet"):
        open_store(tmp_path / "flywheel.db", create=False)
    assert not (tmp_path / "flywheel.db").exists()


def test_objective_history_records_each_formula_once(tmp_path: Path) -> None:
    from helpers import IRIS_PROJECT, write_project

    path = write_project(tmp_path / "p", IRIS_PROJECT)
    store = open_store(tmp_path / "store")
    first = run(path, store=store, report=False)
    run(path, store=store, report=False)
    assert [v["version"] for v in store.objective_log("iris-test")] == [first.objective.version]
    path.write_text(IRIS_PROJECT.replace("target: 0.9", "target: 0.95\n  reason: the client asked for 95%"))
    third = run(path, store=store, report=False)
    log = store.objective_log("iris-test")
    assert [v["version"] for v in log] == [first.objective.version, third.objective.version]
    assert log[1]["reason"] == "the client asked for 95%" and log[1]["formula"]["target"] == 0.95
    assert [v["runs"] for v in log] == [2, 1]
    assert any("the objective changed since the last run" in n for n in third.notes)
    # The reason is not part of the formula: changing only the reason is not a new version.
    path.write_text(IRIS_PROJECT.replace("target: 0.9", "target: 0.95\n  reason: reworded"))
    run(path, store=store, report=False)
    assert len(store.objective_log("iris-test")) == 2
    store.close()


def test_a_version_1_store_is_migrated_to_the_current_schema(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    con = sqlite3.connect(tmp_path / "flywheel.db")
    for table in ("aliases", "models", "objective_versions", "phase_events"):  # what versions 2-5 added
        con.execute(f"DROP TABLE {table}")
    con.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    con.commit()
    con.close()
    s = open_store(tmp_path)
    assert s.schema_version() == SCHEMA_VERSION == 6
    assert s.objective_log("anything") == [] and s.list_models("anything") == []
    assert s.phase_events("anything") == []
    s.close()
