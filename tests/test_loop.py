"""The prediction log (bounded queue, retention) and the loop: mining, the queue, import/export."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris

from flywheel.errors import DataError
from flywheel.evaluation import Schema
from flywheel.loop import expire_items, export_queue, import_labels, list_queue, mine
from flywheel.loop._mine import _select
from flywheel.pipeline import promote, run
from flywheel.prediction_log import (
    LogFull,
    LogWriteError,
    PredictionLog,
    PredictionRecord,
    read_feedback,
)
from flywheel.project import load_project
from flywheel.registry import log_location, project_store
from helpers import IRIS_TWO_MODELS, slice_ns, write_project


def _record(i: int, row: dict | None = None) -> PredictionRecord:
    return PredictionRecord(f"p{i:06d}", time.time(), "m", 1, row or {"x": float(i)}, "a", {"a": 1.0}, 1.0)


def test_a_full_queue_refuses_instead_of_dropping(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.db", queue_size=2, batch=1)
    blocker = sqlite3.connect(tmp_path / "p.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the writer cannot commit until this ends
    acked: list[BaseException | None] = []
    try:
        log.submit(_record(0), acked.append)
        log.submit(_record(1), acked.append)
        with pytest.raises(LogFull, match="queue is full"):
            log.submit(_record(2), acked.append)
        time.sleep(0.2)
        assert log.depth == 2 and acked == []  # nothing acknowledged before it is durable
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    log.close()
    assert acked == [None, None] and log.dropped == 0 and log.depth == 0
    with pytest.raises(LogFull, match="closed"):
        log.submit(_record(4))
    conn = sqlite3.connect(tmp_path / "p.db")
    ids = {r[0] for r in conn.execute("SELECT id FROM predictions")}
    conn.close()
    assert ids == {"p000000", "p000001"} and log.logged == 2


def test_the_writer_dying_is_reported_and_replaced(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.db")
    done = threading.Event()
    log.submit(_record(0), lambda e: done.set())
    assert done.wait(10)
    writer = log._writer
    assert writer is not None
    writer.proc.kill()
    writer.proc.wait()
    errors: list[BaseException | None] = []
    for i in range(1, 50):  # the first ones may be refused or failed: they were never acknowledged
        try:
            log.submit(_record(i), errors.append)
        except LogFull as exc:
            assert "writer stopped" in str(exc)
        time.sleep(0.01)
    log.close()
    assert log._writer is not writer
    assert any(e is None for e in errors) and all(e is None or "writer stopped" in str(e) for e in errors)
    acknowledged = sum(e is None for e in errors)
    conn = sqlite3.connect(tmp_path / "p.db")
    stored = conn.execute("SELECT count(*) FROM predictions").fetchone()[0]
    conn.close()
    assert stored >= 1 + acknowledged


def test_on_an_event_loop_acks_come_on_the_loop_and_a_dead_writer_is_replaced(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[str], int]:
        loop = asyncio.get_running_loop()
        log = PredictionLog(tmp_path / "p.db", loop=loop)
        outcomes: list[str] = []

        async def one(i: int) -> None:
            fut: asyncio.Future[None] = loop.create_future()

            def ack(error: BaseException | None) -> None:
                assert threading.current_thread() is threading.main_thread()  # on the loop's thread
                fut.set_result(None) if error is None else fut.set_exception(error)

            try:
                log.submit(_record(i), ack)
                await fut
                outcomes.append("ok")
            except (LogFull, LogWriteError) as exc:
                assert "writer stopped" in str(exc)
                outcomes.append("refused")

        await asyncio.gather(*(one(i) for i in range(20)))
        writer = log._writer
        assert writer is not None
        writer.proc.kill()
        writer.proc.wait()
        for i in range(20, 60):
            await one(i)
            await asyncio.sleep(0.005)
        assert log._writer is not writer
        log.close()
        return outcomes, log.logged

    outcomes, logged = asyncio.run(scenario())
    assert outcomes[:20] == ["ok"] * 20 and outcomes[-1] == "ok" and outcomes.count("ok") >= 50
    assert logged == outcomes.count("ok")  # the counters carry over from one writer to the next
    conn = sqlite3.connect(tmp_path / "p.db")
    stored = {r[0] for r in conn.execute("SELECT id FROM predictions")}
    conn.close()
    assert len(stored) >= outcomes.count("ok")


@pytest.mark.parametrize("mode", ["durable", "fast"])
def test_submissions_made_together_are_committed_together(tmp_path: Path, mode: str) -> None:
    """What one model call answers is handed to the writer in one write: one commit, one fsync."""

    async def scenario() -> tuple[list[int], list[int], int]:
        loop = asyncio.get_running_loop()
        log = PredictionLog(tmp_path / "p.db", loop=loop, mode=mode)  # type: ignore[arg-type]
        done: list[int] = []
        futures, ack_for = _successes(loop, 8, done)

        await _acked(log, loop, 100)  # the writer is up and has committed once
        commits = log.commits
        with log.together():
            for i in range(8):
                log.submit(_record(1000 + i), ack_for(i))
            inside = list(done)  # nothing is acknowledged before the frames leave together()
        await asyncio.gather(*futures)
        while log.depth:  # fast mode: acknowledged before the commit; wait for it too
            await asyncio.sleep(0.01)
        together = log.commits - commits
        log.close()
        return inside, done, together

    inside, done, commits = asyncio.run(scenario())
    assert inside == [] and sorted(done) == list(range(8))
    assert commits == 1  # the eight in one transaction
    conn = sqlite3.connect(tmp_path / "p.db")
    assert conn.execute("SELECT count(*) FROM predictions").fetchone()[0] == 9
    conn.close()


@pytest.mark.parametrize("mode", ["durable", "fast"])
def test_frames_held_for_a_writer_that_died_are_not_sent_to_the_next(tmp_path: Path, mode: str) -> None:
    async def scenario() -> tuple[dict[str, str], int]:
        loop = asyncio.get_running_loop()
        log = PredictionLog(tmp_path / "p.db", loop=loop, mode=mode)  # type: ignore[arg-type]
        await _acked(log, loop, 1)
        told: dict[str, str] = {}
        futures: list[asyncio.Future[None]] = []

        def ack_for(name: str) -> Callable[[BaseException | None], None]:
            fut: asyncio.Future[None] = loop.create_future()
            futures.append(fut)

            def ack(error: BaseException | None) -> None:
                told[name] = "ok" if error is None else type(error).__name__
                fut.set_result(None)

            return ack

        with log.together():
            log.submit(_record(2), ack_for("before"))
            writer = log._writer
            assert writer is not None
            writer.proc.kill()
            writer.proc.wait()
            while writer.ack_fd >= 0:  # its end of output, read as the loop would
                log.poll()
            log.submit(_record(3), ack_for("after"))  # a new writer; record 2 is not sent to it
        await asyncio.gather(*futures)
        while log.depth:
            await asyncio.sleep(0.01)
        log.close()
        return told, log.logged

    told, logged = asyncio.run(scenario())
    assert told == {"before": "LogWriteError", "after": "ok"}
    conn = sqlite3.connect(tmp_path / "p.db")
    assert {r[0] for r in conn.execute("SELECT id FROM predictions")} == {"p000001", "p000003"}
    conn.close()
    assert logged == 2


@pytest.mark.parametrize("mode", ["durable", "fast"])
def test_on_an_event_loop_a_full_pipe_holds_frames_in_order(tmp_path: Path, mode: str) -> None:
    """More than the pipe takes at once waits in the log and goes out as the writer reads: nothing
    is lost, and fast mode acknowledges those records only at their commit."""

    async def scenario() -> tuple[bool, list[int], int]:
        loop = asyncio.get_running_loop()
        log = PredictionLog(tmp_path / "p.db", loop=loop, mode=mode)  # type: ignore[arg-type]
        done: list[int] = []
        futures, ack_for = _successes(loop, 300, done)

        bulky = {"text": "x" * 20_000}  # 300 of these are 6 MB: more than the pipe holds
        for i in range(300):
            log.submit(_record(i, bulky), ack_for(i))
        waited = log._out is not None and len(log._out.pending) > 0
        await asyncio.gather(*futures)
        log.close()
        return waited, done, log.logged

    waited, done, logged = asyncio.run(scenario())
    assert waited and sorted(done) == list(range(300)) and logged == 300
    conn = sqlite3.connect(tmp_path / "p.db")
    ids = [r[0] for r in conn.execute("SELECT id FROM predictions ORDER BY rowid")]
    conn.close()
    assert ids == [f"p{i:06d}" for i in range(300)]  # in the order they were submitted


def _successes(
    loop: asyncio.AbstractEventLoop, n: int, done: list[int]
) -> tuple[list[asyncio.Future[None]], Callable[[int], Callable[[BaseException | None], None]]]:
    """Futures for n submissions, and the ack for submission i: it must succeed, and says so in done."""
    futures: list[asyncio.Future[None]] = [loop.create_future() for _ in range(n)]

    def ack_for(i: int) -> Callable[[BaseException | None], None]:
        def ack(error: BaseException | None) -> None:
            assert error is None
            done.append(i)
            futures[i].set_result(None)

        return ack

    return futures, ack_for


async def _acked(log: PredictionLog, loop: asyncio.AbstractEventLoop, i: int) -> None:
    fut: asyncio.Future[None] = loop.create_future()
    log.submit(_record(i), lambda error: fut.set_result(None))
    await fut
    while log.depth:
        await asyncio.sleep(0.01)


def test_the_writer_asks_for_short_scheduler_slices(tmp_path: Path) -> None:
    """A commit is short work a request waits for (Linux 6.12+: EEVDF honours a short slice)."""
    sched = Path("/proc/thread-self/sched")
    if not sched.exists() or "se.slice" not in sched.read_text():
        pytest.skip("this kernel does not show scheduler slices")
    log = PredictionLog(tmp_path / "p.db")
    try:
        log.submit(_record(1))
        writer = log._writer
        assert writer is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and slice_ns(writer.proc.pid) != 100_000:
            time.sleep(0.05)
        assert slice_ns(writer.proc.pid) == 100_000
    finally:
        log.close()
    seen: list[tuple[bool, int | None]] = []

    def asks() -> None:  # a thread of its own: the test runner's main thread keeps its slice
        from flywheel.prediction_log import short_slice

        seen.append((short_slice(250_000), slice_ns("thread-self")))

    t = threading.Thread(target=asks)
    t.start()
    t.join()
    assert seen == [(True, 250_000)]


def test_retention_keeps_the_newest_rows(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.db", retention_rows=100)
    done = threading.Event()
    for i in range(6000):
        log.submit(_record(i), (lambda e: done.set()) if i == 5999 else None)
    assert done.wait(30)
    log.close()
    conn = sqlite3.connect(tmp_path / "p.db")
    ids = [r[0] for r in conn.execute("SELECT id FROM predictions ORDER BY rowid")]
    conn.close()
    assert len(ids) == 100 and ids[-1] == "p005999" and ids[0] == "p005900"


def test_selection_folds_duplicates_and_keeps_classes_diverse() -> None:
    frame = pd.DataFrame({"x": [1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "y": [0.0] * 8})
    labels = np.array(["a", "a", "a", "a", "a", "a", "b", "c"])
    score = np.array([9, 8.9, 8.8, 7, 6, 5, 1, 0.5])
    reasons = [["low-margin"]] * 8
    schema = Schema({"x": "numeric", "y": "numeric"}, "multiclass", ["a", "b", "c"], "t")
    chosen = _select(frame, labels, score, reasons, 3, None, schema)
    assert chosen == [0, 6, 7]  # one "a" (its twins are duplicates), then the quota lets b and c in
    assert _select(frame, labels, score, [[]] * 8, 3, None, schema) == []  # nothing hard: nothing mined


IRIS = IRIS_TWO_MODELS.format(name="iris-loop")


@pytest.fixture
def iris(tmp_path: Path) -> Path:
    path = write_project(tmp_path / "iris", IRIS)
    run(path, report=False)
    promote("logreg", path, force=True)
    return path


@pytest.fixture
def iris_on(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The served iris project with its store (and so its log) on each back-end."""
    monkeypatch.setenv("FLYWHEEL_STORE", store_url)
    path = write_project(tmp_path / "iris", IRIS)
    run(path, report=False)
    promote("logreg", path, force=True)
    return path


def _log_rows(path: Path, frame: pd.DataFrame, labels: list[str] | None = None) -> list[str]:
    log = PredictionLog(log_location(load_project(path)))
    ids = []
    for i, row in enumerate(frame.to_dict(orient="records")):
        rec = PredictionRecord(f"q{i:04d}", time.time(), "logreg", 1, row, "setosa", None, 1.0)
        log.submit(rec)
        ids.append(rec.id)
        if labels is not None:
            log.add_feedback(rec.id, labels[i], "ops")
    log.close()
    return ids


def test_mine_export_import_and_expire(iris_on: Path, tmp_path: Path) -> None:
    iris = iris_on
    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns=["target"])
    # Rows between the classes: mixtures of a versicolor and a virginica row are hard for the model.
    mixed = (frame.iloc[50:100].to_numpy() + frame.iloc[100:150].to_numpy()) / 2
    rows = pd.DataFrame(mixed, columns=frame.columns)
    _log_rows(iris, rows)
    project = load_project(iris)
    items = mine(project, 10)
    assert 0 < len(items) <= 10
    assert all(i.reasons and i.model == "logreg" and i.version == 1 for i in items)
    assert {r.split(" ")[0] for i in items for r in i.reasons} <= {
        "low-margin",
        "high-entropy",
        "disagreement",
        "weak-class",
        "weak-segment",
        "label-error",
    }
    assert len({tuple(i.input.values()) for i in items}) == len(items)  # no duplicates
    assert mine(project, 10) == [] or all(
        i.prediction_id not in {x.prediction_id for x in items} for i in mine(project, 10)
    )
    out = tmp_path / "queue.csv"
    assert export_queue(project, out) == len(list_queue(project))
    sheet = pd.read_csv(out)
    assert {"item_id", "label", "reasons", "model_prediction", "sepal length (cm)"} <= set(sheet.columns)
    sheet["label"] = ["virginica"] * len(sheet)
    sheet.loc[0, "label"] = "tulip"  # not a class: reported, the rest still taken
    sheet.loc[1, "label"] = None  # not labelled yet: skipped
    sheet.to_csv(out, index=False)
    taken, problems = import_labels(project, out, ["setosa", "versicolor", "virginica"])
    assert taken == len(sheet) - 2 and len(problems) == 1 and "tulip" in problems[0]
    review = [f for f in read_feedback(log_location(project)) if f["origin"] == "review"]
    assert len(review) == taken
    with pytest.raises(DataError, match="lacks column 'label'"):
        pd.DataFrame({"item_id": ["x"]}).to_csv(tmp_path / "bad.csv", index=False)
        import_labels(project, tmp_path / "bad.csv", None)
    with pytest.raises(DataError, match=r"\.csv or \.jsonl"):
        export_queue(project, tmp_path / "queue.xlsx")
    with pytest.raises(DataError, match=r"the folder .* does not exist; allowed: a file in an existing"):
        export_queue(project, tmp_path / "nowhere" / "queue.csv")
    (tmp_path / "taken.csv").mkdir()
    with pytest.raises(DataError, match="is a folder"):
        export_queue(project, tmp_path / "taken.csv")
    # The champion moves: open items it nominated expire.
    store = project_store(project)
    try:
        tree = store.latest_model(project.project, "tree")
        assert tree is not None
        store.set_alias(project.project, "champion", tree["id"], datetime.now(UTC), forced=True)
    finally:
        store.close()
    assert expire_items(project, ("tree", tree["version"])) == len(list_queue(project, "expired"))
    assert list_queue(project) == []


def test_feedback_that_looks_wrong_is_sent_back_for_review(iris: Path) -> None:
    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns=["target"])
    truth = [data.target_names[t] for t in data.target]
    labels = list(truth)
    for i in (0, 1, 2, 3, 60, 61):  # confident rows given the wrong label
        labels[i] = "virginica"
    _log_rows(iris, frame, labels)
    items = mine(load_project(iris), 20)
    flagged = {i.prediction_id for i in items if i.reasons[0].startswith("label-error")}
    assert {"q0000", "q0001", "q0002", "q0003"} & flagged


def test_bad_loop_input_is_one_line_and_exit_2(iris: Path, tmp_path: Path, cli: Callable[..., Any]) -> None:
    pool = tmp_path / "pool.csv"
    pd.DataFrame({"sepal length (cm)": [5.0]}).to_csv(pool, index=False)
    no_label = tmp_path / "labels.csv"
    pd.DataFrame({"item_id": ["x"]}).to_csv(no_label, index=False)
    empty = write_project(tmp_path / "fresh", IRIS)
    cases = [
        (["mine", str(iris), "--pool", str(pool)], "lacks feature column 'sepal width (cm)'"),
        (["queue", "import", str(no_label), str(iris)], "lacks column 'label'"),
        (["queue", "export", str(tmp_path / "q.xlsx"), str(iris)], ".csv or .jsonl"),
        (["card", str(iris), "--model", "nope"], "no model 'nope'"),
        (["serve", str(iris), "--ack", "sometimes"], "--ack must be durable or fast"),
        (["retrain", str(empty)], "no store yet"),
    ]
    for args, message in cases:
        r = cli(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and message in r.stderr, (args, r.stderr)


def test_readiness_and_the_phase_count_what_the_log_holds(iris: Path) -> None:
    """Not "predictions logged 0" in a report that shows the logged predictions and their labels."""
    from flywheel.scoping import gather

    data = load_iris(as_frame=True)
    _log_rows(iris, data.frame.drop(columns=["target"]).head(12), labels=["setosa"] * 12)
    result = run(iris, report=False)
    assert (
        result.flywheel is not None
        and result.flywheel["predictions"] == 12
        and result.flywheel["labels"] == 12
    )
    assert result.assessment is not None
    monitoring = {r["item"]: r for r in result.assessment.readiness["sections"]["monitoring"]["items"]}
    assert monitoring["predictions logged"]["source"] == "measured"
    assert monitoring["feedback labels collected"]["source"] == "measured"
    gathered = gather(load_project(iris))
    assert gathered.artifacts["predictions_logged"] == 12 and gathered.artifacts["feedback"] == 12


def test_retraining_leaves_out_inputs_absurdly_far_outside_the_data(iris: Path) -> None:
    """A service answers for 1e308 and logs it; once labelled, it must not break every retrain."""
    from flywheel.data import load_dataset
    from flywheel.loop._retrain import _drop_absurd

    project = load_project(iris)
    ds = load_dataset(project.data, project.root)
    added = ds.X.iloc[:5].copy()
    column = ds.columns.numeric[0]
    added.loc[added.index[1], column] = 1e308
    added.loc[added.index[2], column] = float(ds.X[column].max()) + 5.0  # outside, but a plausible value
    kept, notes = _drop_absurd(added, ds)
    assert list(kept.index) == [added.index[i] for i in (0, 2, 3, 4)]
    assert notes == ["1 labelled rows have inputs far outside the data's range and were not trained on"]
    same, none = _drop_absurd(ds.X.iloc[:5], ds)
    assert none == [] and same.equals(ds.X.iloc[:5])
