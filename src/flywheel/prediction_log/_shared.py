"""The one log writer several service workers share (``flywheel serve --workers N``, SQLite).

SQLite takes one writer at a time, so the workers do not each run a writer of their own (see
:mod:`flywheel.serving._workers`): each connects to this writer's Unix socket and speaks the
pipe's protocol on it (:mod:`flywheel.prediction_log._writer`). Every round writes what all of
them sent in one transaction and acknowledges each worker its own frames.

Run as a script (``python -I _shared.py SOCKET CONTROL_FD PATH BATCH ROWS DAYS``, the path
:func:`shared_writer_script` gives); unlike the pipe's writer it imports this package (no pandas:
about 30 ms more at the start of a service).
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
from typing import Any

from flywheel.prediction_log._writer import (
    ACK,
    _exit_with,
    _run,
    _Writer,
    _writer_from,
    _writer_process,
    take_frames,
)

__all__ = ["main", "serve_shared", "shared_writer_script"]


class _Client:
    """One service worker connected to a shared writer: what it sent, and its own counters."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        sock.setblocking(False)
        self.buf = bytearray()
        self.eof = False
        self.listening = True
        self.frames = self.logged = self.feedback = self.commits = self.dropped = 0

    def read(self) -> None:
        while not self.eof:
            try:
                chunk = self.sock.recv(1 << 20)
            except BlockingIOError:
                return
            except OSError:  # reset by a killed worker: what arrived is written all the same
                chunk = b""
            self.eof = not chunk
            self.buf += chunk

    def settle(self, frames: list[Any], error: str) -> None:
        """Count this client's frames of the transaction just made, and tell it (if it listens)."""
        self.frames += len(frames)
        rows = [kind for frame in frames for kind, _ in frame]
        if error:
            self.dropped += len(rows)
        else:
            self.logged += rows.count("p")
            self.feedback += rows.count("f")
            self.commits += 1
        message = error.encode("utf-8", "replace")
        ack = ACK.pack(self.frames, self.logged, self.feedback, self.commits, self.dropped, len(message))
        if self.listening:
            try:
                self.sock.setblocking(True)
                self.sock.sendall(ack + message)
                self.sock.setblocking(False)
            except OSError:  # the worker is gone: keep writing what it sent
                self.listening = False


def _take_round(clients: list[_Client], batch: int) -> list[tuple[_Client, list[Any]]]:
    """Whole frames from each client in turn, up to ``batch`` records in all (at least one frame)."""
    taken: list[tuple[_Client, list[Any]]] = []
    records = 0
    for client in clients:
        if records >= batch:
            break

        def enough(frames: list[Any]) -> bool:
            nonlocal records
            records += len(frames[-1])
            return records >= batch

        frames = take_frames(client.buf, enough)
        if frames:
            taken.append((client, frames))
    return taken


def serve_shared(listener: Any, control_fd: int, writer: _Writer) -> None:
    """The writer of several service workers: each connects to ``listener`` (a Unix socket) and
    sends frames as on the pipe; every round writes what all of them sent in one transaction and
    acknowledges each its own frames. A worker that goes away has what it sent written all the
    same. The end of ``control_fd`` (the supervisor stopped, or was killed) closes the listener;
    the writer exits once every worker has gone."""
    listener.setblocking(False)
    clients: list[_Client] = []
    accepting = True
    while True:
        for client in clients:
            client.read()
        taken = _take_round(clients, writer.batch)
        if taken:
            error = writer.write([f for _, frames in taken for f in frames])
            for client, frames in taken:
                client.settle(frames, error)
            writer.bound_wal()  # after the acknowledgements: no answer waits on it
            clients = clients[1:] + clients[:1]  # the next round starts with another worker
            continue
        # Nothing whole is left: a gone worker's last bytes, if any, are a frame it never finished
        # sending (so never acknowledged), and it goes.
        for client in [c for c in clients if c.eof]:
            clients.remove(client)
            client.sock.close()
        if not accepting and not clients:
            return
        watched = [c.sock for c in clients if not c.eof] + ([listener, control_fd] if accepting else [])
        ready, _, _ = select.select(watched, [], [])
        if listener in ready:
            with contextlib.suppress(BlockingIOError):
                clients.append(_Client(listener.accept()[0]))
        if control_fd in ready and not os.read(control_fd, 1 << 10):
            accepting = False
            listener.close()


def main(argv: list[str] | None = None) -> int:
    """``SOCKET CONTROL_FD PATH BATCH ROWS DAYS``: the shared writer of ``serve --workers``."""
    import socket

    args = sys.argv[1:] if argv is None else argv
    _writer_process()
    address, control_fd = args[0], int(args[1])
    writer = _writer_from(args[2:])
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(64)
    try:
        _run(writer, lambda: serve_shared(listener, control_fd, writer))
    finally:
        with contextlib.suppress(OSError):
            os.unlink(address)
    return 0


def shared_writer_script() -> str:
    """This file's path: what ``python -I`` runs as the shared writer's process."""
    return __file__


if __name__ == "__main__":
    _exit_with(main)
