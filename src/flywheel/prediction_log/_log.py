"""The durable prediction log: every prediction (and its shadow answers), every feedback label and
every outcome, group-committed.

A service must not answer faster than it can remember. Each submission goes to one writer —
a process of its own (:mod:`flywheel.prediction_log._writer`), so it never competes with the request path
for the interpreter lock — which takes everything waiting (up to ``batch`` records), writes it in
one transaction and commits: one fsync for the whole group. Only then is each request told its
records are durable. So the cost of durability is shared by every request that arrived during
the previous commit, and throughput grows with load instead of collapsing.

- ``durable`` mode (the default) acknowledges a prediction only after its commit; the
  database runs in WAL mode with ``synchronous=FULL``, so an acknowledged record survives the
  service being killed and the machine losing power.
- ``fast`` mode acknowledges as soon as the record is handed to the writer (documented
  trade-off: a power cut loses what the writer had not committed; a killed *service* loses
  nothing, because the writer outlives it long enough to write what it was sent).
- At most ``queue_size`` records wait for the writer; past that :meth:`PredictionLog.submit`
  raises :class:`LogFull` and the service answers 503 with ``Retry-After``. ``dropped`` counts
  records lost (only a failed write can raise it, and the requests concerned are told).
- Retention (rows, days) is applied by the writer between batches, so the log cannot fill a disk.
- If the writer dies, waiting requests are told so and the next submission starts a new one.

Given an event loop, acknowledgements are read and run on the loop itself (no thread hand-off);
without one, a small thread runs them.

Written on :mod:`sqlite3` directly rather than through SQLAlchemy: the writer's hot path is
one ``executemany`` per batch, and the ORM would triple its cost. The file is its own
database (``.flywheel/predictions.db``) so serving never contends with the run store. A project
whose store is PostgreSQL keeps the log's tables in that database instead
(:mod:`flywheel.prediction_log._location`): the same writer, the same group commit and
acknowledgement after the commit, through psycopg.

This module is the service's client of the writer; the records and errors it takes and raises
are in :mod:`flywheel.prediction_log._records`, the readers of the file in
:mod:`flywheel.prediction_log._read`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import flywheel.prediction_log._writer as _writer
from flywheel.prediction_log._location import LogLocation, writer_target
from flywheel.prediction_log._pipes import PipeOut
from flywheel.prediction_log._read import _FEEDBACK, _as_dict, _feedback_dict
from flywheel.prediction_log._records import (
    Ack,
    LogFull,
    LogWriteError,
    PredictionRecord,
    Record,
    ShadowRecord,
    _Feedback,
    _Outcome,
)
from flywheel.prediction_log._writer import ACK, connect, pack_frame

__all__ = [
    "PredictionLog",
]

_RECORDS = (PredictionRecord, ShadowRecord, _Feedback, _Outcome)  # one record, not a sequence of them
_MAX_BUFFERED = 64 << 20  # bytes waiting for the writer's pipe before submissions are refused


class _WriterProcess:
    """The writer's process and the two pipes to it."""

    def __init__(self, path: LogLocation, batch: int, rows: int | None, days: float | None) -> None:
        target, env = writer_target(path)
        to_child, self.send_fd = os.pipe()
        self.ack_fd, from_child = os.pipe()
        for fd in (self.send_fd, self.ack_fd):
            with contextlib.suppress(OSError, AttributeError, ImportError):  # Linux: more room in flight
                import fcntl

                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
        try:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    _writer.__file__,
                    str(to_child),
                    str(from_child),
                    target,
                    str(batch),
                    "-" if rows is None else str(rows),
                    "-" if days is None else str(days),
                ],
                pass_fds=(to_child, from_child),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        finally:
            os.close(to_child)
            os.close(from_child)

    def close_send(self) -> None:
        """End the writer's input (once): it writes what it has and exits."""
        fd, self.send_fd = self.send_fd, -1
        if fd >= 0:
            os.close(fd)

    def close_acks(self) -> None:
        fd, self.ack_fd = self.ack_fd, -1
        if fd >= 0:
            os.close(fd)


class _Attached:
    """The process of a shared writer, seen from one worker: not this worker's to wait for or kill."""

    def wait(self, timeout: float | None = None) -> str:
        return "the shared writer closed this worker's connection"

    def kill(self) -> None:
        return None


class _WriterConnection:
    """A connection to the writer several service workers share (``serve --workers``), with the
    same ends as :class:`_WriterProcess`: frames out and acknowledgements in, on one Unix socket."""

    def __init__(self, address: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(str(address))
        except OSError as exc:
            self.sock.close()
            raise LogWriteError(f"the shared log writer at {address} is not there ({exc.strerror})") from None
        self.send_fd = self.ack_fd = self.sock.fileno()
        self.proc = _Attached()

    def close_send(self) -> None:
        """End this worker's input (once): the writer writes what it sent and answers for it."""
        if self.send_fd >= 0:
            self.send_fd = -1
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)

    def close_acks(self) -> None:
        self.ack_fd = self.send_fd = -1
        self.sock.close()


_AnyWriter = _WriterProcess | _WriterConnection


class PredictionLog:
    """Submissions go to one group-committing writer process; acknowledgements come back in order."""

    def __init__(
        self,
        path: LogLocation,
        *,
        mode: Literal["durable", "fast"] = "durable",
        queue_size: int = 10_000,
        batch: int = 1_000,
        retention_rows: int | None = None,
        retention_days: float | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        writer_socket: Path | None = None,
    ) -> None:
        self.path = path
        self.writer_socket = writer_socket  # a shared writer's socket (serve --workers), else our own
        self.mode = mode
        self.queue_size = queue_size
        self.batch = batch
        self.retention_rows = retention_rows
        self.retention_days = retention_days
        self.logged = 0
        self.feedback = 0
        self.dropped = 0  # records lost: only a write error can raise it, and it is reported
        self.commits = 0
        self._loop = loop
        self._reader = connect(path)  # creates the file and tables: a bad path fails here, at once
        self._reader_lock = threading.Lock()
        self._send_lock = threading.Lock()  # frames reach the pipe in the order they were numbered
        self._state_lock = threading.Lock()  # the waiting list and the counters
        self._pending: collections.deque[tuple[int, int, Ack | None]] = collections.deque()
        self._frames = 0  # frames sent to the current writer
        self._waiting = 0  # records sent and not yet acknowledged by the writer
        self._out: PipeOut | None = None  # the writer's pipe, written from the loop (event-loop mode)
        self._holding = False  # inside together(): frames wait in _held, sent at its end
        self._held = bytearray()
        self._held_fast: list[tuple[int, int, Ack]] = []  # fast-mode acks of the held frames
        self._stopped = False
        self._writer: _AnyWriter | None = None
        self._ack_thread: threading.Thread | None = None
        self._start_writer()

    # --- the writer -----------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Records waiting for the writer."""
        return self._waiting

    def _start_writer(self) -> None:
        writer: _AnyWriter
        if self.writer_socket is not None:
            writer = _WriterConnection(self.writer_socket)
        else:
            writer = _WriterProcess(self.path, self.batch, self.retention_rows, self.retention_days)
        self._writer, self._frames, self._acks = writer, 0, bytearray()
        self._base = (self.logged, self.feedback, self.commits, self.dropped)
        if self._loop is not None:
            os.set_blocking(writer.send_fd, False)
            os.set_blocking(writer.ack_fd, False)
            self._out = PipeOut(self._loop, writer.send_fd, self._send_lock)
            self._loop.add_reader(writer.ack_fd, self._on_acks, writer)
        else:
            self._ack_thread = threading.Thread(
                target=self._read_acks, args=(writer,), name="flywheel-log-acks", daemon=True
            )
            self._ack_thread.start()

    def submit(self, records: Record | Sequence[Record], ack: Ack | None = None) -> None:
        """Hand records to the writer; ``ack(None)`` runs once all are durable (``ack(error)`` if not).

        ``records`` is one record or a sequence of them, of any kind (:class:`PredictionRecord`,
        :class:`ShadowRecord`, feedback, outcomes); they are written in one transaction.

        In ``fast`` mode ``ack(None)`` runs at once. With an event loop, acknowledgements run on
        the loop's thread; without one, on the log's acknowledgement thread.

        Raises
        ------
        LogFull
            When ``queue_size`` records already wait for the writer, or the log is closed
            (nothing was handed over).
        """
        batch = [records] if isinstance(records, _RECORDS) else list(records)
        if not batch:
            raise ValueError("submit: no records")
        frame = pack_frame([(r.kind, r.row()) for r in batch])
        with self._send_lock:
            if self._stopped:
                raise LogFull("the prediction log is closed")
            if self._waiting + len(batch) > self.queue_size:
                raise LogFull(f"the prediction log's queue is full ({self.queue_size} records)")
            behind = len(self._out.pending) if self._out is not None else 0
            if behind > _MAX_BUFFERED:
                raise LogFull(f"the prediction log's writer is {behind} bytes behind")
            if self._writer is None:  # the last one died and every submission to it was told
                self._drop_held()
                self._start_writer()
            writer = self._writer
            assert writer is not None
            durable = self.mode == "durable"
            with self._state_lock:
                self._frames += 1
                number = self._frames
                self._waiting += len(batch)
                self._pending.append((number, len(batch), ack if durable else None))
            if self._holding:  # sent with the others at the end of together()
                self._held += frame
                if not durable and ack is not None:
                    self._held_fast.append((number, len(batch), ack))
                return
            try:
                in_pipe = self._send(writer, frame)
            except OSError as exc:  # the writer is gone (its end of input is being handled)
                with self._state_lock:
                    if self._pending and self._pending[-1][0] == number:
                        self._pending.pop()
                        self._waiting -= len(batch)
                raise LogFull(f"the prediction log's writer stopped ({exc.strerror}); retry") from None
            if not durable and ack is not None and not in_pipe:
                self._ack_at_commit([(number, len(batch), ack)])
                ack = None
        if not durable and ack is not None:
            ack(None)

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """Submissions made inside reach the writer in one write, so it commits them in one
        transaction (event-loop mode; elsewhere, and nested, this changes nothing).

        Why: a model answers every request that waited for it at once, and each request then
        submits its records. Written one by one, the writer wakes at the first, commits it alone,
        and the others wait for that fsync before their own: the last of n waits n commits.
        """
        if self._loop is None or self._holding:
            yield
            return
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
            self._release()

    def _release(self) -> None:
        """Send the frames held by together(); settle what fast mode can settle now."""
        settled: list[tuple[Ack, BaseException | None]] = []
        with self._send_lock:
            frames, self._held = bytes(self._held), bytearray()
            fast, self._held_fast = self._held_fast, []
            writer = self._writer
            try:
                if writer is None:
                    raise OSError(0, "it exited")
                in_pipe = self._send(writer, frames) if frames else True
            except OSError as exc:
                # The writer is gone; reading its end of output fails every wait still pending.
                # Fast-mode acks are not pending there: they are told here.
                gone = LogWriteError(f"the prediction log's writer stopped ({exc.strerror})")
                settled = [(ack, gone) for _, _, ack in fast]
            else:
                if in_pipe:
                    settled = [(ack, None) for _, _, ack in fast]
                else:
                    self._ack_at_commit(fast)
        for ack, error in settled:
            ack(error)

    def _drop_held(self) -> None:
        """Frames held for a writer that died are not sent to the next one (their numbers count
        for the dead one); fast-mode acks among them are told, the others were by its end."""
        self._held = bytearray()
        fast, self._held_fast = self._held_fast, []
        for _, _, ack in fast:
            ack(LogWriteError("the prediction log's writer stopped"))

    def _ack_at_commit(self, fast: list[tuple[int, int, Ack]]) -> None:
        """Fast mode answers once the writer holds a record; these still wait in our buffer,
        which a killed service would lose, so they are acknowledged at their commit instead."""
        acks = {number: ack for number, _, ack in fast}
        with self._state_lock:
            for i in range(len(self._pending) - 1, -1, -1):
                if not acks:
                    break
                number, n, _ = self._pending[i]
                if number in acks:
                    self._pending[i] = (number, n, acks.pop(number))

    def add_feedback(
        self, prediction_id: str, label: str, source: str, ack: Ack | None = None, origin: str = "traffic"
    ) -> None:
        """Hand a feedback label for a logged prediction to the writer."""
        self.submit(_Feedback(prediction_id, label, source, time.time(), origin), ack)

    def add_outcome(self, prediction_id: str, name: str, value: float, ack: Ack | None = None) -> None:
        """Hand an outcome (a downstream event and its value) for a logged prediction to the writer."""
        self.submit(_Outcome(prediction_id, name, float(value), time.time()), ack)

    def _send(self, writer: _AnyWriter, frame: bytes) -> bool:
        """Write a frame to the writer's pipe; whether all of it is there (else it is buffered)."""
        if self._out is None:  # a blocking pipe: the caller waits while the writer catches up
            _writer.write_all(writer.send_fd, frame)
            return True
        return self._out.send(frame)

    def poll(self) -> bool:
        """Settle what the writer has acknowledged so far, now; whether there was anything.

        Event-loop mode only (cheap when nothing is waiting). The loop notices the writer's answer
        only at its next turn, after every callback already ready; a service calls this between
        long pieces of work, and yields when it returns True, so durable requests go on first.
        """
        writer = self._writer
        if self._loop is not None and writer is not None and writer.ack_fd >= 0:
            return self._on_acks(writer)
        return False

    def _on_acks(self, writer: _AnyWriter) -> bool:
        """The event loop's reader callback: acknowledgements ready on the pipe."""
        try:
            chunk = os.read(writer.ack_fd, 1 << 16)
        except BlockingIOError:
            return False
        self._received(writer, chunk)
        return True

    def _read_acks(self, writer: _AnyWriter) -> None:
        while True:
            chunk = os.read(writer.ack_fd, 1 << 16)
            self._received(writer, chunk)
            if not chunk:
                return

    def _received(self, writer: _AnyWriter, chunk: bytes) -> None:
        """Settle every submission the writer has finished; on end of input, fail the rest."""
        settled: list[tuple[Ack, BaseException | None]] = []
        with self._state_lock:
            if not chunk:
                self._writer_gone(writer, settled)
            else:
                self._acks += chunk
                while len(self._acks) >= ACK.size:
                    frames, logged, feedback, commits, dropped, size = ACK.unpack_from(self._acks)
                    if len(self._acks) < ACK.size + size:
                        break
                    message = bytes(self._acks[ACK.size : ACK.size + size]).decode("utf-8", "replace")
                    del self._acks[: ACK.size + size]
                    base = self._base
                    self.logged, self.feedback = base[0] + logged, base[1] + feedback
                    self.commits, self.dropped = base[2] + commits, base[3] + dropped
                    error: BaseException | None = LogWriteError(message) if message else None
                    while self._pending and self._pending[0][0] <= frames:
                        _, n, ack = self._pending.popleft()
                        self._waiting -= n
                        if ack is not None:
                            settled.append((ack, error))
        for ack, error in settled:
            ack(error)

    def _writer_gone(self, writer: _AnyWriter, settled: list[tuple[Ack, BaseException | None]]) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(writer.ack_fd)
            with contextlib.suppress(Exception):
                self._loop.remove_writer(writer.send_fd)
        code = writer.proc.wait()
        writer.close_acks()
        writer.close_send()
        if writer is not self._writer:
            return
        if self._out is not None:
            self._out.pending.clear()
        error = LogWriteError(
            f"the prediction log's writer stopped ({code if isinstance(code, str) else f'exit code {code}'})"
        )
        while self._pending:
            _, n, ack = self._pending.popleft()
            self._waiting -= n
            if ack is not None:
                settled.append((ack, error))
        if not self._stopped:
            self._writer = None  # the next submission starts a new one

    def close(self, timeout: float = 30.0) -> None:
        """Write everything handed over, then stop the writer (acknowledgements run before this returns)."""
        with self._send_lock:
            if self._stopped:
                return
            self._stopped = True
            writer = self._writer
        if writer is not None and writer.send_fd >= 0:
            if self._loop is not None:
                self._loop.remove_reader(writer.ack_fd)
                self._loop.remove_writer(writer.send_fd)
                os.set_blocking(writer.send_fd, True)
                if self._out is not None:
                    with contextlib.suppress(OSError):
                        _writer.write_all(writer.send_fd, bytes(self._out.pending))
                    self._out.pending.clear()
            writer.close_send()  # end of input: the writer writes the rest, answers and exits
            if self._loop is not None:
                os.set_blocking(writer.ack_fd, True)
                self._read_acks(writer)  # until the writer's end of output
        if self._ack_thread is not None:
            self._ack_thread.join(timeout)
        if writer is not None:
            try:
                writer.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                writer.proc.kill()
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

    def labels(self, prediction_id: str) -> list[dict[str, Any]]:
        """The feedback given for a prediction so far, oldest first (only committed labels are visible)."""
        with self._reader_lock:
            rows = self._reader.execute(_FEEDBACK + " WHERE prediction_id = ? ORDER BY id", (prediction_id,))
            return [_feedback_dict(r) for r in rows.fetchall()]
