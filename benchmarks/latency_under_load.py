"""Latency under load: does a busy machine move what flywheel measures?

Target (issue 15): two runs on the same machine agree within their intervals under background
load, so a latency constraint is not decided by what else the machine was doing.

There is no command that measures latency alone (`flywheel run` does it for every model, among
much else), so what is timed is the library call the run makes:
:func:`flywheel.evaluation.measure_latency` (the model's own time: wall time less the time its
thread waited for a CPU), on three models fitted on digits. Rounds alternate a quiet machine and
one with ``--busy`` processes spinning on every core (the order turning each round), and each
round measures every model; threads are pinned to one per library for the fits and every
measurement. Per model, printed for the own p50 and p95 and the wall p95 (the anchor: what a
stopwatch says): the median and range over rounds under load, and of the per-round ratio to the
quiet machine in the same round. The target is judged with the product's own rule,
:func:`flywheel.evaluation.latency_differs` (intervals apart, and by at least 10 % and 20 µs):
met when busy and quiet do not differ in most rounds.

Run: ``python benchmarks/latency_under_load.py [--rounds 3] [--busy 2] [--budget 1.0] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any

import numpy as np
from _harness import Figures, pinned
from sklearn.datasets import load_digits
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from flywheel.evaluation import latency_differs, measure_latency

SPIN = "import time\nend = time.time() + 600\nwhile time.time() < end: pass"
KEYS = {"latency_p50_ms": "own p50", "latency_p95_ms": "own p95", "latency_p95_wall_ms": "wall p95"}


def _models() -> tuple[dict[str, Any], Any]:
    X, y = load_digits(return_X_y=True, as_frame=True)
    return {
        "logistic": LogisticRegression(max_iter=2000).fit(X, y),
        "rbf-svm": SVC().fit(X, y),
        "boosted-trees": HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(X, y),
    }, X


def _round(models: dict[str, Any], rows: Any, spinners: int, budget: float) -> dict[str, dict[str, Any]]:
    """Every model measured once, with ``spinners`` processes spinning meanwhile."""
    busy = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(spinners)]
    try:
        return {name: measure_latency(model, rows, budget_s=budget) for name, model in models.items()}
    finally:
        for p in busy:
            p.kill()
            p.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy", type=int, default=max(2, os.cpu_count() or 2), help="spinning processes")
    parser.add_argument("--budget", type=float, default=1.0, help="measure_latency's budget_s (its default)")
    Figures.add_arguments(parser)
    args = parser.parse_args()
    figures = Figures("latency_under_load", args.json)
    runs: dict[str, list[dict[str, dict[str, Any]]]] = {"quiet": [], "busy": []}
    with pinned(1):
        models, rows = _models()
        for r in range(args.rounds):
            for mode in ("quiet", "busy") if r % 2 == 0 else ("busy", "quiet"):
                runs[mode].append(_round(models, rows, args.busy if mode == "busy" else 0, args.budget))
    print(f"{args.rounds} interleaved rounds; busy = {args.busy} spinning processes; threads pinned to 1")
    for name in models:
        for key, label in KEYS.items():
            quiet = [run[name][key] for run in runs["quiet"]]
            busy = [run[name][key] for run in runs["busy"]]
            note = f"quiet {np.median(quiet):.3f} ms ({min(quiet):.3f}–{max(quiet):.3f})"
            met = None
            if key != "latency_p95_wall_ms":
                differ = sum(
                    latency_differs(b[name], q[name], key)
                    for b, q in zip(runs["busy"], runs["quiet"], strict=True)
                )
                met = differ * 2 < args.rounds  # they agree in most rounds
                note += f"; busy and quiet differ in {differ} of {args.rounds} rounds"
            figures.add(
                f"{name}: {label} under load",
                busy,
                "ms",
                anchor="the quiet machine, the same round",
                anchor_values=quiet,
                target="busy and quiet agree (latency_differs)" if met is not None else None,
                met=met,
                note=note,
            )
    figures.write()


if __name__ == "__main__":
    main()
