"""The service's state: the served model in one reference, swapped whole, and the watcher thread
that follows the alias and swaps in the model it points at next.

A request takes the reference once, so it is answered wholly by the old model or wholly by the
new one, and no request fails because of a reload.

The second model of ``--shadow``/``--pilot`` (``second``) is fixed for the service's life: the
watcher never moves it, so the comparison it feeds has one challenger throughout. When a promotion
makes the served model the same as the second one, both keep running and both are logged.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from flywheel.errors import ModelError
from flywheel.evaluation import load_model
from flywheel.project import Project
from flywheel.serving._metrics import _Metrics
from flywheel.serving._model_process import ModelProcess, Together
from flywheel.serving._options import ServeOptions
from flywheel.serving._served import Served, serving

if TYPE_CHECKING:
    from flywheel.registry import Store

__all__: list[str] = []

_SHADOW_NICE = 15  # the --shadow model's process: after the answering one (5) whenever both want a core


class _State:
    """The served model (one reference, swapped whole) and the watcher that follows the alias."""

    def __init__(
        self,
        project: Project,
        served: Served,
        options: ServeOptions,
        metrics: _Metrics,
        together: Together | None = None,
        second: Served | None = None,
    ) -> None:
        self.project = project
        self.together = together
        self.metrics = metrics
        # The model and the process that runs it, swapped together in one assignment.
        self.serving: tuple[Served, ModelProcess | None] = (served, None)
        # The shadow or pilot model and its process (None: on the loop), never swapped by the watcher.
        self.second: tuple[Served, ModelProcess | None] | None = None if second is None else (second, None)
        self.options = options
        self.loop: asyncio.AbstractEventLoop | None = None
        self._reviving: set[str] = set()  # the slots ("serving", "second") whose process is restarting
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="flywheel-reload", daemon=True)

    @property
    def current(self) -> Served:
        return self.serving[0]

    async def start(self) -> None:
        """Start the model process (when one is wanted) and the watcher; on the running loop."""
        self.loop = asyncio.get_running_loop()
        if self.options.model_process:
            served = self.serving[0]
            self.serving = (served, await self._runner(served))
            if self.second is not None:
                # A shadow's answers wait for nobody: on a busy machine its process yields the CPU
                # to the one that answers. A pilot answers requests, so it runs as the served model.
                nice = 5 if self.options.pilot is not None else _SHADOW_NICE
                self.second = (self.second[0], await self._runner(self.second[0], nice))
        self._thread.start()

    async def _runner(self, served: Served, nice: int = 5) -> ModelProcess | None:
        """A model process for ``served``; None (predict on the loop) when one cannot start."""
        try:
            loop = asyncio.get_running_loop()
            return await ModelProcess.start(
                served, loop, [str(self.project.root)], together=self.together, nice=nice
            )
        except ModelError as exc:
            print(f"flywheel serve: {exc}; predicting on the event loop", file=sys.stderr, flush=True)
            return None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for slot in (self.serving, self.second):
            if slot is not None and slot[1] is not None:
                slot[1].close()

    def _slot(self, runner: ModelProcess) -> str | None:
        """Which model ``runner`` runs now: "serving", "second", or None (a retired one)."""
        if self.serving[1] is runner:
            return "serving"
        if self.second is not None and self.second[1] is runner:
            return "second"
        return None

    def revive(self, runner: ModelProcess) -> None:
        """A model process died: start another for the same model (once, in the background)."""
        slot = self._slot(runner)
        if runner.alive or slot is None or slot in self._reviving or self.loop is None:
            return
        self._reviving.add(slot)

        async def again() -> None:
            try:
                loop = asyncio.get_running_loop()
                fresh = await ModelProcess.start(
                    runner.served, loop, runner.search_path, together=runner.together, nice=runner.nice
                )
                if self._slot(runner) == "serving":
                    self.serving = (runner.served, fresh)
                elif self._slot(runner) == "second":
                    self.second = (runner.served, fresh)
                else:
                    fresh.close()
            except Exception as exc:
                print(f"flywheel serve: the model process cannot restart: {exc}", file=sys.stderr, flush=True)
            finally:
                self._reviving.discard(slot)

        self.loop.create_task(again())

    def _watch(self) -> None:
        from flywheel.registry import project_store, store_location

        store = project_store(self.project, create=False)
        where = store_location(self.project)  # a PostgreSQL store has no file to stat: it is asked
        seen = _store_signature(where)
        try:
            while not self._stop.wait(self.options.reload_s):
                # A query every second takes the GIL from the request path for a few milliseconds
                # (SQLAlchemy's Python); for a file store, stat() says first whether anything changed.
                now = _store_signature(where)
                if now is not None and now == seen:
                    continue
                seen = now
                try:
                    self._follow(store)
                except Exception as exc:  # keep serving the model we have
                    self.metrics.reload_errors += 1
                    print(f"flywheel serve: reload failed, still serving: {exc}", file=sys.stderr, flush=True)
        finally:
            store.close()

    def _follow(self, store: Store) -> None:
        """Swap in the model the alias points at now, when it is another one (ready before the swap)."""
        entry = store.get_alias(self.project.project, self.options.alias)
        if entry is None or int(entry["id"]) == self.current.model_id:
            return
        fresh = serving(load_model(self.project, entry, self.options.alias))
        gc.freeze()  # the new model lives as long as the old one did (see _app._settle_heap)
        runner = None
        if self.options.model_process and self.loop is not None:  # ready before the swap
            started = self._runner(fresh)
            runner = asyncio.run_coroutine_threadsafe(started, self.loop).result(timeout=300)
        old = self.serving[1]
        self.serving = (fresh, runner)  # one assignment: requests see the old or the new
        if old is not None and self.loop is not None:
            self.loop.call_soon_threadsafe(old.retire)  # after its requests in flight
        self.metrics.reloads += 1
        print(
            f"flywheel serve: {self.options.alias} is now {fresh.name} v{fresh.version}",
            file=sys.stderr,
            flush=True,
        )


def _store_signature(location: str | Path) -> tuple[tuple[int, int], ...] | None:
    """Modification times and sizes of a SQLite store's files (None for a database URL)."""
    from flywheel.registry import store_file

    path = store_file(location)
    if path is None:
        return None
    signature = []
    for file in (path, path.with_name(path.name + "-wal")):
        try:
            st = file.stat()
            signature.append((st.st_mtime_ns, st.st_size))
        except OSError:
            signature.append((0, -1))
    return tuple(signature)
