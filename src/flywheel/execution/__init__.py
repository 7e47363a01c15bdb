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

from flywheel.execution._dask import DaskExecutor, make_executor
from flywheel.execution._local import LocalExecutor, ship_project_modules
from flywheel.execution._tasks import Executor, Outcome, Task

__all__ = [
    "DaskExecutor",
    "Executor",
    "LocalExecutor",
    "Outcome",
    "Task",
    "make_executor",
    "ship_project_modules",
]
