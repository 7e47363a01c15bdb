"""The prediction log on both back-ends: a SQLite file, and the tables of the project's PostgreSQL
store (a throw-away cluster, tests/postgres.py). What is written reads back the same through every
reader; retention keeps the newest rows; rows read after the last one read, while several writers
commit, add up to the whole log once; a writer whose connection broke connects again; the loop's
summary and `promote --on traffic` read either log; and a database that cannot be reached is one
line naming it (password masked) and exit 2."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from flywheel.prediction_log import (
    LogUnreachable,
    PostgresLog,
    PredictionLog,
    PredictionRecord,
    ShadowRecord,
    connect,
    new_ids,
    read_feedback,
    read_labels,
    read_outcomes,
    read_predictions,
    read_shadow,
)
from flywheel.project import load_project
from flywheel.registry import log_location
from helpers import FLYWHEEL, IRIS_PROJECT, write_project


def _record(i: int, at: float) -> PredictionRecord:
    return PredictionRecord(f"p{i:04d}", at, "m", 1, {"x": float(i), "c": "ü%?"}, "a", {"a": 0.75}, 1.25)


def _durable(log: PredictionLog, records: list[Any]) -> None:
    """Submit and wait for the commit (as a durable request does)."""
    done = threading.Event()
    errors: list[BaseException | None] = []

    def ack(error: BaseException | None) -> None:
        errors.append(error)
        done.set()

    log.submit(records, ack)
    assert done.wait(30) and errors == [None]


def test_what_is_written_reads_back_through_every_reader(log_at: Any) -> None:
    log = PredictionLog(log_at)
    try:
        base = time.time()
        _durable(log, [_record(i, base + i) for i in range(20)])
        _durable(
            log,
            [
                ShadowRecord("p0003", "shadow", 2, "b", {"b": 0.5}, 3.5),
                ShadowRecord("p0001", "shadow", 2, 1.5, None, 2.0),
            ],
        )
        _durable(log, [_record(3, base)])  # the same id again: kept once, the first one stays
        log.add_feedback("p0001", "a", "ann")
        log.add_feedback("p0002", "a", "ann")
        log.add_feedback("p0002", "b", "bob")  # a conflict
        log.add_outcome("p0002", "refund", True)
        _durable(log, [_record(99, base + 99)])  # everything before it is committed too
        assert log.prediction("p0003") == read_predictions(log_at, ids=["p0003"])[0]
        assert [f["label"] for f in log.labels("p0002")] == ["a", "b"]
        assert log.prediction("nope") is None
    finally:
        log.close()
    assert log.logged == 22 and log.feedback == 3 and log.dropped == 0
    rows = read_predictions(log_at)
    assert [r["id"] for r in rows] == [f"p{i:04d}" for i in range(20)] + ["p0099"]
    assert rows[3] == {
        "id": "p0003",
        "at": base + 3,
        "model": "m",
        "version": 1,
        "input": {"x": 3.0, "c": "ü%?"},
        "prediction": "a",
        "probabilities": {"a": 0.75},
        "latency_ms": 1.25,
    }
    assert [r["id"] for r in read_predictions(log_at, since=base + 17)] == ["p0018", "p0019", "p0099"]
    assert [r["id"] for r in read_predictions(log_at, ids=["p0019", "p0001", "ghost"])] == ["p0001", "p0019"]
    assert [(f["prediction_id"], f["label"], f["source"]) for f in read_feedback(log_at)] == [
        ("p0001", "a", "ann"),
        ("p0002", "a", "ann"),
        ("p0002", "b", "bob"),
    ]
    labels = read_labels(log_at)
    assert [(x["prediction_id"], x["label"], x["conflict"]) for x in labels] == [
        ("p0001", "a", False),
        ("p0002", "b", True),
    ]
    assert [x["prediction_id"] for x in read_labels(log_at, conflicts_only=True)] == ["p0002"]
    shadow = read_shadow(log_at)
    assert [(s["prediction_id"], s["prediction"], s["probabilities"]) for s in shadow] == [
        ("p0003", "b", {"b": 0.5}),
        ("p0001", 1.5, None),
    ]
    assert read_shadow(log_at, ids=["p0001"]) == shadow[1:]
    [outcome] = read_outcomes(log_at, ids=["p0002"])
    assert outcome["name"] == "refund" and outcome["value"] == 1.0
    assert read_outcomes(log_at, ids=["p0001"]) == []


def test_new_ids_grow_with_time_and_stay_unique_and_unguessable() -> None:
    """The log's key appends at the index's right edge (time first), with 80 random bits after it."""
    first = new_ids(1000)
    time.sleep(0.002)
    later = new_ids(3)
    assert all(len(i) == 32 and int(i, 16) >= 0 and i == i.lower() for i in first + later)
    assert len(set(first + later)) == 1003
    assert max(first) < min(later)  # a later millisecond sorts after
    assert len({i[12:] for i in first}) == 1000  # the random part differs within one batch


def test_retention_keeps_the_newest_rows_and_their_shadow_answers(log_at: Any) -> None:
    log = PredictionLog(log_at, retention_rows=100)
    try:
        _durable(log, [ShadowRecord(f"p{i:04d}", "s", 1, "a", None, 1.0) for i in (5, 5950)])
        for start in range(0, 6000, 500):
            at = time.time()
            _durable(log, [_record(i, at) for i in range(start, start + 500)])
    finally:
        log.close()  # retention runs last, too
    conn = connect(log_at)
    try:
        ids = [r[0] for r in conn.execute("SELECT id FROM predictions ORDER BY rowid")]
    finally:
        conn.close()
    assert len(ids) == 100 and ids[0] == "p5900" and ids[-1] == "p5999"
    assert [s["prediction_id"] for s in read_shadow(log_at)] == ["p5950"]


def test_reading_after_the_last_row_read_while_two_writers_commit_reads_each_row_once(log_at: Any) -> None:
    """Two logs (as two service workers: on PostgreSQL each has its own writer) write at once while
    a reader takes the rows after the last row number it read, as the monitor does: together its
    reads are the whole log, each row once."""
    logs = [PredictionLog(log_at, batch=50) for _ in range(2)]
    seen: list[str] = []
    last = 0

    def write(k: int) -> None:
        for start in range(0, 1500, 30):
            at = time.time()
            _durable(logs[k], [_record(k * 10_000 + i, at) for i in range(start, start + 30)])

    def read_new(conn: Any) -> None:
        nonlocal last
        rows = conn.execute(
            "SELECT rowid, id FROM predictions WHERE rowid > ? ORDER BY rowid", (last,)
        ).fetchall()
        if rows:
            last = int(rows[-1][0])
            seen.extend(r[1] for r in rows)

    conn = connect(log_at)
    try:
        writers = [threading.Thread(target=write, args=(k,)) for k in range(2)]
        for t in writers:
            t.start()
        while any(t.is_alive() for t in writers):
            read_new(conn)
        for t in writers:
            t.join()
        read_new(conn)
    finally:
        conn.close()
        for log in logs:
            log.close()
    whole = [r["id"] for r in read_predictions(log_at)]
    assert len(whole) == 3000 and sorted(seen) == sorted(whole)


def test_a_postgresql_store_keeps_the_log_in_its_database(postgres: Any, tmp_path: Path) -> None:
    url = postgres.database()
    path = write_project(tmp_path / "iris", IRIS_PROJECT + f"store: {url}\n")
    where = log_location(load_project(path))
    assert isinstance(where, PostgresLog) and where.shown == url
    assert where.url.startswith("postgresql://") and "psycopg" not in where.url
    plain = write_project(tmp_path / "plain", IRIS_PROJECT)
    assert log_location(load_project(plain)) == plain.parent / ".flywheel" / "predictions.db"


def test_an_unreachable_log_database_is_one_line_with_the_password_masked(tmp_path: Path) -> None:
    import subprocess

    dead = "postgresql+psycopg://ana:s3cret@127.0.0.1:1/flywheel"
    where = PostgresLog(dead.replace("+psycopg", ""), "postgresql+psycopg://ana:***@127.0.0.1:1/flywheel")
    with pytest.raises(
        LogUnreachable, match=r"prediction log postgresql\+psycopg://ana:\*\*\*@127\.0\.0\.1:1/"
    ):
        read_predictions(where)
    path = write_project(tmp_path / "iris", IRIS_PROJECT)
    done = subprocess.run(
        [str(FLYWHEEL), "queue", "list", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "FLYWHEEL_STORE": dead},
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "ana:***@127.0.0.1:1/flywheel" in lines[0] and "s3cret" not in done.stderr
    assert "cannot be reached" in lines[0]


def test_a_writer_whose_database_connection_broke_connects_again(postgres: Any) -> None:
    """A restarted server or a dropped network closes the writer's connection: the batch at hand is
    retried on a new one, and acknowledged once committed."""
    url = postgres.database()
    where = PostgresLog(url.replace("postgresql+psycopg://", "postgresql://", 1), url)
    log = PredictionLog(where)
    try:
        _durable(log, [_record(1, time.time())])
        admin = connect(where)
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            admin.close()
        _durable(log, [_record(2, time.time())])
    finally:
        log.close()
    assert [r["id"] for r in read_predictions(where)] == ["p0001", "p0002"] and log.dropped == 0


def test_the_loop_summary_counts_the_same_on_both_backends(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report's flywheel section (labels gained by day and origin, the queue) from either log."""
    from flywheel.loop import label_item, list_queue
    from flywheel.loop._queue import QueueItem, _enqueue
    from flywheel.registry import flywheel_summary

    monkeypatch.setenv("FLYWHEEL_STORE", store_url)
    project = load_project(write_project(tmp_path / "iris", IRIS_PROJECT))
    assert flywheel_summary(project) is None  # never served
    day = 86_400.0
    first = (time.time() // day - 1) * day + 5
    log = PredictionLog(log_location(project))
    try:
        _durable(log, [_record(i, first) for i in range(4)])
        log.add_feedback("p0000", "a", "ann")
        log.add_feedback("p0000", "b", "bob")  # history: not a second label gained
        _durable(log, [_record(9, first + day)])
    finally:
        log.close()
    _enqueue(project, [QueueItem("i1", "p0001", {"x": 1.0}, "a", ["low-margin"], 1.0, "m", 1, first)])
    label_item(project, "i1", "a", "ann", None)
    summary = flywheel_summary(project)
    assert summary is not None and summary["predictions"] == 5 and summary["labels"] == 2
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert [(t["day"], t["origin"], t["labels"]) for t in summary["timeline"]] == [
        (today, "review", 1),
        (today, "traffic", 1),
    ]
    assert summary["queue"] == {"labelled": 1}
    [conflict] = list_queue(project)  # the two labels of p0000 disagree: surfaced for review
    assert conflict.prediction_id == "p0000" and conflict.reasons[0].startswith("conflict")


def test_a_shadow_better_on_traffic_is_promoted_from_either_log(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``promote --on traffic`` reads the champion's answers, the shadow's and the traffic labels
    from the log wherever it is, and moves the champion alias in the store."""
    from sklearn.datasets import load_iris

    from flywheel.monitoring import promote_on_traffic
    from flywheel.pipeline import promote, run
    from flywheel.registry import project_store
    from helpers import IRIS_TWO_MODELS

    monkeypatch.setenv("FLYWHEEL_STORE", store_url)
    path = write_project(tmp_path / "iris", IRIS_TWO_MODELS.format(name="iris-traffic"))
    run(path, report=False)
    promote("logreg", path, force=True)
    project = load_project(path)
    data = load_iris(as_frame=True)
    names = list(data.target_names)
    rows = data.frame.drop(columns=["target"]).to_dict(orient="records")
    log = PredictionLog(log_location(project))
    try:
        records: list[Any] = []
        for i, (row, target) in enumerate(zip(rows, data.target, strict=True)):
            truth = names[target]
            wrong = names[(target + 1) % 3] if i % 3 == 0 else truth  # the champion errs on a third
            records.append(PredictionRecord(f"t{i:03d}", time.time(), "logreg", 1, row, wrong, None, 1.0))
            records.append(ShadowRecord(f"t{i:03d}", "tree", 1, truth, None, 1.0))
        _durable(log, records)
        for i, target in enumerate(data.target):
            log.add_feedback(f"t{i:03d}", names[target], "ops")
        _durable(log, [_record(0, time.time())])
    finally:
        log.close()
    verdict, model = promote_on_traffic(project, "tree")
    assert verdict.status == "pass" and model["name"] == "tree"
    store = project_store(project)
    try:
        champion = store.get_alias(project.project, "champion")
    finally:
        store.close()
    assert champion is not None and champion["name"] == "tree"


def test_the_sqlite_wal_stays_bounded_under_sustained_writes_and_a_reader_only_postpones_it(
    tmp_path: Path,
) -> None:
    """With no checkpoint thread at all (the worst case: it never catches up), the writer truncates
    the WAL itself once it passes its limit; a reader on an old snapshot makes it wait, not fail,
    and no row is lost either way."""
    from flywheel.prediction_log._writer import _Writer

    path = tmp_path / "predictions.db"
    writer = _Writer(path, 64, None, None)
    writer.wal_limit = 64 << 10
    wal = Path(f"{path}-wal")

    def write(i: int) -> None:  # as the writer's loop does: commit, acknowledge, then bound
        row = ("p", (f"p{i:04d}", float(i), "m", 1, '{"x": 1.0}', '"a"', None, 1.0))
        assert writer.write([[row]]) == ""
        writer.bound_wal()

    sizes = []
    for i in range(300):
        write(i)
        sizes.append(wal.stat().st_size)
    assert sizes.count(0) >= 3 and max(sizes) <= writer.wal_limit + (32 << 10)

    reader = connect(path)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM predictions").fetchone()[0] == 300
        for i in range(300, 400):
            write(i)  # the truncate is postponed, the writes are not
        assert wal.stat().st_size > 2 * writer.wal_limit
    finally:
        reader.execute("COMMIT")
        reader.close()
    writer.wal_retry_at = 0.0  # as if the second it waits had passed
    write(400)
    assert wal.stat().st_size == 0
    writer.conn.close()
    assert len(read_predictions(path)) == 401
