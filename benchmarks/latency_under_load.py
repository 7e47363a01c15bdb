"""Latency under load: does a busy machine move what flywheel measures?

Target (issue 15): two runs on the same machine agree within their intervals under background
load, so a latency constraint is not decided by what else the machine was doing. For each model,
rounds alternate between a quiet machine and one with ``--busy`` processes spinning on every core,
and each round calls :func:`flywheel.evaluation.measure_latency` (the model's own time: wall time
less the time its thread waited for a CPU). Printed: the median and range over rounds of the own
p50 and p95 and of the wall p95 (the anchor: what a stopwatch says), quiet and busy, and the
ratio busy / quiet of each. Threads are pinned to one per library for every measurement.

Run: ``python benchmarks/latency_under_load.py [--rounds 3] [--busy 2]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from flywheel.evaluation import measure_latency

SPIN = "import time\nend = time.time() + 600\nwhile time.time() < end: pass"


def _models() -> dict[str, Any]:
    X, y = load_digits(return_X_y=True, as_frame=True)
    return {
        "logistic": LogisticRegression(max_iter=2000).fit(X, y),
        "rbf-svm": SVC().fit(X, y),
        "boosted-trees": HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(X, y),
    }, X


def _measure(model: Any, rows: Any) -> dict[str, float]:
    got = measure_latency(model, rows, budget_s=1.0)
    return {k: got[k] for k in ("latency_p50_ms", "latency_p95_ms", "latency_p95_wall_ms")}


def _range(values: list[float]) -> str:
    return f"{np.median(values):7.3f} ({min(values):.3f}–{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy", type=int, default=max(2, os.cpu_count() or 2), help="spinning processes")
    args = parser.parse_args()
    models, rows = _models()
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    with threadpool_limits(1):
        for _ in range(args.rounds):
            for mode in ("quiet", "busy"):
                spinners = [
                    subprocess.Popen([sys.executable, "-c", SPIN])
                    for _ in range(args.busy if mode == "busy" else 0)
                ]
                try:
                    for name, model in models.items():
                        results.setdefault((name, mode), []).append(_measure(model, rows))
                finally:
                    for p in spinners:
                        p.kill()
                        p.wait()
    print(f"latency in ms, median (range) over {args.rounds} rounds; busy = {args.busy} spinning processes")
    for name in models:
        print(f"\n{name}")
        for key in ("latency_p50_ms", "latency_p95_ms", "latency_p95_wall_ms"):
            quiet = [r[key] for r in results[(name, "quiet")]]
            busy = [r[key] for r in results[(name, "busy")]]
            ratios = [b / q for b, q in zip(busy, quiet, strict=True)]
            print(f"  {key:<22} quiet {_range(quiet)}  busy {_range(busy)}  busy/quiet {_range(ratios)}")


if __name__ == "__main__":
    main()
