"""The Dask executor: the same tasks on a cluster, one already running or one started for the command."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from flywheel.errors import FlywheelError
from flywheel.execution._local import LocalExecutor, main_module_hidden, ship_project_modules
from flywheel.execution._tasks import Closing, OnDone, Outcome, Task, one_line

__all__ = ["DaskExecutor", "make_executor"]


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
        why = one_line(exc)
        raise FlywheelError(f"--executor: no Dask scheduler answered at {spec} ({why}); {hint}") from None


class DaskExecutor(Closing):
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
        with main_module_hidden():  # worker processes are spawned: they must not re-run a script
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
        return Outcome(task.name, error=one_line(exc))
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
