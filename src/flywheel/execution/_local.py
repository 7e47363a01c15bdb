"""The local executor: each task in a process of its own from a fork server, stopped past its budget."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import cloudpickle

from flywheel.execution._tasks import Closing, OnDone, Outcome, Task, one_line

__all__ = ["LocalExecutor", "main_module_hidden", "ship_project_modules"]


def _child(conn: Connection, payload: bytes, threads: int, paths: Sequence[str] = ()) -> None:
    try:
        sys.path[:0] = paths  # the project's own modules import here as they did in the parent
        from threadpoolctl import threadpool_limits

        task = cloudpickle.loads(payload)
        # Tasks share the cores: each gets its share of OpenMP/BLAS threads, not all of them.
        with threadpool_limits(limits=threads):
            value = task.fn()
        conn.send(("ok", value))
    except BaseException as exc:
        try:
            conn.send(("error", one_line(exc)))
        except Exception:
            conn.send(("error", traceback.format_exception_only(type(exc), exc)[-1].strip()))
    finally:
        conn.close()


_PRELOAD = ["flywheel.pipeline"]


def _context() -> Any:
    """A fork server where there is one, else spawn: never a bare fork.

    Forking a process whose OpenMP (boosted trees) or BLAS threads have started
    can deadlock the child; a fork server forks from a clean, single-threaded
    process that already has flywheel and its libraries imported.
    """
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        return ctx
    return mp.get_context("spawn")


def ship_project_modules() -> None:
    """Send the project's own modules (rules, factories) by value with the tasks.

    Another machine cannot import ``my_rules`` from the project folder.
    """
    from flywheel.project import PROJECT_MODULES

    for name in sorted(PROJECT_MODULES):
        module = sys.modules.get(name)
        if module is not None:
            cloudpickle.register_pickle_by_value(module)


def _project_module_paths() -> list[str]:
    """The folders the project's own modules come from, for a local child to import them from.

    Why by reference and not by value, as for a cluster: a class shipped by value is rebuilt in
    the child as a class of its own, which plain pickle cannot then find under its module's name —
    and a fitted model of a project's own class is pickled as the run's artifact. So local
    children import the project's modules from where the parent did.
    """
    from flywheel.project import PROJECT_MODULES

    registered = cloudpickle.list_registry_pickle_by_value()
    paths: list[str] = []
    for name in sorted(PROJECT_MODULES):
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if module is None or not file:
            continue
        if name in registered:  # a cluster run in this process shipped it by value
            cloudpickle.unregister_pickle_by_value(module)
        folder = os.path.dirname(os.path.abspath(file))
        if os.path.basename(file) == "__init__.py":  # a package: its parent is what imports it
            folder = os.path.dirname(folder)
        if folder not in paths:
            paths.append(folder)
    return paths


@dataclass
class _Running:
    index: int
    task: Task
    process: Any
    conn: Connection
    started: float


@contextlib.contextmanager
def main_module_hidden() -> Iterator[None]:
    """Keep a new process from re-running the caller's script.

    A spawned or fork-server child imports ``__main__`` again, which re-runs a
    script that lacks an ``if __name__ == "__main__"`` guard (and fails). The task
    travels fully pickled (cloudpickle sends functions from ``__main__`` by
    value), so the child never needs the caller's script.
    """
    main = sys.modules.get("__main__")
    saved = {name: getattr(main, name) for name in ("__file__", "__spec__") if hasattr(main, name)}
    try:
        if main is not None:
            if "__file__" in saved:
                delattr(main, "__file__")
            main.__spec__ = None
        yield
    finally:
        for name, value in saved.items():
            setattr(main, name, value)


class LocalExecutor(Closing):
    """Each task in its own process, ``workers`` at a time, stopped when past its budget."""

    same_machine = True

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._paths: list[str] = []

    @staticmethod
    def warm_up() -> None:
        """Start the fork server now, so its imports overlap the caller's own work.

        The fork server imports flywheel's pipeline with scikit-learn before it forks the first
        task (1.7 s on 2 cores); started when the first task is, that is 1.7 s of a small
        ladder's 4.9 s spent waiting. Started at a command's beginning, it imports while the
        command imports and loads its data. Idempotent; a no-op where there is no fork server.
        """
        ctx = _context()
        if ctx.get_start_method() != "forkserver":
            return
        from multiprocessing import forkserver

        with main_module_hidden():
            forkserver.ensure_running()

    def _start(self, index: int, task: Task, sharing: int) -> _Running:
        """Start ``task`` in a process of its own, with the OpenMP/BLAS threads of the cores that
        ``sharing`` tasks (it included) leave it: all of them when it will run alone."""
        ctx = _context()
        parent, child = ctx.Pipe(duplex=False)
        threads = max(1, (os.cpu_count() or 1) // max(1, min(self.workers, sharing)))
        args = (child, cloudpickle.dumps(task), threads, self._paths)
        process = ctx.Process(target=_child, args=args, daemon=True)
        with main_module_hidden():
            process.start()
        child.close()
        return _Running(index, task, process, parent, time.perf_counter())

    @staticmethod
    def _finish(run: _Running, error: str | None = None) -> Outcome:
        elapsed = time.perf_counter() - run.started
        if error is None:
            try:
                status, payload = run.conn.recv()
            except (EOFError, OSError):
                run.process.join(timeout=5)
                status, payload = "error", f"the process died (exit code {run.process.exitcode})"
        else:
            status, payload = "error", error
        run.conn.close()
        run.process.join(timeout=5)
        if run.process.is_alive():
            run.process.kill()
        if status == "ok":
            return Outcome(run.task.name, value=payload, elapsed_s=elapsed)
        return Outcome(run.task.name, error=str(payload), elapsed_s=elapsed)

    def run(self, tasks: Sequence[Task], on_done: OnDone | None = None) -> list[Outcome]:
        """Run every task; outcomes come back in the tasks' order."""
        self._paths = _project_module_paths()
        outcomes: list[Outcome | None] = [None] * len(tasks)
        pending = list(enumerate(tasks))
        running: list[_Running] = []
        done = 0
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    index, task = pending.pop(0)
                    running.append(self._start(index, task, len(running) + 1 + len(pending)))
                now = time.perf_counter()
                deadline = min(r.started + r.task.budget_s for r in running)
                ready = wait([r.conn for r in running], timeout=max(0.0, deadline - now))
                still: list[_Running] = []
                for r in running:
                    if r.conn in ready:
                        outcome = self._finish(r)
                    elif time.perf_counter() - r.started > r.task.budget_s:
                        r.process.terminate()
                        outcome = self._finish(r, f"ran past its time budget of {r.task.budget_s:g} s")
                    else:
                        still.append(r)
                        continue
                    outcomes[r.index] = outcome
                    done += 1
                    if on_done:
                        on_done(outcome, done, len(tasks))
                running = still
        finally:
            for r in running:  # interrupted: leave no process behind
                r.process.kill()
                r.conn.close()
        return [o for o in outcomes if o is not None]
