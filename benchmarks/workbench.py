"""Page times of `flywheel ui` on a busy project, against a static file served by the same app.

The demo project with a log of 1,000,000 predictions (30 days, as the service writes them), the
review queue `flywheel mine` fills, a `flywheel monitor` result, and 100 runs in its store (the
demo's run stored again under 99 more ids: the pages read runs, they do not re-run them). Each
round requests every page once, in turn, with `/static/style.css` (the anchor: what the server
costs with no page to build). Printed: median and range of each page over the rounds, and the
median over the anchor's (target: every page under 300 ms).
Run: ``python benchmarks/workbench.py [--rows 1000000] [--rounds 7]``.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
from sklearn.datasets import load_digits

from flywheel.prediction_log import connect

FLYWHEEL = Path(sys.executable).parent / "flywheel"
PAGES = {
    "style.css (anchor)": "/static/style.css",
    "portfolio": "/",
    "project": "/project/digit-sorter",
    "runs": "/project/digit-sorter/runs",
    "compare": "/project/digit-sorter/runs/compare?a={a}&b={b}",
    "monitor": "/project/digit-sorter/monitor",
    "queue": "/project/digit-sorter/queue",
}


def _log(project: Path, rows: int) -> None:
    digits = load_digits()
    names = [f"pixel_{i // 8}_{i % 8}" for i in range(64)]
    rng = np.random.default_rng(0)
    conn = connect(project / ".flywheel" / "predictions.db")
    start = time.time() - 30 * 86_400
    for chunk in range(0, rows, 50_000):
        n = min(50_000, rows - chunk)
        pick = rng.integers(0, len(digits.data), n)
        conn.executemany(
            "INSERT INTO predictions VALUES (?,?,?,?,?,?,?,?)",
            [
                (
                    uuid.uuid4().hex,
                    start + (chunk + i) * 30 * 86_400 / rows,
                    "rbf-svm",
                    1,
                    json.dumps(dict(zip(names, digits.data[p].tolist(), strict=True))),
                    json.dumps(int(digits.target[p])),
                    None,
                    2.0,
                )
                for i, p in enumerate(pick.tolist())
            ],
        )
    conn.close()


def _runs(project: Path, count: int) -> tuple[str, str]:
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(FLYWHEEL), "demo"], cwd=tmp, check=True, capture_output=True)
        project = Path(tmp) / "flywheel-demo"
        _log(project, args.rows)
        a, b = _runs(project, 100)
        for cmd in (["mine", str(project), "--budget", "50"], ["monitor", str(project)]):
            subprocess.run([str(FLYWHEEL), *cmd], check=False, capture_output=True)
        proc = subprocess.Popen(
            [str(FLYWHEEL), "ui", str(project), "--port", "0"], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        url = re.search(r"http://127\.0\.0\.1:\d+", proc.stdout.readline())
        assert url is not None
        times: dict[str, list[float]] = {k: [] for k in PAGES}
        try:
            with httpx.Client(base_url=url.group(0), timeout=120) as client:
                for path in PAGES.values():  # warm: imports and first reads are not a page's time
                    client.get(path.format(a=a, b=b)).raise_for_status()
                for _ in range(args.rounds):
                    for name, path in PAGES.items():
                        started = time.perf_counter()
                        client.get(path.format(a=a, b=b)).raise_for_status()
                        times[name].append(time.perf_counter() - started)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    anchor = statistics.median(times["style.css (anchor)"])
    print(f"{args.rows:,} logged predictions, 100 runs; {args.rounds} interleaved rounds (median, range)")
    for name, values in times.items():
        med = statistics.median(values)
        mark = "" if name.endswith("(anchor)") else ("  ok" if med < 0.3 else "  OVER 300 ms")
        print(
            f"{name:>20}: {med * 1000:7.1f} ms ({min(values) * 1000:.1f}–{max(values) * 1000:.1f}) "
            f"= {med / anchor:6.1f}× the anchor{mark}"
        )


if __name__ == "__main__":
    main()
