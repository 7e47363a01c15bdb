"""Out-of-core scoring of a Parquet data set, against one read of the same columns.

``--rows`` rows (default 100,000,000) of a binary task, (label int64, prediction int64, score
float64) with every score distinct (the hard case for ROC AUC: all of them are needed), written
to a temporary folder in files of at most 10M rows and row groups of 1M rows, one chunk at a time
(the writer holds one chunk). Each round, in turn, in a process of its own with threads pinned to
``--threads`` per library: the anchor (pyarrow reads the three columns in batches of
``--batch-rows`` rows, file by file as ``score_dataset`` does, and does nothing else), then
``score_dataset`` with accuracy, f1_macro, roc_auc and log_loss and their 1,000-resample intervals
(classes inferred by a first pass over the label column). Printed: median and range of each, the
ratio to the anchor, each process's peak memory (``ru_maxrss``), the data's size on disk and the
spill files' peak size (polled), and the estimates. Target: peak memory under 2 GB.

Run: ``python benchmarks/out_of_core.py [--rows 100000000] [--rounds 3] [--batch-rows 1000000]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

METRICS = ["accuracy", "f1_macro", "roc_auc", "log_loss"]
CHUNK = 1_000_000
FILE_ROWS = 10_000_000

_PIN = """
import resource, sys, time, json
import pyarrow as pa
pa.set_cpu_count(int(sys.argv[3])); pa.set_io_thread_count(int(sys.argv[3]))
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
print(json.dumps({"s": seconds, "rows": rows, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
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
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"s": seconds, "rows": got["accuracy"].n, "peak": peak, "estimates": out}))
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
    pinned = {k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    env = {**os.environ, **pinned, "TMPDIR": str(spill)}
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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flywheel-ooc-") as tmp:
        data, spill = Path(tmp) / "data", Path(tmp) / "spill"
        data.mkdir()
        spill.mkdir()
        made = time.perf_counter()
        size = _write(data, args.rows)
        took = time.perf_counter() - made
        print(f"data: {args.rows:,} rows, {size / 2**20:,.0f} MiB of Parquet (written in {took:.0f} s)")
        runs: dict[str, list[tuple[dict, int]]] = {"read (anchor)": [], "score_dataset": []}
        for _ in range(args.rounds):
            runs["read (anchor)"].append(_run(_ANCHOR, data, args.batch_rows, args.threads, spill))
            runs["score_dataset"].append(_run(_SCORE, data, args.batch_rows, args.threads, spill))
    anchor = statistics.median(r["s"] for r, _ in runs["read (anchor)"])
    print(f"{args.rounds} interleaved rounds, {args.threads} threads, {args.batch_rows:,}-row batches:")
    for name, got in runs.items():
        times = [r["s"] for r, _ in got]
        peak = max(r["peak"] for r, _ in got) / 1024
        disk = max(d for _, d in got) / 2**20
        med = statistics.median(times)
        print(
            f"{name:>15}: {med:7.2f} s ({min(times):.2f}–{max(times):.2f}) = {med / anchor:5.1f}× the read, "
            f"peak memory {peak:,.0f} MiB, peak spill {disk:,.0f} MiB, rows {got[-1][0]['rows']:,}"
        )
    for name, (value, low, high, note) in runs["score_dataset"][-1][0]["estimates"].items():
        print(f"{name:>15}: {value:.6f} [{low:.6f}, {high:.6f}]" + (f"  ({note})" if note else ""))
    peak = max(r["peak"] for r, _ in runs["score_dataset"]) / 1024
    print(f"target: peak memory under 2,048 MiB: {'met' if peak < 2048 else 'NOT met'}")


if __name__ == "__main__":
    main()
