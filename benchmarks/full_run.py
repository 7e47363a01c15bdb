"""The whole `flywheel run` as a user runs it, where its time goes, and the ladder next to AutoML.

Targets (issue 19): `flywheel run` on make_classification 100,000 x 30 with 3 classes in under
60 s on 2 cores, and on 1,000,000 rows in under 5 minutes with every process together under
4 GB; the best rung within 0.5 points (test accuracy) of FLAML given 4x the run's ladder time;
the ladder at least 10x faster than LazyPredict on 10,000 rows.

What is timed is what a user runs: `flywheel run DIR` end to end (a process of its own, Python's
start included, a fresh project each round), with the run's own breakdown read back from its
store: wall seconds per stage, and within the ladder-and-candidates stage the task seconds its
workers spent fitting, timing latency (the systems metrics) and on the rest (predictions,
intervals, the artifact). Memory is the sum of the resident sets of the command and every process
it started, sampled every 0.2 s. The anchor in the same rounds is one scikit-learn
HistGradientBoosting fit (200 rounds) on the run's training rows, in a process of its own, pinned to
one thread: two OpenMP threads on two busy cores swing several-fold, one does not.

Threads: flywheel runs as a user runs it, on its 2 workers (a task alone gets both cores' threads,
one each while both are busy); FLAML and LazyPredict are pinned to the same 2 cores' worth of
OpenMP/BLAS threads (and n_jobs=2).

FLAML and LazyPredict are not flywheel dependencies, and LightGBM would change the ladder's
boosting; `make bench` installs them (and their LightGBM and XGBoost) into `.bench-ext`, which only
their own processes see. Without them their rows say so.

Run: ``python benchmarks/full_run.py [--rows 100000] [--rounds 3] [--big 1000000] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd
import psutil
from _harness import Figures, spread
from sklearn.datasets import make_classification

ROOT = Path(__file__).resolve().parent.parent
EXT = ROOT / ".bench-ext"
FLYWHEEL = Path(sys.executable).with_name("flywheel")
THREADS = {k: "2" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def write_data(folder: Path, rows: int) -> Path:
    x, y = make_classification(
        n_samples=rows,
        n_features=30,
        n_informative=12,
        n_redundant=6,
        n_classes=3,
        flip_y=0.03,
        class_sep=0.8,
        random_state=0,
    )
    path = folder / f"synthetic-{rows}.csv"
    pd.DataFrame(x, columns=[f"f{i}" for i in range(30)]).assign(label=y).to_csv(path, index=False)
    return path


def write_project(folder: Path, csv: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "flywheel.yaml").write_text(
        textwrap.dedent(f"""\
        project: bench
        data: {{source: {csv}, target: label, split: {{test: 0.2, valid: 0.2, seed: 0}}}}
        objective: {{optimize: accuracy}}
    """)
    )
    return folder


def _tree_rss(top: psutil.Process) -> int:
    total = 0
    with contextlib.suppress(psutil.Error):
        for p in [top, *top.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
    return total


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, peak MiB of the command and all its descendants together)."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        top, peak = psutil.Process(proc.pid), 0
        while proc.poll() is None:
            peak = max(peak, _tree_rss(top))
            time.sleep(0.2)
        wall = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode not in (0, 1, 3):
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{text[-2000:]}")
    return wall, peak / 2**20


def stored_run(project: Path) -> dict:
    with sqlite3.connect(project / ".flywheel" / "flywheel.db") as db:
        (text,) = db.execute("SELECT result_json FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
    return json.loads(text)


def best_rung(result: dict) -> tuple[str, float]:
    """The rung the run ranks first on validation, and its test accuracy."""
    ok = [e for e in result["evaluations"] if not e.get("error")]
    best = max(ok, key=lambda e: e["metrics"].get("valid", {}).get("accuracy") or 0.0)
    return best["name"], float(best["metrics"]["test"]["accuracy"])


def task_seconds(result: dict) -> dict[str, float]:
    """The ladder-and-candidates stage's task seconds by role: fitting, timing latency, the rest."""
    out: dict[str, float] = {}
    for e in result["evaluations"]:
        systems = e.get("systems") or {}
        role = "candidates" if e.get("role") == "candidate" else "ladder"
        wall, fit = systems.get("wall_time_s", 0.0), systems.get("fit_time_s", 0.0)
        timing = systems.get("latency_timing_s", 0.0)
        for part, value in (("fit", fit), ("latency timing", timing), ("rest", wall - fit - timing)):
            out[f"{role} tasks: {part}"] = out.get(f"{role} tasks: {part}", 0.0) + max(value, 0.0)
    return out


def external(code: str, *args: str, ext: bool = True, threads: int = 2) -> dict | None:
    """Run ``code`` in a process of its own with the anchors' threads pinned, seeing .bench-ext
    (FLAML, LazyPredict) with ``ext``; its last line is JSON. None when .bench-ext is needed and
    missing, or the code failed."""
    if ext and not EXT.exists():
        return None
    env = {**os.environ, **THREADS, "PYTHONWARNINGS": "ignore", **({"PYTHONPATH": str(EXT)} if ext else {})}
    env.update({k: str(threads) for k in THREADS})
    shown = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=False
    )
    if shown.returncode != 0:
        print(f"  failed: {(shown.stderr.strip().splitlines() or ['?'])[-1]}")
        return None
    return json.loads(shown.stdout.strip().splitlines()[-1])


SPLIT = """
import json, sys, time, numpy as np
from flywheel.data import load_dataset, split_dataset
from flywheel.project import load_project
project = load_project(sys.argv[1])
ds = load_dataset(project.data, project.root)
split = split_dataset(ds, project.data.split)
"""

BOOSTED = (
    SPLIT
    + """
from sklearn.ensemble import HistGradientBoostingClassifier
X, y = ds.X.to_numpy(dtype=float), np.asarray(ds.y)
start = time.perf_counter()
model = HistGradientBoostingClassifier(max_iter=200, early_stopping=False, random_state=0)
model.fit(X[split.train], y[split.train])
print(json.dumps({"seconds": time.perf_counter() - start}))
"""
)

FLAML = (
    SPLIT
    + """
from flaml import AutoML
automl = AutoML()
X, y = ds.X.to_numpy(dtype=float), np.asarray(ds.y)  # FLAML 2.3 reads no pandas 3 frames
automl.fit(X[split.train], y[split.train], X_val=X[split.valid], y_val=y[split.valid],
           task="classification", metric="accuracy", time_budget=float(sys.argv[2]), n_jobs=2,
           verbose=0, seed=0, eval_method="holdout")
test = float(np.mean(automl.predict(X[split.test]) == y[split.test]))
print(json.dumps({"test": test, "best": automl.best_estimator}))
"""
)

LAZY = (
    SPLIT
    + """
from lazypredict.Supervised import LazyClassifier
start = time.perf_counter()
LazyClassifier(verbose=0, ignore_warnings=True).fit(
    ds.X.iloc[split.train], ds.X.iloc[split.test], ds.y[split.train], ds.y[split.test])
print(json.dumps({"seconds": time.perf_counter() - start}))
"""
)

LADDER = (
    SPLIT
    + """
from flywheel.pipeline import run
start = time.perf_counter()
run(project.root, save=False, report=False, candidates=False, diagnose=False)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""
)


def full_runs(tmp: Path, csv: Path, rows: int, rounds: int, figures: Figures) -> dict:
    """``rounds`` interleaved rounds of `flywheel run` (a fresh project each) and the boosted-fit
    anchor; the figures, and the last round's stored run."""
    walls, mibs, anchors, stages = [], [], [], []
    for r in range(rounds):
        project = write_project(tmp / f"run-{rows}-{r}", csv)
        first, second = ("run", "anchor") if r % 2 == 0 else ("anchor", "run")
        for which in (first, second):
            if which == "run":
                wall, mib = timed([str(FLYWHEEL), "run", str(project)])
                walls.append(wall)
                mibs.append(mib)
            else:
                shown = external(BOOSTED, str(project), ext=False, threads=1)
                if shown is None:
                    raise SystemExit("the boosted-trees anchor failed")
                anchors.append(shown["seconds"])
        result = stored_run(project)
        stages.append({**result.get("timings", {}), **task_seconds(result)})
    size = f"{rows:,} x 30, 3 classes"
    figures.add(
        f"flywheel run, {size} (CLI, end to end)",
        walls,
        anchor="one HistGradientBoosting fit (200 rounds, train rows, 1 thread)",
        anchor_values=anchors,
        target="< 60 s" if rows <= 100_000 else "< 300 s",
        met=statistics.median(walls) < (60 if rows <= 100_000 else 300),
    )
    figures.add(
        f"flywheel run, {size}: peak memory, all processes",
        mibs,
        "MiB",
        target="< 4,096 MiB",
        met=statistics.median(mibs) < 4096,
    )
    for stage in stages[-1]:
        values = [s.get(stage, 0.0) for s in stages]
        unit = "task s" if "tasks:" in stage else "s"
        figures.add(f"where the time goes: {stage}", values, unit)
    result = stored_run(project)
    for note in ((result.get("diagnosis") or {}).get("curve") or {}).get("notes", []):
        print(f"  curve note: {note}")
    name, test = best_rung(result)
    ladder = statistics.median(s.get("ladder and candidates", 0.0) for s in stages)
    return {"project": project, "ladder": ladder, "best": name, "test": test}


def versus_flaml(run: dict, figures: Figures) -> None:
    budget = 4 * run["ladder"]
    print(f"\n# FLAML given 4x the run's ladder time ({budget:.0f} s) on the run's split (one round)")
    if not EXT.exists():
        print("  FLAML not installed (make bench installs it into .bench-ext)")
        return
    shown = external(FLAML, str(run["project"]), f"{budget:.1f}")
    if shown is None:
        return
    gap = (shown["test"] - run["test"]) * 100
    figures.add(
        f"FLAML ({shown['best']}, {shown['test']:.4f}) ahead of the best rung ({run['best']}, "
        f"{run['test']:.4f}), test accuracy",
        [gap],
        "points",
        target="<= 0.5 points",
        met=gap <= 0.5,
    )


def versus_lazypredict(tmp: Path, source: Path, rounds: int, figures: Figures) -> None:
    small = pd.read_csv(source).sample(10_000, random_state=0)
    csv = tmp / "small.csv"
    small.to_csv(csv, index=False)
    project = write_project(tmp / "small", csv)
    print(f"\n# 10,000 rows, the same split for both, {rounds} interleaved rounds")
    if not EXT.exists():
        print("  LazyPredict not installed (make bench installs it into .bench-ext)")
        return
    lib: dict[str, list[float]] = {"ours": [], "theirs": []}
    cli: dict[str, list[float]] = {"ours": [], "theirs": []}
    lazy_script = tmp / "lazy.py"
    lazy_script.write_text(LAZY)
    lazy_env = {**os.environ, **THREADS, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(EXT)}
    for r in range(rounds):
        steps = [
            lambda: lib["ours"].append(_seconds(external(LADDER, str(project), ext=False))),
            lambda: lib["theirs"].append(_seconds(external(LAZY, str(project)))),
            lambda: cli["ours"].append(timed([str(FLYWHEEL), "baselines", str(project), "--json"])[0]),
            lambda: cli["theirs"].append(
                timed([sys.executable, str(lazy_script), str(project)], lazy_env)[0]
            ),
        ]
        for step in steps[r % 4 :] + steps[: r % 4]:
            step()
    for what, times in (("library call, imports not timed", lib), ("command, end to end", cli)):
        figures.add(
            f"ladder on 10,000 rows ({what})",
            times["ours"],
            anchor="LazyPredict LazyClassifier",
            anchor_values=times["theirs"],
            target="<= 0.1x (10x faster)",
            met=spread([o / t for o, t in zip(times["ours"], times["theirs"], strict=True)])[0] <= 0.1,
        )


def _seconds(shown: dict | None) -> float:
    if shown is None:
        raise SystemExit("a 10,000-row contender failed")
    return float(shown["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big", type=int, default=0, help="rows of a large run, one round (0: none)")
    parser.add_argument("--lazy-rounds", type=int, default=3)
    Figures.add_arguments(parser)
    args = parser.parse_args()
    # The ladder's boosting is scikit-learn's unless LightGBM is installed; keep it so here.
    os.environ.setdefault("FLYWHEEL_BOOSTING", "sklearn")
    figures = Figures("full_run", args.json)
    tmp = Path(tempfile.mkdtemp(prefix="flywheel-full-run-"))
    csv = write_data(tmp, args.rows)
    print(f"# flywheel run, make_classification {args.rows:,} x 30, 3 classes, {args.rounds} rounds")
    run = full_runs(tmp, csv, args.rows, args.rounds, figures)
    versus_flaml(run, figures)
    versus_lazypredict(tmp, csv, args.lazy_rounds, figures)
    if args.big:
        print(f"\n# flywheel run, {args.big:,} rows, one round")
        full_runs(tmp, write_data(tmp, args.big), args.big, 1, figures)
    figures.write()


if __name__ == "__main__":
    main()
