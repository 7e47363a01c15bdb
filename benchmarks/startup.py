"""Start-up time of the commands a user types most, against `python -c pass` in the same rounds.

Target (DESIGN.md): `flywheel --version`, `--help` and the commands that only read the store
(`runs`, `models`, `phase show`, `objective log`, `queue list`) answer in under 0.5 s: they import
the metric engine, scikit-learn and pandas only when a command needs them. Beside them, the
library's imports: ``import flywheel`` and the README's first line,
``from flywheel.metrics import score`` (no target).

Each round runs every command once, end to end as a process of its own, in a turning order, on a
project with a stored run (the wine example, run once first without its learning curve), with the
OpenMP/BLAS threads of every process pinned to one. Printed: median and range of each, and of its
ratio to the interpreter's own start in the same round.

Run: ``python benchmarks/startup.py [--rounds 7] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

from _harness import Figures, interleave, judge, pinned
from _projects import FLYWHEEL, ROOT

ANCHOR = "python -c pass"
TARGET_S = 0.5
COMMANDS = ["--version", "--help", "runs", "models", "phase show", "objective log", "queue list"]
IMPORTS = ["import flywheel", "from flywheel.metrics import score"]


def _run(command: list[str], cwd: Path) -> None:
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    Figures.add_arguments(parser)
    args = parser.parse_args()
    figures = Figures("startup", args.json)
    with tempfile.TemporaryDirectory(prefix="flywheel-startup-bench-") as tmp, pinned(1):
        from flywheel.pipeline import run

        project = Path(tmp) / "wine-grading"
        shutil.copytree(ROOT / "examples" / "wine-grading", project, ignore=shutil.ignore_patterns(".*"))
        run(project, report=False, forecast_curve=False)  # a stored run for the store's commands
        contenders = {ANCHOR: partial(_run, [sys.executable, "-c", "pass"], project)}
        for command in COMMANDS:
            contenders[f"flywheel {command}"] = partial(_run, [FLYWHEEL, *command.split()], project)
        for code in IMPORTS:
            contenders[f'python -c "{code}"'] = partial(_run, [sys.executable, "-c", code], project)
        times = interleave(contenders, args.rounds)
    print(f"{args.rounds} interleaved rounds, each command a process of its own, threads pinned to 1")
    for name, values in times.items():
        if name == ANCHOR:
            figures.add(name, values)
            continue
        met, note = judge(values, TARGET_S) if name.startswith("flywheel") else (None, None)
        figures.add(
            name,
            values,
            anchor=ANCHOR,
            anchor_values=times[ANCHOR],
            target="< 0.5 s" if name.startswith("flywheel") else None,
            met=met,
            note=note,
        )
    figures.write()


if __name__ == "__main__":
    main()
