"""Start-up time of the commands a user types most, against `python -c pass` in the same rounds.

`flywheel --version`, `--help` and the commands that only read the store (`runs`, `models`,
`phase show`, `objective log`, `queue list`) must answer in under 0.5 s: they import the
metric engine, scikit-learn and pandas only when a command needs them. Each round runs every
command once, in turn, on a project with a stored run (the wine example, run once first);
printed: median and range of each, and the median of each over the interpreter's own start.
Run: ``python benchmarks/startup.py [--rounds 7]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLYWHEEL = Path(sys.executable).parent / "flywheel"
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "--version": [str(FLYWHEEL), "--version"],
    "--help": [str(FLYWHEEL), "--help"],
    "runs": [str(FLYWHEEL), "runs"],
    "models": [str(FLYWHEEL), "models"],
    "phase show": [str(FLYWHEEL), "phase", "show"],
    "objective log": [str(FLYWHEEL), "objective", "log"],
    "queue list": [str(FLYWHEEL), "queue", "list"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "wine-grading"
        shutil.copytree(ROOT / "examples" / "wine-grading", project, ignore=shutil.ignore_patterns(".*"))
        subprocess.run([str(FLYWHEEL), "run", "."], cwd=project, check=True, capture_output=True)
        times: dict[str, list[float]] = {k: [] for k in COMMANDS}
        for _ in range(rounds):
            for name, cmd in COMMANDS.items():
                start = time.perf_counter()
                subprocess.run(cmd, cwd=project, check=True, capture_output=True)
                times[name].append(time.perf_counter() - start)
    anchor = statistics.median(times["python -c pass"])
    print(f"start-up, {rounds} interleaved rounds (median, range); target < 0.5 s")
    for name, values in times.items():
        med = statistics.median(values)
        verdict = "" if name == "python -c pass" else ("  ok" if med < 0.5 else "  OVER 0.5 s")
        print(
            f"{name:>15}: {med:.3f} s ({min(values):.3f}–{max(values):.3f}) = {med / anchor:5.1f}× "
            f"python -c pass{verdict}"
        )


if __name__ == "__main__":
    main()
