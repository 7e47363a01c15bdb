"""The prediction log's writer: a process of its own that group-commits what the service sends it.

Why a process and not a thread: in one interpreter a writer thread must take the GIL back after
every SQLite call (begin, each insert, commit), and while the request path keeps the GIL busy each
of those hand-backs waits for the switch interval (5 ms). Measured here: a one-row commit takes
0.4 ms alone and 21 ms next to a busy thread. In its own process the writer shares nothing with
the request path, so a commit costs what the disk costs.

This file is run as a script (``python -I _writer.py IN_FD ACK_FD PATH BATCH ROWS DAYS``) and
imports the standard library only (psycopg too for a PostgreSQL log): the service's process holds
pandas and the model, the writer needs none. The one writer several service workers share is
``_shared.py``, which speaks the same protocol on a Unix socket.

The protocol, on two pipes:

- in: frames ``<u32 length><pickle of [(kind, row), ...]>``, one per submission; kind is ``"p"`` (a
  prediction row), ``"f"`` (a feedback row), ``"s"`` (a shadow row: the answer of a model that ran
  on a logged request but was not returned) or ``"o"`` (an outcome row: a downstream event tied to
  a logged prediction). A frame is never split across transactions, so a submission is written
  whole or not at all.
- out: after each transaction ``ACK`` = frames done, predictions logged, feedback logged, commits,
  records dropped (of every kind), length of an error message; then the message (empty when the
  write succeeded). Every frame up to "frames done" shares the outcome. Shadow rows and outcomes
  have no counter of their own here: the service counts them when their frames are acknowledged.

End of input (the service closed the pipe, or was killed) means: write everything read, apply
retention, checkpoint, exit. So a killed service loses nothing it had handed over.

The WAL (SQLite) is copied into the database by a thread's PASSIVE checkpoints, which never wait
for the writer; under sustained load they never reach its end, and the WAL grew for as long as the
load lasted (every read slower for it). Past ``WAL_LIMIT_BYTES`` the writer truncates it itself,
between two of its own commits (:meth:`_Writer.bound_wal`).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import sqlite3
import struct
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = [
    "ACK",
    "FRAME",
    "SCHEMA",
    "WAL_LIMIT_BYTES",
    "connect",
    "main",
    "pack_frame",
    "short_slice",
    "take_frames",
    "write_all",
    "writer_script",
]

FRAME = struct.Struct("<I")
WAL_LIMIT_BYTES = 64 << 20  # a WAL past this is truncated between two commits
ACK = struct.Struct("<QQQQQI")

SCHEMA = """
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
CREATE TABLE IF NOT EXISTS shadow (
    prediction_id TEXT NOT NULL,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    prediction TEXT NOT NULL,
    probabilities TEXT,
    latency_ms REAL NOT NULL,
    PRIMARY KEY (prediction_id, model, version)
);
CREATE TABLE IF NOT EXISTS outcomes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    prediction_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_prediction ON outcomes(prediction_id);
"""
# Every statement above is IF NOT EXISTS: a log written before a table existed gains it the next
# time anything connects (the service, the writer or a reader), and its rows stay as they were.

_INSERTS = {
    "p": "INSERT OR IGNORE INTO predictions VALUES (?,?,?,?,?,?,?,?)",
    "f": "INSERT INTO feedback(prediction_id, label, source, at, origin) VALUES (?,?,?,?,?)",
    "s": "INSERT OR IGNORE INTO shadow VALUES (?,?,?,?,?,?)",
    "o": "INSERT INTO outcomes(prediction_id, name, value, at) VALUES (?,?,?,?)",
}


def connect(path: Any) -> Any:
    """A connection to the log, creating the tables when needed: a SQLite file's in WAL mode with
    ``synchronous=FULL`` (:class:`sqlite3.Connection`), or a PostgreSQL database's
    (:class:`~flywheel.prediction_log._location.PgConnection`, which takes the same SQL text)."""
    if not isinstance(path, Path):  # a PostgresLog: only then is psycopg (and the package) imported
        from flywheel.prediction_log._location import pg_connect

        return pg_connect(path, SCHEMA)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.executescript(SCHEMA)
    return conn


class _Writer:
    def __init__(self, path: Any, batch: int, retention_rows: int | None, retention_days: float | None):
        self.path = path  # a Path, or a PostgresLog
        self.batch = batch
        self.retention_rows = retention_rows
        self.retention_days = retention_days
        self.conn = connect(path)
        self.errors: Any = sqlite3.Error
        self.wal: Path | None = None  # the WAL file, SQLite only
        self.wal_limit = WAL_LIMIT_BYTES
        self.wal_retry_at = 0.0
        if isinstance(path, Path):
            self.wal = Path(f"{path}-wal")
            # A checkpoint (copying the WAL into the database, with an fsync of the database file) would
            # stall the commit that triggers it; a thread of its own runs them instead.
            self.conn.execute("PRAGMA wal_autocheckpoint=0")
        else:  # PostgreSQL: synchronous_commit is on (pg_connect), so a commit (and its ack) is durable
            self.errors = sys.modules["psycopg"].Error
        self.frames = self.logged = self.feedback = self.commits = self.dropped = 0
        self.since_retention = 0

    def write(self, frames: list[list[tuple[str, tuple[Any, ...]]]]) -> str:
        """One transaction for these frames; an error message, or "" when they are durable."""
        rows: dict[str, list[tuple[Any, ...]]] = {kind: [] for kind in _INSERTS}
        for frame in frames:
            for kind, row in frame:
                rows[kind].append(row)
        predictions, feedback = rows["p"], rows["f"]
        error = ""
        for attempt in range(3):
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                for kind, insert in _INSERTS.items():
                    if rows[kind]:
                        self.conn.executemany(insert, rows[kind])
                self.conn.execute("COMMIT")
                error = ""
                break
            except self.errors as exc:  # a busy database or a full disk: retry, then report
                error = f"{type(exc).__name__}: {exc}"
                with contextlib.suppress(self.errors):
                    self.conn.execute("ROLLBACK")
                time.sleep(0.05 * (attempt + 1))
                self._reconnect()
        self.frames += len(frames)
        if error:
            self.dropped += sum(len(r) for r in rows.values())
        else:
            self.logged += len(predictions)
            self.feedback += len(feedback)
            self.commits += 1
            self.since_retention += len(predictions)
            if self.since_retention >= 5_000:
                self.apply_retention()
        return error

    def bound_wal(self) -> None:
        """Truncate the WAL once it is past ``wal_limit`` bytes (SQLite). Called after a round's
        acknowledgements are sent, so no answer waits on it; the next round's commit does.

        The checkpoint thread's PASSIVE rounds have copied most of the WAL already, so the
        TRUNCATE left to do is short. A reader still on an old snapshot keeps it from finishing:
        it waits at most 10 ms for that reader, then gives up for a second (the WAL is intact
        either way; a checkpoint never loses a committed row)."""
        if self.wal is None or time.monotonic() < self.wal_retry_at:
            return
        try:
            if self.wal.stat().st_size <= self.wal_limit:
                return
        except OSError:  # no WAL file at this moment: nothing to bound
            return
        try:
            self.conn.execute("PRAGMA busy_timeout=10")
            busy = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.Error:
            busy = 1
        finally:
            self.conn.execute("PRAGMA busy_timeout=30000")
        if busy:
            self.wal_retry_at = time.monotonic() + 1.0

    def _reconnect(self) -> None:
        """Open a PostgreSQL connection again once it broke (a restarted server, a dropped network)."""
        if getattr(getattr(self.conn, "raw", None), "closed", False):
            with contextlib.suppress(Exception):  # still unreachable: the next attempt reports it
                self.conn = connect(self.path)

    def apply_retention(self) -> None:
        """Delete the predictions past retention, and their shadow answers with them (one transaction).

        Feedback and outcomes stay: they are few, and they are the history labels and business
        events are judged on."""
        self.since_retention = 0
        doomed: list[tuple[str, float]] = []
        if self.retention_days is not None:
            cutoff = (datetime.now(UTC) - timedelta(days=self.retention_days)).timestamp()
            doomed.append(("at < ?", cutoff))
        if self.retention_rows is not None:
            last = "(SELECT rowid FROM predictions ORDER BY rowid DESC LIMIT 1 OFFSET ?)"
            doomed.append((f"rowid <= {last}", self.retention_rows))
        if not doomed:
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            for where, value in doomed:
                # The shadow table's key starts with prediction_id: this is an index lookup per row.
                self.conn.execute(
                    f"DELETE FROM shadow WHERE prediction_id IN (SELECT id FROM predictions WHERE {where})",
                    (value,),
                )
                self.conn.execute(f"DELETE FROM predictions WHERE {where}", (value,))
            self.conn.execute("COMMIT")
        except self.errors:
            with contextlib.suppress(self.errors):
                self.conn.execute("ROLLBACK")
            # retention is retried after the next batches

    def ack(self, error: str) -> bytes:
        message = error.encode("utf-8", "replace")
        head = ACK.pack(self.frames, self.logged, self.feedback, self.commits, self.dropped, len(message))
        return head + message


def _checkpoints(path: Path, stop: threading.Event, every_s: float = 1.0) -> None:
    conn = connect(path)
    try:
        while not stop.wait(every_s):
            with contextlib.suppress(sqlite3.Error):  # busy: the next round catches up
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()


def pack_frame(message: Any) -> bytes:
    """``message`` pickled, behind its length: one frame on a pipe."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return FRAME.pack(len(payload)) + payload


def take_frames(buf: bytearray, enough: Callable[[list[Any]], bool] | None = None) -> list[Any]:
    """The complete frames at the head of ``buf``, unpickled and removed from it (stopping early,
    whole frames only, once ``enough(taken)`` is true; it is asked once after each frame)."""
    taken: list[Any] = []
    offset = 0
    while len(buf) - offset >= FRAME.size and not (taken and enough is not None and enough(taken)):
        (size,) = FRAME.unpack_from(buf, offset)
        if len(buf) - offset - FRAME.size < size:
            break
        taken.append(pickle.loads(buf[offset + FRAME.size : offset + FRAME.size + size]))
        offset += FRAME.size + size
    del buf[:offset]
    return taken


# sched_setattr / sched_getattr, by machine (the generic table's numbers outside x86).
_SCHED_CALLS = {"x86_64": (314, 315), "aarch64": (274, 275), "riscv64": (274, 275)}
_SCHED_ATTR = struct.Struct("<IIQiIQQQ")  # size, policy, flags, nice, priority, runtime, deadline, period


def short_slice(ns: int = 100_000) -> bool:
    """Ask the kernel to run the calling thread in slices of ``ns`` (threads and processes it
    starts afterwards inherit this).

    Why: on a machine with few cores, a process that wakes for a tenth of a millisecond of work —
    the log's writer taking a record, the event loop taking an acknowledgement — can wait for the
    process already running there to use up its slice (Linux's default: a few milliseconds).
    Measured on 2 cores under load: that wait was 0.4 ms at p99 for each of those two wake-ups. On
    Linux 6.12 and later (EEVDF) a thread that asks for a shorter slice gets an earlier deadline,
    so it runs when it wakes; it gains no share of the CPU, and it needs no privilege. Elsewhere
    (another system, an older kernel, a real-time policy) nothing changes. Whether the kernel
    took the request.
    """
    calls = _SCHED_CALLS.get(os.uname().machine) if sys.platform.startswith("linux") else None
    if calls is None:
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(_SCHED_ATTR.size)
        if libc.syscall(calls[1], 0, buf, _SCHED_ATTR.size, 0) != 0:
            return False
        _, policy, flags, nice, priority, _, deadline, period = _SCHED_ATTR.unpack_from(buf)
        if policy != 0:  # SCHED_OTHER only: for other policies "runtime" means something else
            return False
        _SCHED_ATTR.pack_into(buf, 0, _SCHED_ATTR.size, policy, flags, nice, priority, ns, deadline, period)
        return bool(libc.syscall(calls[0], 0, buf, 0) == 0)
    except (OSError, AttributeError, ValueError):
        return False


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def serve(in_fd: int, ack_fd: int, writer: _Writer) -> None:
    """Read frames until the input ends; each round writes everything waiting in one transaction."""
    os.set_blocking(in_fd, False)
    buf = bytearray()
    eof = False
    listening = True  # the service reads acknowledgements (it stops when killed)
    while True:
        while True:  # take what has arrived, without waiting
            try:
                chunk = os.read(in_fd, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                eof = True
                break
            buf += chunk
        records = 0

        def enough(taken: list[Any]) -> bool:  # called once after each frame taken
            nonlocal records
            records += len(taken[-1])
            return records >= writer.batch

        frames = take_frames(buf, enough)
        if frames:
            ack = writer.ack(writer.write(frames))
            if listening:
                try:
                    write_all(ack_fd, ack)
                except OSError:  # the service is gone: keep writing what it sent
                    listening = False
            writer.bound_wal()
        elif eof:
            return
        else:
            select.select([in_fd], [], [])


def _writer_from(args: list[str]) -> _Writer:
    """``PATH BATCH ROWS DAYS`` (``-`` for no retention limit) as a writer. PATH ``-`` means the
    PostgreSQL database in ``$FLYWHEEL_LOG_URL`` (in the environment, not on a command line that
    any user may list), printed as ``$FLYWHEEL_LOG_SHOWN``."""
    path: Any = Path(args[0])
    if args[0] == "-":
        from flywheel.prediction_log._location import PostgresLog

        path = PostgresLog(
            os.environ.pop("FLYWHEEL_LOG_URL"), os.environ.get("FLYWHEEL_LOG_SHOWN", "PostgreSQL")
        )
    return _Writer(path, int(args[1]), _maybe(args[2], int), _maybe(args[3], float))


def _run(writer: _Writer, serving: Callable[[], None]) -> None:
    """Serve until the input ends, with checkpoints on a thread of their own (SQLite); retention last."""
    stop = threading.Event()
    checkpointer = threading.Thread(target=_checkpoints, args=(writer.path, stop), daemon=True)
    if isinstance(writer.path, Path):
        checkpointer.start()
    try:
        serving()
        writer.apply_retention()
    finally:
        stop.set()
        if checkpointer.is_alive():
            checkpointer.join(30)
        writer.conn.close()


def writer_script() -> str:
    """This file's path: what ``python -I`` runs as the writer process."""
    return __file__


def _maybe(text: str, kind: Callable[[str], Any]) -> Any:
    return None if text == "-" else kind(text)


def _writer_process() -> None:
    """What a writer's process does first (the pipe's writer and the shared one)."""
    # Ctrl-C reaches the whole process group: the service shuts down and closes the pipe, and the
    # writer must live to write what it was sent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    short_slice()  # a commit is short work that a request waits for: run it when it is due


def _exit_with(main: Callable[[], int]) -> None:
    """Run a writer's ``main`` as a script: its exit code, or its error as one line on stderr."""
    try:
        sys.exit(main())
    except Exception as exc:  # the service reports the writer's end to the requests waiting on it
        print(f"flywheel log writer: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    _writer_process()
    in_fd, ack_fd = int(args[0]), int(args[1])
    writer = _writer_from(args[2:])
    _run(writer, lambda: serve(in_fd, ack_fd, writer))
    return 0


if __name__ == "__main__":
    _exit_with(main)
