"""A non-blocking pipe (or socket) written from an event loop: the service's end of the log's
writer and of the model process."""

from __future__ import annotations

import contextlib
import os
from typing import Any

__all__ = [
    "PipeOut",
]


class PipeOut:
    """A non-blocking pipe written from an event loop (the log's writer, the model process).

    What the pipe has no room for waits in ``pending``, in order, and goes out when the loop says
    the pipe can take more. ``lock``, when given, is held while that happens (the log's submissions
    hold it too).
    """

    def __init__(self, loop: Any, fd: int, lock: Any = None) -> None:
        self.loop = loop
        self.fd = fd
        self.pending = bytearray()
        self._lock = lock if lock is not None else contextlib.nullcontext()

    def send(self, data: bytes) -> bool:
        """Whether all of ``data`` is in the pipe now (else the rest waits here).

        Raises
        ------
        OSError
            When the reading end is gone (not for a full pipe).
        """
        if not self.pending:
            try:
                written = os.write(self.fd, data)
            except BlockingIOError:
                written = 0
            if written == len(data):
                return True
            self.loop.add_writer(self.fd, self._flush)
            data = data[written:]
        self.pending += data
        return False

    def _flush(self) -> None:
        with self._lock:
            try:
                written = os.write(self.fd, self.pending)
            except BlockingIOError:
                return
            except OSError:  # the reader is gone: its end of output reports it
                written = len(self.pending)
            del self.pending[:written]
            if not self.pending:
                self.loop.remove_writer(self.fd)
