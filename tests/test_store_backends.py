"""The store on both back-ends, SQLite and PostgreSQL (a throw-away cluster, tests/postgres.py):
the run history and the registry round-trip, every schema version migrates to the fresh schema,
a newer store is refused untouched, concurrent writers neither lose nor duplicate a version nor
half-move an alias, and a bad store URL is one line before anything is fitted."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from flywheel.errors import StoreError
from flywheel.pipeline import run
from flywheel.registry import SCHEMA_VERSION, open_store
from helpers import FLYWHEEL, IRIS_PROJECT, write_project


def _schema(url: str) -> dict[str, object]:
    engine = create_engine(url)
    try:
        found = inspect(engine)
        return {
            t: (
                sorted((c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(t)),
                sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in found.get_indexes(t)
                ),
                sorted(tuple(k["constrained_columns"]) for k in found.get_foreign_keys(t)),
            )
            for t in found.get_table_names()
            if t != "alembic_version"
        }
    finally:
        engine.dispose()


def _second(store_url: str, tmp_path: Path, postgres: object | None) -> str:
    if store_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'second.db'}"
    return str(postgres.database())  # type: ignore[union-attr]


def test_runs_and_registry_round_trip(store_url: str, iris_project: Path) -> None:
    store = open_store(store_url)
    try:
        result = run(iris_project, store=store, report=False)
        [row] = store.list_runs()
        assert row["id"] == result.run_id and row["best_model"] == result.ranking.best
        stored = store.get_run(result.run_id)
        assert stored is not None and stored["ranking"] == result.to_dict()["ranking"]
        assert [v["version"] for v in store.objective_log("iris-test")] == [result.objective.version]
        when = datetime.now(UTC)
        store.record_phase("iris-test", when, "training", "data", "drift")
        assert [(e["from"], e["to"]) for e in store.phase_events("iris-test")] == [("training", "data")]
        entry = store.register_model("iris-test", "m", 1, Path("/tmp/m.pkl"), "d", "s", "o", "r", when)
        store.set_alias("iris-test", "champion", entry["id"], when, note="first")
        champion = store.get_alias("iris-test", "champion")
        assert champion is not None and champion["version"] == 1 and champion["note"] == "first"
        assert store.list_models("iris-test")[0]["aliases"] == ["champion"]
    finally:
        store.close()


def test_every_schema_version_migrates_to_the_fresh_schema(
    store_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from alembic import command
    from alembic.config import Config

    postgres = None if store_url.startswith("sqlite") else request.getfixturevalue("postgres")
    fresh = _second(store_url, tmp_path, postgres)
    open_store(fresh).close()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", "flywheel.registry:migrations")
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")  # the schema of the first flywheel
    engine.dispose()
    store = open_store(store_url)
    assert store.schema_version() == SCHEMA_VERSION
    store.close()
    assert _schema(store_url) == _schema(fresh)


def test_a_newer_store_is_refused_and_left_alone(store_url: str) -> None:
    open_store(store_url).close()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE meta SET value = :v WHERE key = 'schema_version'"), {"v": str(SCHEMA_VERSION + 1)}
        )
    with pytest.raises(StoreError, match=f"newer flywheel \\(store schema v{SCHEMA_VERSION + 1}\\)"):
        open_store(store_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM meta")).scalar() == str(SCHEMA_VERSION + 1)
        assert (
            conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == f"{SCHEMA_VERSION:04d}"
        )
    engine.dispose()


def test_concurrent_writers_get_distinct_versions_and_a_whole_alias(store_url: str, tmp_path: Path) -> None:
    open_store(store_url).close()
    writers, barrier = 6, threading.Barrier(6)
    saved: list[dict[str, object]] = []
    failures: list[BaseException] = []

    def writer(i: int) -> None:
        store = open_store(store_url)
        try:
            barrier.wait()
            for _ in range(3):

                def write(version: int) -> tuple[Path, str]:
                    path = tmp_path / f"w{i}" / f"v{version}.pkl"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(f"{i}:{version}".encode())
                    return path, f"{i}"

                entry = store.register_next(
                    "p",
                    "m",
                    write,
                    data_fingerprint="d",
                    split_fingerprint="s",
                    objective_version="o",
                    run_id=f"r{i}",
                    when=datetime.now(UTC),
                )
                saved.append(entry)
                store.set_alias("p", "champion", int(entry["id"]), datetime.now(UTC), note=f"writer {i}")  # type: ignore[call-overload]
        except BaseException as exc:
            failures.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == []
    versions = sorted(int(e["version"]) for e in saved)  # type: ignore[call-overload]
    assert versions == list(range(1, 3 * writers + 1))  # none lost, none twice
    for e in saved:  # each registered row names the file its own writer wrote under that number
        assert Path(str(e["path"])).read_bytes() == f"{e['sha256']}:{e['version']}".encode()
    store = open_store(store_url)
    try:
        champion = store.get_alias("p", "champion")
        assert champion is not None
        assert (
            champion["note"] == f"writer {champion['sha256']}"
        )  # the alias moved whole: its model and note agree
        assert sum(m["aliases"] == ["champion"] for m in store.list_models("p")) == 1
    finally:
        store.close()


def test_a_bad_store_url_is_one_line_naming_it(tmp_path: Path) -> None:
    closed = "postgresql+psycopg://ana:s3cret@127.0.0.1:1/flywheel"
    with pytest.raises(StoreError) as caught:
        open_store(closed)
    message = str(caught.value)
    assert "\n" not in message and "s3cret" not in message and "ana:***@127.0.0.1:1/flywheel" in message
    with pytest.raises(
        StoreError, match="the 'mysql\\+pymysql' database is not supported; use sqlite:///PATH or postgresql"
    ):
        open_store("mysql+pymysql://u:p@localhost/db")
    with pytest.raises(StoreError, match="not a database URL"):
        open_store("::not a url::/x://")


def test_the_cli_runs_on_postgresql_and_a_dead_database_costs_one_line(
    postgres: object, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "iris", IRIS_PROJECT)
    url = postgres.database()  # type: ignore[attr-defined]
    env = {**os.environ, "FLYWHEEL_STORE": url}
    done = subprocess.run(
        [str(FLYWHEEL), "run", str(project)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode in (0, 1, 3), done.stderr
    assert not (project.parent / ".flywheel" / "flywheel.db").exists()  # the runs went to PostgreSQL
    listed = subprocess.run(
        [str(FLYWHEEL), "runs", str(project)], capture_output=True, text=True, env=env, timeout=120
    )
    run_id = re.search(r"\brun (\d{8}-\d{6}-\w+)", done.stdout)
    assert run_id is not None and listed.returncode == 0 and run_id.group(1) in listed.stdout, listed.stdout
    dead = {**os.environ, "FLYWHEEL_STORE": "postgresql://ana:s3cret@127.0.0.1:1/flywheel"}
    failed = subprocess.run(
        [str(FLYWHEEL), "run", str(project)], capture_output=True, text=True, env=dead, timeout=120
    )
    assert failed.returncode == 2 and failed.stderr.count("\n") == 1, failed.stderr
    assert (
        "s3cret" not in failed.stderr and "127.0.0.1:1" in failed.stderr and "Traceback" not in failed.stderr
    )
    (project.parent / "flywheel.yaml").write_text(IRIS_PROJECT + "store: mysql://u@h/db\n", encoding="utf-8")
    refused = subprocess.run(
        [str(FLYWHEEL), "run", str(project)], capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2 and "sqlite:///PATH or postgresql+psycopg://" in refused.stderr, (
        refused.stderr
    )
