"""`flywheel monitor` over a long prediction log, against one `pandas.read_sql` of the same log.

A project with 30 numeric features (``make_classification``, 3 classes, logistic regression as
champion) and a log of 1,000,000 predictions over 7 days, the last three with two features shifted.
Each round, in turn: the anchor (``pandas.read_sql("SELECT * FROM predictions")``: reading the log
and nothing else), `flywheel monitor` from scratch (its totals deleted: the whole log parsed),
and `flywheel monitor` again (nothing new: the incremental read). Printed: median and range of
each, the ratios to the anchor, and each process's peak memory (target: from scratch under 30 s
and under 2 GB). Run: ``python benchmarks/monitor.py [--rows 1000000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

from flywheel.prediction_log import connect

FLYWHEEL = Path(sys.executable).parent / "flywheel"
FEATURES = 30
PROJECT = """\
project: monitor-bench
data: {source: data.csv, target: label, split: {test: 0.2, valid: 0.2, seed: 0}}
objective: {optimize: accuracy}
models:
  - {name: logreg, estimator: sklearn.linear_model.LogisticRegression, params: {max_iter: 500}}
"""

_ANCHOR = """
import resource, sqlite3, sys, time
import pandas as pd
start = time.perf_counter()
conn = sqlite3.connect(sys.argv[1])
frame = pd.read_sql("SELECT * FROM predictions", conn)
print(time.perf_counter() - start, len(frame), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

_MONITOR = """
import resource, sys, time
from flywheel.monitoring import monitor
from flywheel.project import load_project
start = time.perf_counter()
result = monitor(load_project(sys.argv[1]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(time.perf_counter() - start, result["log"]["rows_read"], peak)
"""


def _project(folder: Path) -> tuple[Path, np.ndarray]:
    x, y = make_classification(5000, FEATURES, n_informative=10, n_classes=3, random_state=0)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(FEATURES)]).assign(label=y)
    frame.to_csv(folder / "data.csv", index=False)
    (folder / "flywheel.yaml").write_text(PROJECT)
    for cmd in (["run", "."], ["promote", "logreg", ".", "--force"]):
        done = subprocess.run([str(FLYWHEEL), *cmd], cwd=folder, capture_output=True, text=True)
        if done.returncode not in (0, 1, 3):
            raise SystemExit(f"flywheel {' '.join(cmd)} failed: {done.stderr}")
    return folder, x


def _log(folder: Path, x: np.ndarray, rows: int) -> Path:
    """``rows`` predictions over 7 days, the last 3 with two features shifted, written as the writer does."""
    rng = np.random.default_rng(0)
    path = folder / ".flywheel" / "predictions.db"
    connect(path).close()  # the log's own tables
    conn = sqlite3.connect(path)
    start = time.time() - 7 * 86_400
    names = [f"f{i}" for i in range(FEATURES)]
    for chunk in range(0, rows, 100_000):
        n = min(100_000, rows - chunk)
        pick = x[rng.integers(0, len(x), n)].copy()
        at = start + (chunk + np.arange(n)) * (7 * 86_400 / rows)
        late = at > start + 4 * 86_400
        pick[late, 0] += 1.5
        pick[late, 1] *= 2
        proba = rng.dirichlet(np.ones(3) * 2, size=n)
        batch = [
            (
                uuid.uuid4().hex,
                float(at[i]),
                "logreg",
                1,
                json.dumps(dict(zip(names, pick[i].round(6).tolist(), strict=True))),
                json.dumps(int(proba[i].argmax())),
                json.dumps({str(k): float(p) for k, p in enumerate(proba[i])}),
                float(rng.gamma(2, 1.5)),
            )
            for i in range(n)
        ]
        conn.executemany("INSERT INTO predictions VALUES (?,?,?,?,?,?,?,?)", batch)
        conn.commit()
    conn.close()
    return path


def _timed(code: str, arg: Path) -> tuple[float, int, float]:
    done = subprocess.run([sys.executable, "-c", code, str(arg)], capture_output=True, text=True, check=True)
    seconds, rows, peak_kb = done.stdout.split()[-3:]
    return float(seconds), int(rows), int(peak_kb) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, x = _project(Path(tmp))
        made = time.perf_counter()
        log = _log(folder, x, args.rows)
        print(
            f"log: {args.rows:,} predictions × {FEATURES} features, {log.stat().st_size / 2**20:,.0f} MiB "
            f"(written in {time.perf_counter() - made:.0f} s)"
        )
        figures: dict[str, list[tuple[float, int, float]]] = {
            "read_sql": [],
            "monitor (whole log)": [],
            "monitor (nothing new)": [],
        }
        for _ in range(args.rounds):
            figures["read_sql"].append(_timed(_ANCHOR, log))
            shutil.rmtree(folder / ".flywheel" / "monitor", ignore_errors=True)
            figures["monitor (whole log)"].append(_timed(_MONITOR, folder))
            figures["monitor (nothing new)"].append(_timed(_MONITOR, folder))
    anchor = statistics.median(t for t, _, _ in figures["read_sql"])
    print(f"{args.rounds} interleaved rounds, {os.cpu_count()} cores: median (range), peak memory")
    for name, runs in figures.items():
        times = [t for t, _, _ in runs]
        med = statistics.median(times)
        peak = max(p for _, _, p in runs)
        print(
            f"{name:>22}: {med:6.2f} s ({min(times):.2f}–{max(times):.2f}) = {med / anchor:5.2f}× read_sql, "
            f"rows read {runs[-1][1]:,}, peak {peak:,.0f} MiB"
        )
    whole = statistics.median(t for t, _, _ in figures["monitor (whole log)"])
    peak = max(p for _, _, p in figures["monitor (whole log)"])
    print(f"target: whole log under 30 s and 2,048 MiB: {'met' if whole < 30 and peak < 2048 else 'NOT met'}")


if __name__ == "__main__":
    main()
