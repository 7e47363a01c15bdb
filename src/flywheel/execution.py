"""Executors for the many independent fits: local processes, or a Dask cluster.

Each rung or candidate is one :class:`Task` with a time budget. A task that
raises, dies or runs past its budget becomes an :class:`Outcome` with the
reason, and the others go on: a slow rung never holds the ladder hostage.

The local executor runs each task in its own process (from a fork server, so
no child inherits the parent's OpenMP or BLAS threads), at most ``workers`` at
a time, and terminates a process that runs past its budget. joblib's pools cannot stop one task
without stopping all of them, hence the small scheduler here. The Dask
executor submits the same tasks to a cluster (``flywheel[dask]``). Tasks
carry their own seeds, so results are identical whichever executor ran them.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

import cloudpickle

from flywheel.errors import FlywheelError

__all__ = [
    "DaskExecutor",
    "Executor",
    "LocalExecutor",
    "Outcome",
    "Task",
    "make_executor",
    "ship_project_modules",
]


@dataclass(frozen=True)
class Task:
    """One independent unit of work: a name, a function of no arguments, and a time budget."""

    name: str
    fn: Callable[[], Any]
    budget_s: float


@dataclass(frozen=True)
class Outcome:
    """A task's value, or the one-line reason it has none."""

    name: str
    value: Any = None
    error: str | None = None
    elapsed_s: float = 0.0


OnDone = Callable[[Outcome, int, int], None]


class Executor(Protocol):
    """Runs tasks and returns their outcomes in the tasks' order."""

    def run(self, tasks: Sequence[Task], on_done: OnDone | None = None) -> list[Outcome]: ...


def _one_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _child(conn: Connection, payload: bytes, threads: int, paths: Sequence[str] = ()) -> None:
    try:
        sys.path[:0] = paths  # the project's own modules import here as they did in the parent
        from threadpoolctl import threadpool_limits

        task = cloudpickle.loads(payload)
        # Workers share the cores: each gets its share of OpenMP/BLAS threads, not all of them.
        with threadpool_limits(limits=threads):
            value = task.fn()
        conn.send(("ok", value))
    except BaseException as exc:
        try:
            conn.send(("error", _one_line(exc)))
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
def _main_module_hidden() -> Iterator[None]:
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


class LocalExecutor:
    """Each task in its own process, ``workers`` at a time, stopped when past its budget."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._paths: list[str] = []

    def _start(self, index: int, task: Task) -> _Running:
        ctx = _context()
        parent, child = ctx.Pipe(duplex=False)
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        args = (child, cloudpickle.dumps(task), threads, self._paths)
        process = ctx.Process(target=_child, args=args, daemon=True)
        with _main_module_hidden():
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
                    running.append(self._start(index, task))
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


def _run_task(task: Task) -> Any:
    return task.fn()


class DaskExecutor:
    """Submit tasks to a Dask cluster (``dask://HOST:PORT`` or a ``distributed.Client``)."""

    def __init__(self, address: Any) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise FlywheelError(
                "the Dask executor needs the dask extra: pip install 'ml-flywheel[dask]'"
            ) from None
        if isinstance(address, Client):
            self.client, self._own = address, False
        else:
            target = str(address).removeprefix("dask://")
            try:
                self.client, self._own = Client(f"tcp://{target}", timeout="10s"), True
            except (OSError, TimeoutError) as exc:
                raise FlywheelError(f"--executor: cannot reach a Dask scheduler at {target}: {exc}") from None

    def run(self, tasks: Sequence[Task], on_done: OnDone | None = None) -> list[Outcome]:
        """Run every task on the cluster; a task past its budget is cancelled and reported."""
        from distributed import TimeoutError as DaskTimeout

        ship_project_modules()
        started = time.perf_counter()
        futures = [
            self.client.submit(_run_task, t, key=f"flywheel-{t.name}-{i}-{started}", pure=False)
            for i, t in enumerate(tasks)
        ]
        outcomes: list[Outcome] = []
        for i, (task, future) in enumerate(zip(tasks, futures, strict=True)):
            remaining = max(0.0, started + task.budget_s - time.perf_counter())
            try:
                value = future.result(timeout=remaining)
                outcome = Outcome(task.name, value=value, elapsed_s=time.perf_counter() - started)
            except (DaskTimeout, TimeoutError):
                future.cancel()
                outcome = Outcome(task.name, error=f"ran past its time budget of {task.budget_s:g} s")
            except Exception as exc:
                outcome = Outcome(task.name, error=_one_line(exc))
            outcomes.append(outcome)
            if on_done:
                on_done(outcome, i + 1, len(tasks))
        return outcomes

    def close(self) -> None:
        """Close the client if this executor opened it."""
        if self._own:
            self.client.close()


def make_executor(spec: str | None, workers: int | None = None) -> Executor:
    """``None`` or ``local`` -> local processes; ``dask://HOST:PORT`` -> a Dask cluster."""
    if spec in (None, "", "local"):
        return LocalExecutor(workers)
    assert spec is not None
    if spec.startswith("dask://"):
        return DaskExecutor(spec)
    raise FlywheelError(f"--executor must be 'local' or dask://HOST:PORT; got {spec!r}")
