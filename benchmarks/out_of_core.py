"""Out-of-core scoring of a Parquet data set, against one read of the same columns.

There is no command for it: what a user runs is the library call, ``score_dataset``. Target
(README): 100,000,000 rows scored with accuracy, f1_macro, roc_auc and log_loss and their
1,000-resample intervals in under 2 GB of memory.

``--rows`` rows (default 40,000,000, so that the script fits ``make bench``: about a minute on 2
cores) of a binary task, (label int64, prediction int64, score float64) with every score distinct
(the hard case for ROC AUC: all of them are needed), written to a temporary folder in files of at
most 10M rows and row groups of 1M rows, one chunk at a time (the writer holds one chunk). Each
round, in a turning order, each side in a process of its own with ``--threads`` threads per
library (pyarrow's pools and OpenMP/BLAS, the same for both: 2 by default, the cores of the
machine the README's figures come from): the anchor (pyarrow reads the three columns in batches
of ``--batch-rows`` rows, file by file as ``score_dataset`` does, and does nothing else), and
``score_dataset`` (classes inferred by a first pass over the label column), each timed inside its
process. Printed: median and range of each, of the per-round ratio to the anchor, of each
process's peak memory (its ``VmHWM``), and of the spill files' peak size (polled) against the
data's size on disk; then the estimates. The memory target is judged only at 100,000,000 rows
(``--rows 100000000``).

Run: ``python benchmarks/out_of_core.py [--rows 100000000] [--rounds 3] [--batch-rows 1000000]
[--threads 2] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _harness import Figures, interleave, judge, pinned

METRICS = ["accuracy", "f1_macro", "roc_auc", "log_loss"]
CHUNK = 1_000_000
FILE_ROWS = 10_000_000
TARGET_MIB = 2048.0

_PIN = """
import sys, time, json
import pyarrow as pa
pa.set_cpu_count(int(sys.argv[3])); pa.set_io_thread_count(int(sys.argv[3]))

def peak_kib():  # this process's own high-water mark (ru_maxrss would include its parent's at spawn)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
"""

_ANCHOR = (
    _PIN
    + """
import pyarrow.dataset as ds
import pyarrow.parquet as pq
start = time.perf_counter()
rows = 0
columns, size = ["label", "prediction", "score"], int(sys.argv[2])
for path in ds.dataset(sys.argv[1], format="parquet").files:  # as score_dataset reads them
    with pq.ParquetFile(path) as f:
        for batch in f.iter_batches(batch_size=size, columns=columns):
            rows += batch.num_rows
seconds = time.perf_counter() - start
print(json.dumps({"s": seconds, "rows": rows, "peak": peak_kib()}))
"""
)

_SCORE = (
    _PIN
    + """
from flywheel.metrics import score_dataset
start = time.perf_counter()
got = score_dataset(sys.argv[1], label="label", prediction="prediction", scores="score",
                    metrics=METRICS, batch_rows=int(sys.argv[2]))
seconds = time.perf_counter() - start
out = {k: [e.value, e.low, e.high, e.note] for k, e in got.items()}
print(json.dumps({"s": seconds, "rows": got["accuracy"].n, "peak": peak_kib(), "estimates": out}))
"""
).replace("METRICS", repr(METRICS))


def _write(folder: Path, rows: int) -> int:
    """``rows`` rows in files of FILE_ROWS, row groups of CHUNK; returns the bytes written."""
    rng = np.random.default_rng(0)
    schema = pa.schema([("label", pa.int64()), ("prediction", pa.int64()), ("score", pa.float64())])
    for first in range(0, rows, FILE_ROWS):
        with pq.ParquetWriter(folder / f"part-{first // FILE_ROWS:04d}.parquet", schema) as writer:
            for start in range(first, min(first + FILE_ROWS, rows), CHUNK):
                n = min(CHUNK, rows - start)
                label = rng.integers(0, 2, n)
                score = 1 / (1 + np.exp(-(1.6 * (2 * label - 1) + 1.5 * rng.normal(size=n))))
                prediction = (score > 0.5).astype(np.int64)
                writer.write_table(
                    pa.table({"label": label, "prediction": prediction, "score": score}, schema=schema)
                )
    return sum(p.stat().st_size for p in folder.iterdir())


def _size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # a spill file removed while we looked
                total += (Path(root) / name).stat().st_size
    return total


def _run(code: str, data: Path, batch_rows: int, threads: int, spill: Path) -> tuple[dict, int]:
    """The child's JSON line and the peak size of its temporary folder (where the spill files go)."""
    env = {**os.environ, "TMPDIR": str(spill)}  # the thread variables: set by ``pinned``
    args = [sys.executable, "-c", code, str(data), str(batch_rows), str(threads)]
    child = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_disk = 0
    while child.poll() is None:
        peak_disk = max(peak_disk, _size(spill))
        time.sleep(0.2)
    out, err = child.communicate()
    if child.returncode:
        raise SystemExit(f"child failed: {err}")
    return json.loads(out.strip().splitlines()[-1]), peak_disk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000_000, help="rows (the target: 100,000,000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2, help="threads per library, both sides")
    Figures.add_arguments(parser)
    args = parser.parse_args()
    figures = Figures("out_of_core", args.json)
    runs: dict[str, list[tuple[dict, int]]] = {"read": [], "score": []}
    with tempfile.TemporaryDirectory(prefix="flywheel-ooc-") as tmp, pinned(args.threads):
        data, spill = Path(tmp) / "data", Path(tmp) / "spill"
        data.mkdir()
        spill.mkdir()
        made = time.perf_counter()
        size = _write(data, args.rows)
        took = time.perf_counter() - made
        print(f"data: {args.rows:,} rows, {size / 2**20:,.0f} MiB of Parquet (written in {took:.0f} s)")
        interleave(
            {
                name: lambda name=name, code=code: runs[name].append(
                    _run(code, data, args.batch_rows, args.threads, spill)
                )
                for name, code in (("read", _ANCHOR), ("score", _SCORE))
            },
            args.rounds,
        )
    for name, got in runs.items():
        if any(r["rows"] != args.rows for r, _ in got):
            raise SystemExit(f"{name} did not read every row: {[r['rows'] for r, _ in got]}")

    rows = f"{args.rows:,} rows"
    print(
        f"{args.rounds} interleaved rounds, each side a process of its own with {args.threads} threads "
        f"per library (pyarrow, OpenMP/BLAS), {args.batch_rows:,}-row batches"
    )
    full = args.rows >= 100_000_000
    unjudged = None if full else f"measured at {rows}: the target is judged with --rows 100000000"
    read = f"pyarrow reading the 3 columns in the same batches ({rows})"
    figures.add(
        f"score_dataset, {len(METRICS)} metrics + 1,000-resample intervals, {rows}",
        [r["s"] for r, _ in runs["score"]],
        anchor=read,
        anchor_values=[r["s"] for r, _ in runs["read"]],
    )
    peaks = [r["peak"] / 1024 for r, _ in runs["score"]]
    met, note = judge(peaks, TARGET_MIB) if full else (None, unjudged)
    figures.add(
        f"score_dataset peak memory, {rows}",
        peaks,
        "MiB",
        anchor=f"{read}: its peak memory",
        anchor_values=[r["peak"] / 1024 for r, _ in runs["read"]],
        target="< 2,048 MiB at 100,000,000 rows",
        met=met,
        note=note,
        judged=full,
    )
    figures.add(
        f"score_dataset peak spill files (temporary folder), {rows}",
        [d / 2**20 for _, d in runs["score"]],
        "MiB",
        anchor="the Parquet data's size on disk",
        anchor_values=[size / 2**20] * args.rounds,
    )
    for name, (value, low, high, note) in runs["score"][-1][0]["estimates"].items():
        print(f"{name:>15}: {value:.6f} [{low:.6f}, {high:.6f}]" + (f"  ({note})" if note else ""))
    figures.write()


if __name__ == "__main__":
    main()
