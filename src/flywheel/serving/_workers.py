"""``flywheel serve --workers N``: N service processes on one socket, one prediction log writer
(on PostgreSQL: a writer per worker).

Why processes: one Python process answers on one core (the interpreter lock), so a busy service
on a bigger machine needs several. They accept from the same listening socket (the kernel hands
each connection to one of them) and each runs the whole app: its own model process, reload
watcher and counters. What they log goes to one writer they share — the log's writer listening
on a Unix socket (:func:`flywheel.prediction_log.serve_shared`) — because SQLite takes
one writer at a time: N writers would queue on its lock, each commit paying a busy wait, where one
writer group-commits everything the N workers sent in one transaction. A PostgreSQL log takes
concurrent writers, so there each worker keeps the writer a single service has, group-committing
what it alone sent; the supervisor then starts no writer.

The supervisor (this process) starts the writer, then the workers (spawned: each loads the model
itself, nothing is inherited half-initialised), restarts a worker that dies, and on Ctrl-C or
SIGTERM stops the workers (each writes what it was sent, as a single service does), then the
writer. A supervisor killed outright takes its workers with it (they get SIGTERM from the kernel),
and the writer, seeing its control pipe close, writes what it was sent and exits. A worker killed
with SIGKILL loses no acknowledged prediction: an answer is sent only after its record is
committed, and the writer writes whatever the dead worker had already sent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from flywheel.errors import FlywheelError
from flywheel.project import Project

__all__ = [
    "serve_workers",
]

_RESTARTS = 5  # a worker that dies this many times within a minute stops the service


def _start_writer(log_path: Any, options: Any, folder: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    """The shared writer, listening on a socket in ``folder``; its control pipe's write end."""
    from flywheel.prediction_log import shared_writer_script

    address = folder / "writer.sock"
    control_r, control_w = os.pipe()
    rows, days = options.retention_rows, options.retention_days
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-I",
                shared_writer_script(),
                str(address),
                str(control_r),
                str(log_path),
                str(options.log_batch),
                "-" if rows is None else str(rows),
                "-" if days is None else str(days),
            ],
            pass_fds=(control_r,),
            stdin=subprocess.DEVNULL,
        )
    finally:
        os.close(control_r)
    deadline = time.monotonic() + 30
    while not address.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            os.close(control_w)
            raise FlywheelError(f"the prediction log's writer did not start (exit code {proc.poll()})")
        time.sleep(0.01)
    return proc, control_w, address


def _stop_with_parent(parent: int) -> None:
    """Have the kernel send SIGTERM when the supervisor dies (Linux), so a killed supervisor leaves
    no worker serving on its own; a worker whose supervisor is already gone stops now."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def _worker(project_file: str, options: Any, sock: socket.socket, supervisor: int) -> None:
    """One worker: load the project and the model, then serve on the shared socket until SIGTERM."""
    import uvicorn

    from flywheel.prediction_log import short_slice
    from flywheel.project import load_project
    from flywheel.serving._app import _settle_heap, create_app
    from flywheel.serving._served import load_served
    from flywheel.serving._shadow import load_second

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which stops us
    _stop_with_parent(supervisor)
    project = load_project(project_file)
    served = load_served(project, options.alias)
    app = create_app(project, served, options, load_second(project, options, served))
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=10)
    _settle_heap()
    short_slice()  # as a single service: the event loop's wake-ups are short and requests wait on them
    uvicorn.Server(config).run(sockets=[sock])


class _Supervisor:
    def __init__(self, project: Project, options: Any, sock: socket.socket) -> None:
        self.project, self.options, self.sock = project, options, sock
        self.context = mp.get_context("spawn")
        self.workers: dict[int, Any] = {}  # slot -> process
        self.deaths: list[float] = []
        self.stopping = False

    def spawn(self, slot: int) -> None:
        proc = self.context.Process(
            target=_worker,
            args=(str(self.project.path), self.options, self.sock, os.getpid()),
            name=f"flywheel-worker-{slot}",
            daemon=False,
        )
        proc.start()
        self.workers[slot] = proc

    def stop(self, *_: Any) -> None:
        self.stopping = True
        for proc in self.workers.values():
            with contextlib.suppress(ProcessLookupError, OSError):
                if proc.pid is not None:
                    os.kill(proc.pid, signal.SIGTERM)

    def run(self) -> int:
        """Keep every slot filled until stopped; the exit status for the command."""
        for slot in range(self.options.workers):
            self.spawn(slot)
        status = 0
        while self.workers:
            time.sleep(0.2)
            for slot, proc in list(self.workers.items()):
                if proc.is_alive():
                    continue
                proc.join()
                del self.workers[slot]
                if self.stopping:
                    continue
                now = time.monotonic()
                self.deaths = [t for t in self.deaths if now - t < 60] + [now]
                if len(self.deaths) >= _RESTARTS:
                    status = 1
                    self.stop()
                    continue
                self.spawn(slot)
        return status


def serve_workers(project: Project, *, host: str, port: int, options: Any, banner: str) -> int:
    """Serve with ``options.workers`` processes until interrupted; the exit status (0, or 1 when
    workers kept dying). On SQLite they share one log writer; on PostgreSQL each worker's log runs
    its own writer, group-committing into the database (which takes many writers at once).

    Raises
    ------
    FlywheelError
        When the address cannot be bound or the log's writer cannot start (before anything listens).
    """
    from flywheel.prediction_log import PostgresLog
    from flywheel.registry import log_location
    from flywheel.serving._app import listen

    log_path = options.log_path or log_location(project)
    sock = listen(host, port, 2048)
    sock.set_inheritable(True)
    if isinstance(log_path, PostgresLog):
        return _supervise(_Supervisor(project, dataclasses.replace(options, log_path=log_path), sock), banner)
    folder = Path(tempfile.mkdtemp(prefix="flywheel-serve-"))
    try:
        writer, control_w, address = _start_writer(log_path, options, folder)
    except BaseException:
        sock.close()
        raise
    opts = dataclasses.replace(options, writer_socket=address, log_path=log_path)
    try:
        return _supervise(_Supervisor(project, opts, sock), banner)
    finally:
        os.close(control_w)  # the writer writes what the workers sent, then exits
        try:
            writer.wait(60)
        except subprocess.TimeoutExpired:
            writer.kill()
        with contextlib.suppress(OSError):
            address.unlink()
        with contextlib.suppress(OSError):
            folder.rmdir()


def _supervise(supervisor: _Supervisor, banner: str) -> int:
    """Say where the service listens, run the workers until stopped, then stop them and close the socket."""
    print(banner.format(port=supervisor.sock.getsockname()[1]), flush=True)
    previous = {s: signal.signal(s, supervisor.stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return supervisor.run()
    finally:
        supervisor.stop()
        for proc in supervisor.workers.values():
            proc.join(30)
        for s, handler in previous.items():
            signal.signal(s, handler)
        supervisor.sock.close()
