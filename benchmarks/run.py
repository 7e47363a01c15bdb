"""Run the benchmark suite (`make bench`) and write its figures to results.json and results.md.

Each benchmark runs as a process of its own with ``--json``, one after the other (never two at
once: they would time each other), with the suite's arguments below, chosen so the whole suite
takes under 15 minutes on 2 cores.

``benchmarks/results.json`` holds every figure with its rounds, anchor and per-round ratios, and
the machine and date; ``benchmarks/results.md`` is the table the README quotes.

``--large`` runs instead the sizes some targets are stated for (a monitor and a workbench over
1,000,000 logged predictions, 100,000,000 rows out of core): about 15 minutes more, so not part of
``make bench``. It writes ``results-large.json`` and ``results-large.md``, which the README quotes
beside the suite's table. Other larger runs (the 1,000,000-row full run) are each script's own
options, named in its docstring.

    python benchmarks/run.py [--only metrics,serve] [--large] [--out benchmarks]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import UNJUDGED, VERDICT, machine

HERE = Path(__file__).resolve().parent

# (script, the suite's arguments): the order runs the quick ones first.
SUITE: list[tuple[str, list[str]]] = [
    ("startup", []),
    ("forecast_calibration", []),
    ("metrics", []),
    ("out_of_core", []),
    ("latency_under_load", []),
    ("wal", []),
    ("serve", []),
    ("workers", []),
    ("monitor", []),
    ("workbench", []),
    ("full_run", []),
]

# (script, arguments) of --large: the sizes the targets are stated for, where the suite's are smaller.
LARGE: list[tuple[str, list[str]]] = [
    ("monitor", ["--rows", "1000000"]),
    ("workbench", ["--rows", "1000000"]),
    ("out_of_core", ["--rows", "100000000"]),
]

LIMIT_S = 15 * 60
README = HERE.parent / "README.md"


def run_one(name: str, args: list[str], folder: Path) -> dict[str, Any]:
    """One benchmark's figures (its JSON) and wall time; a failed one says so instead."""
    out = folder / f"{name}.json"
    print(f"\n=== {name} {' '.join(args)}".rstrip(), flush=True)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(HERE / f"{name}.py"), *args, "--json", str(out)], check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0 or not out.exists():
        print(f"=== {name} failed (exit {done.returncode}) after {wall:.0f} s", flush=True)
        return {"benchmark": name, "wall_s": wall, "error": f"exit {done.returncode}", "figures": []}
    data = json.loads(out.read_text())
    print(f"=== {name}: {wall:.0f} s", flush=True)
    return {"benchmark": name, "wall_s": wall, "args": args, "figures": data["figures"]}


def _cell(median: float, low: float, high: float, unit: str = "") -> str:
    def num(v: float) -> str:
        if v == 0 or abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"

    same = num(low) == num(high)
    return f"{num(median)}{' ' + unit if unit else ''}" + ("" if same else f" ({num(low)}–{num(high)})")


def markdown(results: dict[str, Any]) -> str:
    """The README's table: one row a figure, median (range), the anchor and the ratio."""
    m, command = results["machine"], results.get("command", "make bench")
    lines = [
        f"Measured {m['date']} on {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']} "
        f"({m['platform']}); `{command}` took {results['total_s'] / 60:.1f} min. "
        "Median of the rounds, range in brackets; a ratio is taken within each round.",
        "",
        "| benchmark | figure | median (range) | against | ratio | target |",
        "|---|---|---|---|---|---|",
    ]
    for bench in results["benchmarks"]:
        if bench.get("error"):
            lines.append(f"| {bench['benchmark']} | failed: {bench['error']} | | | | |")
        for f in bench["figures"]:
            ratio = ""
            if f.get("ratios"):
                r = f["ratios"]
                ratio = _cell(statistics.median(r), min(r), max(r)) + "×"
            target = ""
            if f.get("target"):
                verdict = (VERDICT | {False: "**missed**"})[f.get("met")]
                target = f"{f['target']}: " + (verdict if f.get("judged", True) else UNJUDGED)
            name = (f["name"] + (f" ({f['note']})" if f.get("note") else "")).replace("|", "\\|")
            value = _cell(f["median"], f["low"], f["high"], f["unit"])
            lines.append(
                f"| {bench['benchmark']} | {name} | {value} | {f.get('anchor') or ''} | {ratio} | {target} |"
            )
    return "\n".join(lines) + "\n"


def quote_in_readme(table: str, marker: str = "bench") -> None:
    """Put the table between the README's ``marker`` markers, so its figures are the measured ones."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    text = README.read_text()
    if start not in text or end not in text:
        return
    head, rest = text.split(start, 1)
    README.write_text(f"{head}{start}\n{table}{end}{rest.split(end, 1)[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--large", action="store_true", help="the targets' own sizes instead")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    chosen = [s for s in (LARGE if args.large else SUITE) if not args.only or s[0] in args.only.split(",")]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="flywheel-bench-") as tmp:
        benches = [run_one(name, extra, Path(tmp)) for name, extra in chosen]
    total = time.perf_counter() - start
    command = "python benchmarks/run.py --large" if args.large else "make bench"
    results = {"machine": machine(), "command": command, "total_s": total, "benchmarks": benches}
    name = "results-large" if args.large else "results"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / f"{name}.md").write_text(markdown(results))
    failed = [b["benchmark"] for b in benches if b.get("error")]
    if not args.only and not failed:
        quote_in_readme(markdown(results), "bench-large" if args.large else "bench")
    limit = "" if args.large else f" (limit {LIMIT_S // 60} min: {'met' if total < LIMIT_S else 'missed'})"
    print(
        f"\n{'--large' if args.large else 'suite'}: {total / 60:.1f} min{limit}; "
        f"wrote {args.out / f'{name}.json'} and {args.out / f'{name}.md'}"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
