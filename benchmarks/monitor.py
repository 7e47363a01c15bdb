"""`flywheel monitor` over a long prediction log, against one `pandas.read_sql` of the same log.

Target (DESIGN.md): 1,000,000 logged predictions x 30 features in under 30 s and 2 GB, and
incremental (a second run reads only what is new).

A project with 30 numeric features (``make_classification``, 3 classes, logistic regression as
champion) and a log of ``--rows`` predictions over 7 days, the last three with two features
shifted, written as the service writes them. Each round runs, in a turning order, with the
OpenMP/BLAS threads of every process pinned to one:

- the anchor end to end: ``python -c`` that reads the whole log with ``pandas.read_sql("SELECT *
  FROM predictions")`` and does nothing else;
- ``flywheel monitor DIR`` end to end from scratch (its kept totals deleted first, untimed: the
  whole log read) and again with nothing new (the incremental read);
- the library call, ``monitor(load_project(DIR))`` in this process, from scratch and with nothing
  new, against ``pandas.read_sql`` in this process.

Printed: median and range of each, the per-round ratios to the anchor, and the peak memory
(``ru_maxrss``) of the command and of the anchor's process. The default log has 100,000 rows so
that the script fits ``make bench`` (about a minute on 2 cores); the targets are judged only at
1,000,000 rows (``--rows 1000000``), not scaled: a first run has fixed costs (the command's
start-up, the reference built from the training data) that a linear scaling would misjudge.

Run: ``python benchmarks/monitor.py [--rows 1000000] [--rounds 3] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from _harness import Figures, judge, pinned
from _projects import FLYWHEEL, interleave_prepared, run_measured, trained_project, write_log
from sklearn.datasets import make_classification

FEATURES = 30
TARGET_S = 30.0
TARGET_MIB = 2048.0
PROJECT = """\
project: monitor-bench
data: {source: data.csv, target: label, split: {test: 0.2, valid: 0.2, seed: 0}}
objective: {optimize: accuracy}
diagnosis: {forecast: false}
models:
  - {name: logreg, estimator: sklearn.linear_model.LogisticRegression, params: {max_iter: 500}}
"""
READ_SQL = (
    "import sqlite3, sys; import pandas as pd; "
    "print(len(pd.read_sql('SELECT * FROM predictions', sqlite3.connect(sys.argv[1]))))"
)


def _setup(folder: Path, rows: int) -> Path:
    """The trained project with a log of ``rows`` predictions; prints the log's size."""
    x, y = make_classification(5000, FEATURES, n_informative=10, n_classes=3, random_state=0)
    names = [f"f{i}" for i in range(FEATURES)]
    data = pd.DataFrame(x, columns=names).assign(label=y)
    project = trained_project(folder / "project", PROJECT, {"data.csv": data})
    rng = np.random.default_rng(0)

    def chunk(start: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        pick = x[rng.integers(0, len(x), n)].copy()
        late = start + np.arange(n) > rows * 4 / 7  # the last 3 of 7 days: two features shifted
        pick[late, 0] += 1.5
        pick[late, 1] *= 2
        proba = rng.dirichlet(np.ones(3) * 2, size=n)
        return pick.round(6), proba.argmax(axis=1), proba, rng.gamma(2, 1.5, n)

    log = project / ".flywheel" / "predictions.db"
    size, took = write_log(log, rows, chunk, names, model="logreg", days=7)
    print(
        f"log: {rows:,} predictions x {FEATURES} features, {size / 2**20:,.0f} MiB (written in {took:.0f} s)"
    )
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="logged predictions (target: 1,000,000)")
    parser.add_argument("--rounds", type=int, default=3)
    Figures.add_arguments(parser)
    args = parser.parse_args()
    figures = Figures("monitor", args.json)
    with tempfile.TemporaryDirectory(prefix="flywheel-monitor-bench-") as tmp, pinned(1):
        project = _setup(Path(tmp), args.rows)
        log = project / ".flywheel" / "predictions.db"
        kept = project / ".flywheel" / "monitor"
        from flywheel.monitoring import monitor
        from flywheel.project import load_project

        peaks: dict[str, list[float]] = {"anchor": [], "whole": []}
        read: dict[str, int] = {}

        def read_sql_cli() -> None:
            ran = run_measured([sys.executable, "-c", READ_SQL, str(log)])
            assert int(ran.stdout) == args.rows, ran.stdout
            peaks["anchor"].append(ran.peak_mib)

        def monitor_cli(name: str) -> None:
            ran = run_measured([FLYWHEEL, "monitor", str(project)])
            got = re.search(r"([\d,]+) new log rows read", ran.stdout)
            assert got, ran.stdout
            read[name] = int(got.group(1).replace(",", ""))
            if name == "whole":
                peaks["whole"].append(ran.peak_mib)

        def monitor_lib(name: str) -> None:
            read[f"library {name}"] = monitor(load_project(project))["log"]["rows_read"]

        def read_sql_lib() -> None:
            with contextlib.closing(sqlite3.connect(log)) as conn:
                pd.read_sql("SELECT * FROM predictions", conn)

        # In the first round each "whole log" runs before its "nothing new" (the order as listed),
        # and every round after finds the totals of a whole run: "nothing new" reads no row.
        forget = lambda: shutil.rmtree(kept, ignore_errors=True)  # noqa: E731
        times = interleave_prepared(
            {
                "read_sql (command)": read_sql_cli,
                "monitor (command, whole log)": lambda: monitor_cli("whole"),
                "monitor (command, nothing new)": lambda: monitor_cli("nothing new"),
                "read_sql (library)": read_sql_lib,
                "monitor (library, whole log)": lambda: monitor_lib("whole"),
                "monitor (library, nothing new)": lambda: monitor_lib("nothing new"),
            },
            args.rounds,
            before={"monitor (command, whole log)": forget, "monitor (library, whole log)": forget},
        )
    expected = {"whole": args.rows, "nothing new": 0, "library whole": args.rows, "library nothing new": 0}
    if read != expected:
        raise SystemExit(f"rows read are not what a whole and an incremental run read: {read}")

    rows = f"{args.rows:,} rows"
    anchor = f"python -c pandas.read_sql of the log ({rows})"
    full = args.rows >= 1_000_000  # the targets are for 1,000,000 rows: judged there, not scaled
    unjudged = None if full else f"measured at {rows}: the target is judged with --rows 1000000"
    whole = times["monitor (command, whole log)"]
    met, note = judge(whole, TARGET_S) if full else (None, unjudged)
    figures.add(
        f"flywheel monitor DIR, whole log, {rows} x {FEATURES} features",
        whole,
        anchor=anchor,
        anchor_values=times["read_sql (command)"],
        target="< 30 s at 1,000,000 rows",
        met=met,
        note=note,
        judged=full,
    )
    met, note = judge(peaks["whole"], TARGET_MIB) if full else (None, unjudged)
    figures.add(
        f"flywheel monitor DIR, whole log, {rows}: peak memory",
        peaks["whole"],
        "MiB",
        anchor=f"{anchor}: its peak memory",
        anchor_values=peaks["anchor"],
        target="< 2,048 MiB at 1,000,000 rows",
        met=met,
        note=note,
        judged=full,
    )
    figures.add(
        "flywheel monitor DIR, nothing new (incremental)",
        times["monitor (command, nothing new)"],
        anchor=anchor,
        anchor_values=times["read_sql (command)"],
    )
    for part in ("whole log", "nothing new"):
        figures.add(
            f"monitor(load_project(DIR)), {part}, {rows}",
            times[f"monitor (library, {part})"],
            anchor="pandas.read_sql of the log, in process",
            anchor_values=times["read_sql (library)"],
        )
    figures.write()


if __name__ == "__main__":
    main()
