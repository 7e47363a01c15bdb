"""The durable prediction log: every prediction and every feedback label, group-committed.

A service must not answer faster than it can remember. Each record goes into a bounded queue;
one writer thread takes everything waiting (up to ``batch`` records), writes it in one
transaction and commits — one fsync for the whole group — and only then tells each request
its record is durable. So the cost of durability is shared by every request that arrived
during the previous commit, and throughput grows with load instead of collapsing.

- ``durable`` mode (the default) acknowledges a prediction only after its commit; the
  database runs in WAL mode with ``synchronous=FULL``, so an acknowledged record survives the
  process being killed and the machine losing power.
- ``fast`` mode acknowledges as soon as the record is queued (documented trade-off: a crash
  loses at most the records of the current batch); nothing is ever dropped silently.
- When the queue is full, :meth:`PredictionLog.submit` raises :class:`LogFull` and the service
  answers 503 with ``Retry-After``; ``dropped`` counts records lost and stays 0.
- Retention (rows, days) is applied by the writer between batches, so the log cannot fill a disk.

Written on :mod:`sqlite3` directly rather than through SQLAlchemy: the writer's hot path is
one ``executemany`` per batch, and the ORM would triple its cost. The file is its own
database (``.flywheel/predictions.db``) so serving never contends with the run store.
"""

from __future__ import annotations

import contextlib
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "LOG_NAME",
    "LogFull",
    "PredictionLog",
    "PredictionRecord",
    "read_feedback",
    "read_predictions",
]

LOG_NAME = "predictions.db"
Ack = Callable[[BaseException | None], None]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id TEXT PRIMARY KEY,
    at REAL NOT NULL,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    input TEXT NOT NULL,
    prediction TEXT NOT NULL,
    probabilities TEXT,
    latency_ms REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS predictions_at ON predictions(at);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    prediction_id TEXT NOT NULL,
    label TEXT NOT NULL,
    source TEXT NOT NULL,
    at REAL NOT NULL,
    origin TEXT NOT NULL DEFAULT 'traffic'
);
CREATE INDEX IF NOT EXISTS feedback_prediction ON feedback(prediction_id);
"""


class LogFull(Exception):
    """The writer's queue is full: the caller should retry later (HTTP 503, Retry-After)."""


@dataclass(frozen=True)
class PredictionRecord:
    """One logged prediction."""

    id: str
    at: float
    model: str
    version: int
    input: dict[str, Any]
    prediction: Any
    probabilities: dict[str, float] | None
    latency_ms: float

    def row(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.at,
            self.model,
            self.version,
            json.dumps(self.input, default=str),
            json.dumps(self.prediction, default=str),
            None if self.probabilities is None else json.dumps(self.probabilities),
            self.latency_ms,
        )


@dataclass(frozen=True)
class _Feedback:
    prediction_id: str
    label: str
    source: str
    at: float
    origin: str = "traffic"


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the log in WAL mode, creating the tables when needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.executescript(_SCHEMA)
    return conn


class PredictionLog:
    """A bounded queue in front of one group-committing writer thread."""

    def __init__(
        self,
        path: Path,
        *,
        mode: Literal["durable", "fast"] = "durable",
        queue_size: int = 10_000,
        batch: int = 1_000,
        retention_rows: int | None = None,
        retention_days: float | None = None,
    ) -> None:
        self.path = path
        self.mode = mode
        self.batch = batch
        self.retention_rows = retention_rows
        self.retention_days = retention_days
        self._queue: queue.Queue[tuple[Any, Ack | None] | None] = queue.Queue(maxsize=queue_size)
        self.logged = 0
        self.feedback = 0
        self.dropped = 0  # records lost: only a write error can raise it, and it is reported
        self.commits = 0
        self._conn = connect(path)
        # Checkpoints (copying the WAL into the database, with an fsync of the database file) would
        # stall the commit that triggers them; a thread of their own runs them instead.
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        self._reader = connect(path)
        self._reader_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="flywheel-log-writer", daemon=True)
        self._stopped = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoints, name="flywheel-log-checkpoint", daemon=True
        )
        self._thread.start()
        self._checkpointer.start()

    # --- the writer -----------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Records waiting for the writer."""
        return self._queue.qsize()

    def submit(self, record: PredictionRecord | _Feedback, ack: Ack | None = None) -> None:
        """Queue a record; ``ack(None)`` runs once it is durable (``ack(error)`` if the write failed).

        Raises
        ------
        LogFull
            When the queue is full (nothing was queued).
        """
        if self._stopped.is_set():
            raise LogFull("the prediction log is closed")
        try:
            self._queue.put_nowait((record, ack))
        except queue.Full:
            raise LogFull(f"the prediction log's queue is full ({self._queue.maxsize} records)") from None

    def add_feedback(
        self, prediction_id: str, label: str, source: str, ack: Ack | None = None, origin: str = "traffic"
    ) -> None:
        """Queue a feedback label for a logged prediction."""
        self.submit(_Feedback(prediction_id, label, source, time.time(), origin), ack)

    def _run(self) -> None:
        since_retention = 0
        while True:
            first = self._queue.get()
            if first is None:
                return
            items = [first]
            stop = False
            while len(items) < self.batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                items.append(nxt)
            self._write(items)
            since_retention += len(items)
            if since_retention >= 5_000:
                self._apply_retention()
                since_retention = 0
            if stop:
                return

    def _checkpoints(self, every_s: float = 1.0) -> None:
        conn = connect(self.path)
        try:
            while not self._stopped.wait(every_s):
                with contextlib.suppress(sqlite3.Error):  # busy: the next round catches up
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()

    def _write(self, items: list[tuple[Any, Ack | None]]) -> None:
        predictions = [r.row() for r, _ in items if isinstance(r, PredictionRecord)]
        feedback = [
            (r.prediction_id, r.label, r.source, r.at, r.origin) for r, _ in items if isinstance(r, _Feedback)
        ]
        error: BaseException | None = None
        for attempt in range(3):
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                if predictions:
                    self._conn.executemany(
                        "INSERT OR IGNORE INTO predictions VALUES (?,?,?,?,?,?,?,?)", predictions
                    )
                if feedback:
                    self._conn.executemany(
                        "INSERT INTO feedback(prediction_id, label, source, at, origin) VALUES (?,?,?,?,?)",
                        feedback,
                    )
                self._conn.execute("COMMIT")
                error = None
                break
            except sqlite3.Error as exc:  # a busy database or a full disk: retry, then report
                error = exc
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                time.sleep(0.05 * (attempt + 1))
        if error is None:
            self.logged += len(predictions)
            self.feedback += len(feedback)
            self.commits += 1
        else:
            self.dropped += len(items)
        for _, ack in items:
            if ack is not None:
                ack(error)

    def _apply_retention(self) -> None:
        try:
            if self.retention_days is not None:
                cutoff = (datetime.now(UTC) - timedelta(days=self.retention_days)).timestamp()
                self._conn.execute("DELETE FROM predictions WHERE at < ?", (cutoff,))
            if self.retention_rows is not None:
                self._conn.execute(
                    "DELETE FROM predictions WHERE rowid <= "
                    "(SELECT rowid FROM predictions ORDER BY rowid DESC LIMIT 1 OFFSET ?)",
                    (self.retention_rows,),
                )
        except sqlite3.Error:
            pass  # retention is retried after the next batches

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the writer."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._queue.put(None)
        self._thread.join(timeout)
        self._checkpointer.join(timeout)
        self._apply_retention()
        self._conn.close()
        self._reader.close()

    # --- reads ----------------------------------------------------------------------------------

    def prediction(self, prediction_id: str) -> dict[str, Any] | None:
        """A logged prediction by id (only durable ones are visible)."""
        with self._reader_lock:
            row = self._reader.execute(
                "SELECT id, at, model, version, input, prediction, probabilities, latency_ms "
                "FROM predictions WHERE id = ?",
                (prediction_id,),
            ).fetchone()
        return None if row is None else _as_dict(row)


def _as_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "id": row[0],
        "at": row[1],
        "model": row[2],
        "version": row[3],
        "input": json.loads(row[4]),
        "prediction": json.loads(row[5]),
        "probabilities": None if row[6] is None else json.loads(row[6]),
        "latency_ms": row[7],
    }


def read_predictions(
    path: Path, *, since: float | None = None, ids: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """Logged predictions, oldest first (all, those after ``since``, or those with ``ids``)."""
    if not path.exists():
        return []
    conn = connect(path)
    try:
        query = "SELECT id, at, model, version, input, prediction, probabilities, latency_ms FROM predictions"
        if ids is not None:
            wanted = list(ids)
            rows: list[Any] = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows += conn.execute(query + f" WHERE id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
            rows.sort(key=lambda r: r[1])
        elif since is not None:
            rows = conn.execute(query + " WHERE at > ? ORDER BY at", (since,)).fetchall()
        else:
            rows = conn.execute(query + " ORDER BY at").fetchall()
        return [_as_dict(r) for r in rows]
    finally:
        conn.close()


def read_feedback(path: Path) -> list[dict[str, Any]]:
    """Feedback labels, oldest first; the latest label for a prediction wins where there are several."""
    if not path.exists():
        return []
    conn = connect(path)
    try:
        rows = conn.execute(
            "SELECT prediction_id, label, source, at, origin FROM feedback ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    return [{"prediction_id": r[0], "label": r[1], "source": r[2], "at": r[3], "origin": r[4]} for r in rows]
