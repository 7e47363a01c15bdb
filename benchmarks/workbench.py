"""Page times of `flywheel ui` on a busy project, against a static file served by the same app.

Target (DESIGN.md): every page under 300 ms for a project with 1,000,000 logged predictions and
100 runs.

The demo project (`flywheel demo`) with a log of ``--rows`` predictions (30 days, as the service
writes them), the review queue `flywheel mine` fills, a `flywheel monitor` result, and 100 runs in
its store (the demo's run stored again under 99 more ids: the pages read runs, they do not re-run
them). Timed end to end, as a user meets them, with the OpenMP/BLAS threads of every process
pinned to one:

- the start: from launching `flywheel ui DIR` to the portfolio page answered, against
  ``python -m http.server`` from its launch to its first answer (a server with nothing to load),
  one start of each a round, ``--start-rounds`` rounds;
- the pages: one `flywheel ui` server, every page requested once a round in a turning order with
  ``/static/style.css`` (the anchor: what the server costs with no page to build), ``--rounds``
  rounds after one warm-up request each (imports and first reads are not a page's time).

Printed: median and range of each, and of its ratio to the anchor in the same round. The default
log has 100,000 rows so that the script fits ``make bench`` (about a minute on 2 cores); the
target is judged only at 1,000,000 rows (``--rows 1000000``).

Run: ``python benchmarks/workbench.py [--rows 1000000] [--rounds 7] [--start-rounds 3] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from pathlib import Path

import httpx
import numpy as np
from _harness import Figures, interleave, judge, pinned
from _projects import FLYWHEEL, flywheel, served, write_log
from sklearn.datasets import load_digits

TARGET_MS = 300.0
ANCHOR = "style.css"
PAGES = {
    ANCHOR: "/static/style.css",
    "portfolio": "/",
    "project": "/project/digit-sorter",
    "runs": "/project/digit-sorter/runs",
    "compare": "/project/digit-sorter/runs/compare?a={a}&b={b}",
    "monitor": "/project/digit-sorter/monitor",
    "queue": "/project/digit-sorter/queue",
}


def _log(project: Path, rows: int) -> None:
    """``rows`` predictions of the demo's champion over 30 days: digits as the service logs them."""
    digits = load_digits()
    names = [f"pixel_{i // 8}_{i % 8}" for i in range(64)]
    rng = np.random.default_rng(0)

    def chunk(start: int, n: int) -> tuple[np.ndarray, np.ndarray, None, np.ndarray]:
        pick = rng.integers(0, len(digits.data), n)
        return digits.data[pick], digits.target[pick], None, np.full(n, 2.0)

    size, took = write_log(
        project / ".flywheel" / "predictions.db", rows, chunk, names, model="rbf-svm", days=30
    )
    print(f"log: {rows:,} predictions x 64 features, {size / 2**20:,.0f} MiB (written in {took:.0f} s)")


def _runs(project: Path, count: int) -> tuple[str, str]:
    """The demo's run stored again under ``count - 1`` more ids; two ids to compare."""
    db = sqlite3.connect(project / ".flywheel" / "flywheel.db")
    columns = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
    first = db.execute("SELECT id FROM runs").fetchone()[0]
    rest = ", ".join(columns[1:])
    for n in range(1, count):
        db.execute(
            f"INSERT INTO runs (id, {rest}) SELECT id || '-{n:03d}', {rest} FROM runs WHERE id = ?", (first,)
        )
    db.commit()
    db.close()
    return first, f"{first}-001"


def _setup(folder: Path, rows: int) -> tuple[Path, str, str]:
    flywheel("demo", cwd=folder)
    project = folder / "flywheel-demo"
    _log(project, rows)
    a, b = _runs(project, 100)
    flywheel("mine", str(project), "--budget", "50", ok=(0, 1, 3))
    flywheel("monitor", str(project), ok=(0, 1, 3))
    return project, a, b


def _start_once(command: list[str]) -> float:
    with served(command) as (_, seconds):
        return seconds


def _starts(project: Path, rounds: int) -> dict[str, list[float]]:
    """Seconds from launch to first answer, ``flywheel ui`` against ``python -m http.server``."""
    ui = [FLYWHEEL, "ui", str(project), "--port", "0"]
    bare = [
        sys.executable,
        "-u",
        "-m",
        "http.server",
        "0",
        "--bind",
        "127.0.0.1",
        "--directory",
        str(project),
    ]
    seconds: dict[str, list[float]] = {"ui": [], "bare": []}
    for r in range(rounds):
        for name in ("ui", "bare") if r % 2 == 0 else ("bare", "ui"):
            seconds[name].append(_start_once(ui if name == "ui" else bare))
    return seconds


def _pages(project: Path, a: str, b: str, rounds: int) -> dict[str, list[float]]:
    """Milliseconds per round of each page, requested from one `flywheel ui` after a warm-up."""
    paths = {name: path.format(a=a, b=b) for name, path in PAGES.items()}
    with (
        served([FLYWHEEL, "ui", str(project), "--port", "0"]) as (url, _),
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        for path in paths.values():  # imports and first reads are not a page's time
            client.get(path).raise_for_status()
        times = interleave(
            {name: lambda p=path: client.get(p).raise_for_status() for name, path in paths.items()}, rounds
        )
    return {name: [t * 1000 for t in values] for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="logged predictions (target: 1,000,000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of page requests")
    parser.add_argument("--start-rounds", type=int, default=3, help="rounds of server starts")
    Figures.add_arguments(parser)
    args = parser.parse_args()
    figures = Figures("workbench", args.json)
    with tempfile.TemporaryDirectory(prefix="flywheel-workbench-bench-") as tmp:
        project, a, b = _setup(Path(tmp), args.rows)  # untimed: the machine's cores are its own
        with pinned(1):
            starts = _starts(project, args.start_rounds)
            times = _pages(project, a, b, args.rounds)

    rows = f"{args.rows:,}-row log, 100 runs"
    full = args.rows >= 1_000_000
    unjudged = None if full else "judged with --rows 1000000"
    figures.add(
        f"flywheel ui DIR: launch to the portfolio page ({rows})",
        starts["ui"],
        anchor="python -m http.server: launch to its first answer",
        anchor_values=starts["bare"],
    )
    for name, values in times.items():
        if name == ANCHOR:
            figures.add(f"GET {PAGES[ANCHOR]} (the pages' anchor)", values, "ms")
            continue
        met, note = judge(values, TARGET_MS) if full else (None, unjudged)
        figures.add(
            f"page {name} ({rows})",
            values,
            "ms",
            anchor=f"GET {PAGES[ANCHOR]}, the same server",
            anchor_values=times[ANCHOR],
            target="< 300 ms at 1,000,000 rows",
            met=met,
            note=note,
            judged=full,
        )
    figures.write()


if __name__ == "__main__":
    main()
