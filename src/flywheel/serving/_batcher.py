"""Predicting on the event loop: requests that arrive while the model is busy share one model call.

Used when the model runs in the service's own process (``--model-on-loop``, or when the model
process cannot start); the model process batches the same way on its side.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pandas as pd

from flywheel.serving._model_process import ModelFailed, Together, settle
from flywheel.serving._served import Served, _predict

__all__: list[str] = []

_Pending = tuple[Served, pd.DataFrame, asyncio.Future[Any], Callable[..., Any]]


class _Batcher:
    """Requests that arrive while the model is busy are predicted together, in one call.

    sklearn's per-call overhead (validation, a pipeline's steps) dwarfs the per-row cost, so
    under load one call for the rows of every waiting request multiplies capacity; with no load
    a request is predicted at once (no waiting window), so quiet-time latency is unchanged.
    """

    def __init__(
        self,
        max_rows: int = 4096,
        between: Callable[[], bool] | None = None,
        together: Together | None = None,
    ) -> None:
        self.max_rows = max_rows
        # Run between model calls: True when it made other work ready (durable acknowledgements),
        # which then goes first — a model call can take milliseconds.
        self.between = between
        self.together = together or contextlib.nullcontext  # around the callbacks of one call
        self._pending: list[_Pending] = []
        self._busy = False
        self._drainer: asyncio.Task[None] | None = None

    async def predict(self, served: Served, frame: pd.DataFrame, then: Callable[..., Any]) -> Any:
        """``then(labels, probabilities)``, run as soon as the model has answered (its result)."""
        return await self.ask(served, frame, then)

    def ask(self, served: Served, frame: pd.DataFrame, then: Callable[..., Any]) -> asyncio.Future[Any]:
        """As :meth:`predict`, without waiting: the future of ``then``'s result (a shadow run's)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append((served, frame, fut, then))
        if not self._busy:
            self._busy = True
            self._drainer = loop.create_task(self._drain())  # referenced: a task may not vanish midway
        return fut

    async def _drain(self) -> None:
        try:
            while self._pending:
                if self.between is not None and self.between():
                    await asyncio.sleep(0)
                    continue
                batch = self._take()
                for served in {id(b[0]): b[0] for b in batch}.values():  # one call per model (a reload)
                    self._call(served, [b for b in batch if b[0] is served])
        finally:
            self._busy = False

    def _take(self) -> list[_Pending]:
        """The waiting requests of the next call: at least one, then up to ``max_rows`` rows."""
        batch: list[_Pending] = []
        rows = 0
        while self._pending and (not batch or rows + len(self._pending[0][1]) <= self.max_rows):
            item = self._pending.pop(0)
            batch.append(item)
            rows += len(item[1])
        return batch

    def _call(self, served: Served, group: list[_Pending]) -> None:
        """One model call for the rows of ``group``; each request gets its slice (or the failure)."""
        frame = pd.concat([g[1] for g in group], ignore_index=True) if len(group) > 1 else group[0][1]
        try:
            labels, proba = _predict(served, frame)  # on the loop: no thread hand-off
        except Exception as exc:
            if len(group) > 1:  # one request's bad rows fail only that request
                for g in group:
                    self._call(served, [g])
                return
            failed = ModelFailed(f"{type(exc).__name__}: {exc}".splitlines()[0])
            if not group[0][2].done():
                group[0][2].set_exception(failed)
            return
        start = 0
        with self.together():
            for g in group:
                end = start + len(g[1])
                if not g[2].done():
                    part = None if proba is None else proba[start:end]
                    settle(g[2], g[3], labels[start:end], part)
                start = end
