"""``flywheel serve --workers N``: several processes on one port, one shared log writer (on a
PostgreSQL store: a writer per worker, each group-committing into the database); nothing
acknowledged is lost or written twice when a worker, then every process of the service, is killed
with SIGKILL, on either back-end."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from flywheel.pipeline import promote, run
from flywheel.prediction_log import (
    PostgresLog,
    connect,
    read_feedback,
    shared_writer_script,
    writer_script,
)
from flywheel.project import load_project
from flywheel.registry import log_location
from helpers import write_project
from test_serve import WINE, AckedLoad, Server, _rows


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def wine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The served wine project, its store (and log) a SQLite file or a PostgreSQL database."""
    store = "" if request.param == "sqlite" else f"store: {request.getfixturevalue('postgres').database()}\n"
    path = write_project(tmp_path_factory.mktemp("workers"), WINE + store)
    run(path, report=False)
    promote("logreg", path, force=True)
    return path


def _log_of(project: Path) -> Any:
    return log_location(load_project(project))


def _worker_pids(url: str, expected: int = 2) -> set[int]:
    """The workers answering, once ``expected`` of them are up (each loads the model itself)."""
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=5) as c:
        while len(seen) < expected and time.monotonic() < deadline:
            try:  # new connections: the kernel hands them to whichever worker accepts first
                seen.add(c.get(url + "/health", headers={"connection": "close"}).json()["worker"])
            except httpx.HTTPError:
                time.sleep(0.05)
    return seen


def _logged(log: Any, ids: list[str]) -> tuple[int, int]:
    """(rows, distinct ids) among ``ids`` in the log."""
    conn = connect(log)
    try:
        conn.execute("CREATE TEMP TABLE wanted(id TEXT PRIMARY KEY)")
        conn.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", [(i,) for i in ids])
        rows, distinct = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT p.id) FROM predictions p JOIN wanted w ON w.id = p.id"
        ).fetchone()
        return int(rows), int(distinct)
    finally:
        conn.close()


def _writers(log: Any) -> list[int]:
    """Processes still running a writer on this log: the shared one of a SQLite log, each worker's
    own of a PostgreSQL log (found by the database it was given)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            env = (entry / "environ").read_bytes().split(b"\0") if isinstance(log, PostgresLog) else []
        except OSError:
            continue
        if isinstance(log, PostgresLog):
            if writer_script().encode() in args and f"FLYWHEEL_LOG_SHOWN={log.shown}".encode() in env:
                found.append(int(entry.name))
        elif shared_writer_script().encode() in args and str(log).encode() in args:
            found.append(int(entry.name))
    return found


def test_two_workers_answer_on_one_port_and_log_each_prediction_once(wine: Path) -> None:
    s = Server(wine, "--workers", "2")
    log = _log_of(wine)
    try:
        writers = "each its own log writer" if isinstance(log, PostgresLog) else "one log writer"
        assert f"2 workers, {writers}" in s.first_line
        assert len(_worker_pids(s.url)) == 2
        ids: list[str] = []
        lock = threading.Lock()

        def client(k: int) -> None:
            with httpx.Client(timeout=10) as c:
                for i in range(25):
                    r = c.post(
                        s.url + "/predict",
                        json=_rows(1, (k * 25 + i) % 170)[0],
                        headers={"connection": "close"},
                    )
                    assert r.status_code == 200, r.text
                    with lock:
                        ids.append(r.json()["prediction_id"])

        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(ids) == 100 and _logged(log, ids) == (100, 100)  # durable before each answer
        ok = httpx.post(s.url + "/feedback", json={"prediction_id": ids[0], "label": "class_0", "by": "ann"})
        assert ok.status_code == 200, ok.text
        assert any(f["prediction_id"] == ids[0] for f in read_feedback(log))
    finally:
        s.stop()
    assert s.proc.returncode == 0
    assert _writers(log) == []  # the writers stopped with the service


@pytest.mark.parametrize("ack", ["durable", "fast"])
def test_sigkill_of_a_worker_then_of_everything_loses_no_acknowledged_prediction(
    wine: Path, ack: str
) -> None:
    s = Server(wine, "--workers", "2", "--ack", ack)
    log = _log_of(wine)
    load = AckedLoad(s.url, 6, retry=True, connection="close")

    def wait_for(n: int) -> None:
        load.wait_for(n, timeout=60)
        assert len(load.acked) >= n, f"{len(load.acked)} acknowledged, expected {n}"

    try:
        pids = _worker_pids(s.url)
        assert len(pids) == 2
        load.start()
        wait_for(300)
        first = min(pids)
        os.kill(first, signal.SIGKILL)  # one worker, under load: the other answers, it is restarted
        wait_for(len(load.acked) + 300)
        now = _worker_pids(s.url) - {first}
        assert len(now) == 2  # the restarted worker answers too
        s.kill()  # then everything: the supervisor first, so nothing restarts the workers
        for pid in now:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    finally:
        load.stop()
        if s.proc.poll() is None:
            s.kill()
    acked = load.acked
    # The writers outlive them all to write what they were sent (fast mode acknowledges on handing over).
    deadline = time.monotonic() + 30
    while _writers(log) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _writers(log) == []
    rows, distinct = _logged(log, acked)
    assert distinct == len(set(acked)) and rows == distinct  # every acknowledged prediction, once
