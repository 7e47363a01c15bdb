"""The prediction log's WAL under sustained writes: bounded by the writer, against left to grow.

Target (the log's own promise, ``prediction_log/_writer.py``): the SQLite WAL stays within
``WAL_LIMIT_BYTES`` (64 MiB) plus what one group commit adds, however long the load lasts.

What a service at capacity does to its log, without the service: the log's writer
(``_Writer``, as the writer process runs it, with its PASSIVE checkpoint thread) commits 32-row
groups of prediction rows as fast as it can for ``--seconds``. Its anchor is the same writer with
the bound switched off (the writer before had none): the checkpoint thread alone, which never
waits for the writer and so never reaches the WAL's end while commits keep coming. Interleaved
rounds, each a fresh log; printed per side: the WAL's largest size (sampled every 50 commits) and
the rows/s written, each with the per-round ratio to the anchor.

Run: ``python benchmarks/wal.py [--seconds 3] [--rounds 3] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _harness import Figures, judge

from flywheel.prediction_log._writer import WAL_LIMIT_BYTES, _run, _Writer

GROUP = 32  # rows a commit: a service's group commit under load
SLACK = 8 << 20  # what one round of commits may add past the limit before the truncate runs


def one_run(folder: Path, seconds: float, bounded: bool) -> tuple[float, float]:
    """(largest WAL in MiB, rows/s) for ``seconds`` of back-to-back 32-row commits, run as the
    writer process runs them (``_run``: its checkpoint thread beside, its connection closed after)."""
    path = folder / f"log-{time.monotonic_ns()}.db"
    writer = _Writer(path, GROUP, None, None)
    if not bounded:
        writer.wal_limit = 1 << 62  # never reached: the checkpoint thread alone
    wal = Path(f"{path}-wal")
    largest = commits = 0
    rate = 0.0

    def commit_for(seconds: float) -> None:
        nonlocal largest, commits, rate
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            frames = [
                [("p", (f"{commits}-{k}", time.time(), "m", 1, f'{{"x": {k}}}', '"a"', None, 1.0))]
                for k in range(GROUP)
            ]
            if error := writer.write(frames):
                raise SystemExit(f"the writer failed: {error}")
            writer.bound_wal()  # as the writer's loop does, after acknowledging
            commits += 1
            if commits % 50 == 0:
                largest = max(largest, wal.stat().st_size)
        rate = commits * GROUP / (time.perf_counter() - began)

    _run(writer, lambda: commit_for(seconds))
    for leftover in folder.glob(f"{path.name}*"):
        leftover.unlink()
    return largest / 2**20, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of writes a side and round")
    parser.add_argument("--rounds", type=int, default=3)
    Figures.add_arguments(parser)
    args = parser.parse_args()
    figures = Figures("wal", args.json)
    runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="flywheel-wal-bench-") as tmp:
        for r in range(args.rounds):
            for bounded in (True, False) if r % 2 == 0 else (False, True):
                runs[bounded].append(one_run(Path(tmp), args.seconds, bounded))
    seconds = f"{args.seconds:g} s of {GROUP}-row commits"
    anchor = "the same writer without the bound (checkpoint thread only)"
    limit_mib = (WAL_LIMIT_BYTES + SLACK) / 2**20
    met, note = judge([w for w, _ in runs[True]], limit_mib)
    figures.add(
        f"largest WAL, {seconds}",
        [w for w, _ in runs[True]],
        "MiB",
        anchor=anchor,
        anchor_values=[w for w, _ in runs[False]],
        target=f"<= {WAL_LIMIT_BYTES >> 20} MiB + one round of commits ({limit_mib:.0f} MiB)",
        met=met,
        note=note,
    )
    figures.add(
        f"rows written, {seconds}",
        [r for _, r in runs[True]],
        "rows/s",
        anchor=anchor,
        anchor_values=[r for _, r in runs[False]],
    )
    figures.write()


if __name__ == "__main__":
    main()
