"""Executors for the many independent fits: local processes, or a Dask cluster.

Each rung or candidate is one :class:`Task` with a time budget. A task that
raises, dies or runs past its budget becomes an :class:`Outcome` with the
reason, and the others go on: a slow rung never holds the ladder hostage.

The local executor runs each task in its own process (from a fork server, so
no child inherits the parent's OpenMP or BLAS threads), at most ``workers`` at
a time, and terminates a process that runs past its budget. A task gets the
OpenMP/BLAS threads of its share of the cores: one each while the workers are
all busy, every core for a task that runs alone (boosted trees fit 1.8x faster
on two threads than on one), so a lone long fit does not leave cores idle. joblib's pools cannot stop one task
without stopping all of them, hence the small scheduler here. The Dask
executor submits the same tasks to a cluster (``flywheel[dask]``): one already
running (``dask://HOST:PORT``) or one started for the command (``dask:local``).
Tasks carry their own seeds, so results are identical whichever executor ran them.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import socket
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol, Self

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
    """Runs tasks and returns their outcomes in the tasks' order.

    An executor may also say ``same_machine = False`` when its tasks may run on other machines;
    timings that must be this machine's are then taken here (``flywheel.pipeline``).
    """

    def run(self, tasks: Sequence[Task], on_done: OnDone | None = None) -> list[Outcome]: ...


def _one_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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


class _Closing:
    """``with executor:`` closes it at the end, on error too."""

    def close(self) -> None:
        """Release what the executor holds (a local run leaves no process behind)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalExecutor(_Closing):
    """Each task in its own process, ``workers`` at a time, stopped when past its budget."""

    same_machine = True

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._paths: list[str] = []

    def _start(self, index: int, task: Task, sharing: int) -> _Running:
        """Start ``task`` in a process of its own, with the OpenMP/BLAS threads of the cores that
        ``sharing`` tasks (it included) leave it: all of them when it will run alone."""
        ctx = _context()
        parent, child = ctx.Pipe(duplex=False)
        threads = max(1, (os.cpu_count() or 1) // max(1, min(self.workers, sharing)))
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


def _run_on_worker(
    topic: str, index: int, fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]
) -> Any:
    """Run one task on a Dask worker: say that it started (its budget runs from here), time it."""
    from distributed import get_worker

    get_worker().log_event(topic, index)
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


_SCALARS = (str, bytes, int, float, bool, type(None))
_POLL_S = 0.05  # how often finished futures are looked for
_EVENTS_S = 0.5  # how often the scheduler is asked which tasks have started

_ALLOWED = (
    "'local' or dask://HOST:PORT (a running scheduler) or dask:local (a cluster of this machine's cores)"
)


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise FlywheelError(
            "the Dask executor needs the dask extra: pip install 'ml-flywheel[dask]'"
        ) from None
    return distributed


def _address(spec: str) -> tuple[str, int]:
    """``dask://HOST:PORT`` as (host, port); a malformed one is the one-line error listing the forms."""
    host, sep, port = spec.removeprefix("dask://").rpartition(":")
    host = host.strip("[]")  # an IPv6 address: dask://[::1]:8786
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise FlywheelError(f"--executor must be {_ALLOWED}; got {spec!r}")
    return host, int(port)


def _connect(spec: str, timeout_s: float = 3.0) -> Any:
    """A client of the scheduler at ``spec``, or the one line saying it cannot be reached.

    A plain TCP connection is tried first with a short timeout: a scheduler that is not there is
    known in seconds (Dask's own client would retry until its timeout), before anything is fitted.
    """
    distributed = _distributed()
    host, port = _address(spec)
    hint = "start one with `dask scheduler` (and `dask worker`), or use --executor dask:local"
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise FlywheelError(f"--executor: cannot reach a Dask scheduler at {spec} ({why}); {hint}") from None
    try:
        return distributed.Client(f"tcp://{host}:{port}", timeout="10s")
    except Exception as exc:  # something listens there, but it does not speak Dask
        why = _one_line(exc)
        raise FlywheelError(f"--executor: no Dask scheduler answered at {spec} ({why}); {hint}") from None


class DaskExecutor(_Closing):
    """Submit tasks to a Dask cluster: a ``distributed.Client``, ``dask://HOST:PORT``, or :meth:`local`.

    What the tasks' arguments hold (the dataset and split they share, each candidate) is scattered
    to the cluster once, not sent with every task. A task's budget runs from when a worker starts
    it, not from when it was submitted: on a small cluster most tasks wait for a free worker. A task
    past its budget is reported and released, but its worker thread finishes it in the background
    (Python cannot stop a thread), so a worker stays busy until then.

    ``same_machine`` says whether the workers are this machine's (:meth:`local`): where they may
    not be, latency is timed here rather than on the worker (see ``flywheel.pipeline``).
    """

    same_machine = False

    def __init__(self, address: Any) -> None:
        distributed = _distributed()
        self._cluster: Any = None
        if isinstance(address, distributed.Client):
            self.client, self._own = address, False
        else:
            self.client, self._own = _connect(str(address)), True

    @classmethod
    def local(cls, workers: int | None = None) -> DaskExecutor:
        """A ``distributed.LocalCluster`` of ``workers`` processes (default: one per core) for this
        executor's life: one thread each, no dashboard, listening on 127.0.0.1 only; :meth:`close`
        shuts it down."""
        distributed = _distributed()
        with _main_module_hidden():  # worker processes are spawned: they must not re-run a script
            cluster = distributed.LocalCluster(
                n_workers=max(1, workers or os.cpu_count() or 1),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,  # no dashboard; its HTTP routes on a free port, not on 8787
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                host="127.0.0.1",
                silence_logs=logging.CRITICAL,  # a failing task is an outcome, not a log on stderr
            )
        try:
            executor = cls(distributed.Client(cluster))
        except BaseException:
            cluster.close()
            raise
        executor._own, executor._cluster, executor.same_machine = True, cluster, True
        return executor

    def _scatter(self, tasks: Sequence[Task]) -> dict[int, Any]:
        """Scatter the objects the tasks' arguments hold to the cluster, each once: id -> future."""
        objects = {
            id(arg): arg
            for task in tasks
            if isinstance(task.fn, partial)
            for arg in (*task.fn.args, *task.fn.keywords.values())
            if not isinstance(arg, _SCALARS)
        }
        if not objects:
            return {}
        futures = self.client.scatter(list(objects.values()), hash=False)
        return dict(zip(objects, futures, strict=True))

    def _submit(self, task: Task, index: int, topic: str, shared: dict[int, Any]) -> Any:
        fn: Any = task.fn
        func, args, kwargs = fn, [], {}
        if isinstance(fn, partial):
            func = fn.func
            args = [shared.get(id(a), a) for a in fn.args]
            kwargs = {k: shared.get(id(v), v) for k, v in fn.keywords.items()}
        return self.client.submit(
            _run_on_worker, topic, index, func, args, kwargs, key=f"{topic}-{index}", pure=False
        )

    def run(self, tasks: Sequence[Task], on_done: OnDone | None = None) -> list[Outcome]:
        """Run every task on the cluster; outcomes come back in the tasks' order."""
        ship_project_modules()
        topic = f"flywheel-{uuid.uuid4().hex[:12]}"
        shared = self._scatter(tasks)
        futures = [self._submit(t, i, topic, shared) for i, t in enumerate(tasks)]
        try:
            return self._collect(tasks, futures, topic, on_done)
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    def _collect(
        self, tasks: Sequence[Task], futures: list[Any], topic: str, on_done: OnDone | None
    ) -> list[Outcome]:
        """Outcomes as futures finish, stopping the wait for any past its budget since it started."""
        outcomes: list[Outcome | None] = [None] * len(tasks)
        started: dict[int, float] = {}
        pending = set(range(len(tasks)))
        asked = time.perf_counter() - _EVENTS_S
        while pending:
            now = time.perf_counter()
            if now - asked >= _EVENTS_S:
                for _, index in self.client.get_events(topic):
                    started.setdefault(index, now)
                asked = now
            for i in sorted(pending):
                task, future = tasks[i], futures[i]
                if future.done():
                    outcome = _outcome(task, future)
                elif i in started and now - started[i] > task.budget_s:
                    future.cancel()
                    budget = f"ran past its time budget of {task.budget_s:g} s"
                    outcome = Outcome(task.name, error=budget, elapsed_s=now - started[i])
                else:
                    continue
                pending.discard(i)
                outcomes[i] = outcome
                if on_done:
                    on_done(outcome, len(tasks) - len(pending), len(tasks))
            if pending:
                time.sleep(_POLL_S)
        return [o for o in outcomes if o is not None]

    def close(self) -> None:
        """Close the client if this executor opened it, and shut down its own cluster."""
        if self._own:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def _outcome(task: Task, future: Any) -> Outcome:
    """A finished future's value and the time its worker spent on it, or the one-line reason."""
    try:
        value, elapsed = future.result()
    except Exception as exc:
        return Outcome(task.name, error=_one_line(exc))
    return Outcome(task.name, value=value, elapsed_s=elapsed)


def make_executor(spec: str | None, workers: int | None = None) -> LocalExecutor | DaskExecutor:
    """Where fits run, from ``--executor``: ``local`` (or nothing) -> local processes;
    ``dask:local`` -> a Dask cluster of this machine's cores for the command's life;
    ``dask://HOST:PORT`` -> a running Dask scheduler, reached before anything is fitted.

    Use the result as a context manager (or call ``close``), so a cluster it started is shut down.

    Raises
    ------
    FlywheelError
        For any other spec (the line lists the allowed forms), or a scheduler that cannot be reached.
    """
    if not spec or spec == "local":
        return LocalExecutor(workers)
    if spec == "dask:local":
        return DaskExecutor.local(workers)
    if spec.startswith("dask://"):
        return DaskExecutor(spec)
    raise FlywheelError(f"--executor must be {_ALLOWED}; got {spec!r}")
