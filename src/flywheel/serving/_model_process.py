"""Model calls in a process of their own, so the event loop never waits behind inference.

A scikit-learn pipeline spends milliseconds per call in Python (validation, a column
transformer's steps), holding the GIL. Run on the event loop, every request that becomes ready
meanwhile — a durable acknowledgement that just arrived, a response ready to go — waits for the
whole call; run in a thread, it holds the GIL just the same. In a process of its own the model
runs on another core, and the loop only parses, validates, logs and answers.

The worker gets the loaded :class:`~flywheel.serving.Served` once (pickled, over its pipe) and then
frames of validated rows; it predicts everything waiting in one call (sklearn's per-call cost is
paid once per group, not per request) and sends each request's labels and probabilities back.
If it dies, the requests waiting on it fail (503) and the next request starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from flywheel.errors import ModelError
from flywheel.prediction_log import PipeOut, pack_frame, take_frames, write_all

__all__ = ["ModelFailed", "ModelProcess", "ModelProcessGone", "main", "settle"]


class ModelProcessGone(ModelError):
    """The worker process stopped (its requests are answered 503; a new one is started)."""


class ModelFailed(ModelError):
    """The model raised on a request's rows: HTTP 422 when the rows are to blame, else 500.

    ``reason`` is the model's exception in one line (``ValueError: Input X contains infinity …``).
    A plain ``ValueError`` is what scikit-learn raises for values it cannot take (a number that
    overflows once scaled, a missing value with no imputer, an unknown category), so the request's
    rows are to blame (``by_input``); any other exception is the model's fault.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"the model failed on this request: {reason}")
        self.reason = reason
        self.by_input = reason.startswith("ValueError:")


Together = Callable[[], AbstractContextManager[Any]]
_READY = -1  # the sequence number of the worker's "model loaded" answer


def settle(fut: asyncio.Future[Any], then: Callable[..., Any], *args: Any) -> None:
    """Set ``fut`` to ``then(*args)``, or to the exception it raised."""
    try:
        fut.set_result(then(*args))
    except Exception as exc:
        fut.set_exception(exc)


class ModelProcess:
    """One worker process serving one model, driven from an event loop (no threads)."""

    def __init__(
        self,
        served: Any,
        loop: asyncio.AbstractEventLoop,
        search_path: list[str] | None = None,
        together: Together | None = None,
        nice: int = 5,
    ) -> None:
        self.served = served
        self.search_path = list(search_path or [])
        self.nice = nice  # added to the worker's niceness: higher yields the CPU sooner
        # Around the callbacks of the requests one read answers (the log sends their records in one
        # write: see PredictionLog.together).
        self.together = together or contextlib.nullcontext
        self._loop = loop
        # The worker unpickles the model: modules it needs from the project folder must import there.
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([*self.search_path, *filter(None, sys.path)])
        to_child, self._send_fd = os.pipe()
        self._recv_fd, from_child = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from flywheel.serving._model_process import main; main()",
                    str(to_child),
                    str(from_child),
                    f"{served.name}-v{served.version}",  # for ps and top: which model this process runs
                    str(nice),
                ],
                pass_fds=(to_child, from_child),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        finally:
            os.close(to_child)
            os.close(from_child)
        os.set_blocking(self._send_fd, False)
        os.set_blocking(self._recv_fd, False)
        self._out = PipeOut(loop, self._send_fd)
        self._in = bytearray()
        self._seq = 0
        self._waiting: dict[int, tuple[asyncio.Future[Any], Callable[..., Any]]] = {}
        self.alive = True
        self.ready: asyncio.Future[None] = loop.create_future()
        loop.add_reader(self._recv_fd, self._on_readable)
        self._send(pack_frame(served))

    @classmethod
    async def start(
        cls,
        served: Any,
        loop: asyncio.AbstractEventLoop,
        search_path: list[str] | None = None,
        timeout: float = 120.0,
        together: Together | None = None,
        nice: int = 5,
    ) -> ModelProcess:
        """A worker with ``served`` loaded (raises ModelError when it cannot load it)."""
        worker = cls(served, loop, search_path, together, nice)
        try:
            await asyncio.wait_for(asyncio.shield(worker.ready), timeout)
        except (TimeoutError, ModelError) as exc:
            worker.close()
            where = f"{served.name} v{served.version}"
            raise ModelError(f"{where}: the model process did not start ({exc})") from None
        return worker

    async def predict(self, rows: list[dict[str, Any]], then: Callable[..., Any]) -> Any:
        """``then(labels, probabilities)`` for validated rows, run the moment the worker answers."""
        return await self.ask(rows, then)

    def ask(self, rows: list[dict[str, Any]], then: Callable[..., Any]) -> asyncio.Future[Any]:
        """As :meth:`predict`, without waiting: the future of ``then``'s result (a shadow run's).

        Raises
        ------
        ModelProcessGone
            When the worker has stopped (nothing is sent).
        """
        if not self.alive:
            raise ModelProcessGone("the model process stopped")
        self._seq += 1
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._waiting[self._seq] = (fut, then)
        self._send(pack_frame((self._seq, rows)))
        return fut

    def retire(self, grace_s: float = 5.0) -> None:
        """Stop once idle, ``grace_s`` from now (a newer model took over): requests that picked this
        model just before the swap still get their answer from it."""

        def when_idle() -> None:
            if self._waiting:
                self._loop.call_later(0.5, when_idle)
            else:
                self.close()

        self._loop.call_later(grace_s, when_idle)

    def close(self) -> None:
        """End the worker's input; requests still waiting fail."""
        if not self.alive:
            return
        self.alive = False
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._recv_fd)
        with contextlib.suppress(Exception):
            self._loop.remove_writer(self._send_fd)
        for fd in (self._send_fd, self._recv_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fail(ModelProcessGone("the model process stopped"))
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    # --- the pipes ---------------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        with contextlib.suppress(OSError):  # the worker is gone: its end of output says so
            self._out.send(data)

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self._recv_fd, 1 << 20)
        except BlockingIOError:
            return
        if not chunk:
            code = self.proc.wait()
            self.close()
            if not self.ready.done():
                self.ready.set_exception(ModelError(f"exit code {code}"))
            return
        self._in += chunk
        with self.together():
            for seq, labels, proba, error in take_frames(self._in):
                if seq == _READY:
                    if not self.ready.done():
                        if error is None:
                            self.ready.set_result(None)
                        else:
                            self.ready.set_exception(ModelError(error))
                    continue
                waiting = self._waiting.pop(seq, None)
                if waiting is None or waiting[0].done():
                    continue
                fut, then = waiting
                if error is not None:
                    fut.set_exception(ModelFailed(error))
                    continue
                settle(fut, then, labels, proba)

    def _fail(self, error: Exception) -> None:
        waiting, self._waiting = self._waiting, {}
        for fut, _ in waiting.values():
            if not fut.done():
                fut.set_exception(error)


def main(argv: list[str] | None = None) -> int:
    """The worker: load the model sent first, then answer frames of rows until the input ends."""
    import signal

    from flywheel.serving._frames import _frame
    from flywheel.serving._served import _predict

    args = sys.argv[1:] if argv is None else argv
    in_fd, out_fd = int(args[0]), int(args[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the service stops us by closing the pipe
    # When cores are short, the event loop and the log's writer (short, latency-bound wake-ups) go
    # before inference (long, throughput-bound calls) rather than queueing behind it; a shadow's
    # inference, which no request waits for, goes after both (a larger increment).
    with contextlib.suppress(OSError, AttributeError, ValueError, IndexError):
        os.nice(int(args[3]) if len(args) > 3 else 5)
    buf = bytearray()
    served = None
    while True:
        chunk = os.read(in_fd, 1 << 20)
        if not chunk:
            return 0
        buf += chunk
        os.set_blocking(in_fd, False)
        with contextlib.suppress(BlockingIOError):  # everything already waiting joins this group
            while more := os.read(in_fd, 1 << 20):
                buf += more
        os.set_blocking(in_fd, True)
        requests = []
        try:
            messages = take_frames(buf)
        except Exception as exc:  # the model does not load here: the service says why, in one line
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            with contextlib.suppress(OSError):
                write_all(out_fd, pack_frame((_READY, None, None, reason)))
            return 1
        for message in messages:
            if served is None:
                served = message
                gc.collect()
                gc.freeze()  # the model lives as long as the worker: keep it out of full collections
                try:
                    write_all(out_fd, pack_frame((_READY, None, None, None)))
                except OSError:
                    return 0
            else:
                requests.append(message)
        if requests and served is not None:
            try:
                write_all(out_fd, b"".join(_answer(served, requests, _frame, _predict)))
            except OSError:  # the service is gone
                return 0


def _answer(
    served: Any, requests: list[tuple[int, list[dict[str, Any]]]], frame_of: Any, predict: Any
) -> list[bytes]:
    """The answer frames for requests predicted in one call; when the call fails, each request is
    tried alone, so one request's bad rows fail only that request."""
    rows = [row for _, batch in requests for row in batch]
    try:
        labels, proba = predict(served, frame_of(rows, served.schema.features))
    except Exception as exc:
        if len(requests) > 1:
            return [f for r in requests for f in _answer(served, [r], frame_of, predict)]
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return [pack_frame((seq, None, None, message)) for seq, _ in requests]
    out, start = [], 0
    for seq, batch in requests:
        end = start + len(batch)
        out.append(pack_frame((seq, labels[start:end], None if proba is None else proba[start:end], None)))
        start = end
    return out
