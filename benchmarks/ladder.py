"""The baseline ladder's speed and strength, against AutoML and LazyPredict in the same run.

Targets (issue 4): the whole ladder <= 60 s on 100k x 30 on 2 cores; the best
rung within 0.5 points (accuracy) of FLAML given 4x the ladder's wall time;
>= 10x faster than LazyPredict on a 10k-row subsample.

FLAML and LazyPredict are not flywheel dependencies: install them in the
benchmark's environment (``pip install 'flaml[automl]' lazypredict``); the
comparison is skipped, and says so, when they are missing. The ladder uses
scikit-learn's boosting here (FLYWHEEL_BOOSTING=sklearn) so its timing does
not depend on LightGBM being present.

Run: ``python benchmarks/ladder.py [--rows 100000] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

os.environ.setdefault("FLYWHEEL_BOOSTING", "sklearn")

from flywheel.data import load_dataset, split_dataset
from flywheel.execution import LocalExecutor
from flywheel.pipeline import run
from flywheel.project import load_project
from flywheel.results import RunResult


def ladder(folder: Path, source: str, target: str, metric: str, workers: int) -> tuple[RunResult, float]:
    """Run the ladder alone on a project written into ``folder``; return it and its wall time."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "flywheel.yaml").write_text(
        textwrap.dedent(f"""\
        project: bench
        data: {{source: {source}, target: {target}, split: {{test: 0.2, valid: 0.2, seed: 0}}}}
        objective: {{optimize: {metric}}}
        baselines: {{time_budget_s: 300}}
    """)
    )
    start = time.perf_counter()
    result = run(
        folder, save=False, report=False, candidates=False, diagnose=False, executor=LocalExecutor(workers)
    )
    return result, time.perf_counter() - start


def print_rungs(result: RunResult, metric: str) -> None:
    for e in result.evaluations:
        wall = e.systems.get("wall_time_s", float("nan"))
        value = e.value(metric, "test")
        shown = "failed: " + str(e.error) if not e.ok else f"{metric} {value:.4f}"
        print(f"  {e.name:15s} {wall:7.2f} s   {shown}")


def flaml_score(result: RunResult, folder: Path, budget: float) -> float | None:
    try:
        from flaml import AutoML
    except ImportError:
        print("FLAML not installed: pip install 'flaml[automl]' to compare")
        return None
    project = load_project(folder)
    ds = load_dataset(project.data, project.root)
    split = split_dataset(ds, project.data.split)
    fit_rows = np.concatenate([split.train, split.valid])
    automl = AutoML()
    automl.fit(
        ds.X.iloc[fit_rows],
        ds.y[fit_rows],
        task="classification",
        metric="accuracy",
        time_budget=budget,
        n_jobs=2,
        verbose=0,
        seed=0,
    )
    return float(np.mean(automl.predict(ds.X.iloc[split.test]) == ds.y[split.test]))


def lazypredict_time(frame: pd.DataFrame) -> float | None:
    try:
        from lazypredict.Supervised import LazyClassifier
    except ImportError:
        print("LazyPredict not installed: pip install lazypredict to compare")
        return None
    x, y = frame.drop(columns=["label"]), frame["label"]
    cut = int(len(frame) * 0.8)
    start = time.perf_counter()
    LazyClassifier(verbose=0, ignore_warnings=True).fit(
        x.iloc[:cut], x.iloc[cut:], y.iloc[:cut], y.iloc[cut:]
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-external", action="store_true", help="skip FLAML and LazyPredict")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="flywheel-bench-"))

    x, y = make_classification(
        n_samples=args.rows,
        n_features=30,
        n_informative=12,
        n_redundant=6,
        n_classes=2,
        flip_y=0.03,
        class_sep=0.8,
        random_state=0,
    )
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(30)]).assign(label=y)
    frame.to_csv(tmp / "synthetic.csv", index=False)
    print(f"# make_classification {args.rows:,} x 30, {args.workers} workers")
    big, total = ladder(tmp / "synthetic", "../synthetic.csv", "label", "accuracy", args.workers)
    print_rungs(big, "accuracy")
    print(f"  whole ladder   {total:7.2f} s   (target <= 60 s)")
    best = max((e for e in big.evaluations if e.ok), key=lambda e: e.value("accuracy", "valid") or 0)
    best_test = best.value("accuracy", "test")
    assert best_test is not None
    print(f"  best rung on valid: {best.name}, test accuracy {best_test:.4f}")

    print("\n# built-in sets")
    for source, target, metric in [
        ("builtin:digits", "digit", "accuracy"),
        ("builtin:breast_cancer", "diagnosis", "accuracy"),
        ("builtin:wine", "cultivar", "accuracy"),
        ("builtin:iris", "species", "accuracy"),
        ("builtin:diabetes", "progression", "rmse"),
    ]:
        result, wall = ladder(tmp / source.split(":")[1], source, target, metric, args.workers)
        slowest = max(result.evaluations, key=lambda e: e.systems.get("wall_time_s", 0))
        print(
            f"  {source:22s} {wall:6.2f} s   slowest rung {slowest.name} "
            f"{slowest.systems.get('wall_time_s', 0):.2f} s"
        )

    if args.skip_external:
        return
    print(f"\n# FLAML given 4x the ladder's wall time ({4 * total:.0f} s), same split")
    automl = flaml_score(big, tmp / "synthetic", 4 * total)
    if automl is not None:
        gap = (automl - best_test) * 100
        print(
            f"  FLAML test accuracy {automl:.4f}; best rung {best_test:.4f}; gap {gap:+.2f} points "
            "(target: best rung within 0.5 points)"
        )

    small = frame.sample(10_000, random_state=0).reset_index(drop=True)
    small.to_csv(tmp / "small.csv", index=False)
    _, ours = ladder(tmp / "small", "../small.csv", "label", "accuracy", args.workers)
    print("\n# 10,000-row subsample")
    print(f"  flywheel ladder (with intervals)  {ours:7.2f} s")
    lazy = lazypredict_time(small)
    if lazy is not None:
        print(
            f"  LazyPredict LazyClassifier        {lazy:7.2f} s   ladder is {lazy / ours:5.1f}x faster "
            "(target >= 10x)"
        )


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main()
