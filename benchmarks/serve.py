"""Serving: capacity (requests/s at p99 < 50 ms) and what logging adds to p99 at a fixed rate.

Targets (DESIGN.md): at least 1,000 logged predictions/s on 2 cores, and logging adds no more than
one disk commit to p99 at a fixed 200 requests/s.

*Capacity* is closed-loop, from a native load generator: ``wrk -t1 -cN --latency`` with
``serve_load.lua`` (POST /predict, one JSON body) at N = 4, 8, 16, ... connections, a second or
more each; a step *holds* when every answer was a 200 and its p99 is under 50 ms, stepping stops
after two in a row that do not, and capacity is the most requests/s among the steps that held
(shown with that step's p99). Logged predictions/s = capacity × rows per request. Without ``wrk`` a
Python asyncio client steps the same way, and the output says so in capitals: it takes a core's
worth of CPU from the service it measures. The server and the generator share this machine's cores.

*Latency at a fixed rate* is open-loop: requests go out on a fixed schedule whatever the server
does, and each latency counts from the moment the request was *due* (a closed-loop client slows
down with the server and so hides queueing delay from its tail). The anchor for "p99 added by
logging" is one durable one-row commit on this disk.

Modes, in interleaved rounds (each round measures every mode, the order turning): logging *off*
(a benchmark-only stand-in whose log acknowledges and forgets each submission: the product cannot
serve unlogged), ``--ack fast`` (answers once the record is in the writer's pipe) and ``--ack
durable`` (answers once it is committed and fsynced). Each service logs into a database of its
own; after every step the benchmark waits until the log has nothing waiting for its writer (fast
mode answers before the commit), and after each mode's steps it checkpoints that log, so no mode's
writing is done during another's measurement.

    python benchmarks/serve.py [--rounds 3] [--step-seconds 1] [--connections 4,8,16,32,64]
                               [--rate 200] [--rate-seconds 1.5] [--generator auto|wrk|python]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from sklearn.datasets import load_wine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Figures, judge_interval, pinned
from _load import (
    P99_LIMIT_MS,
    PROJECT,
    Step,
    commit_times_ms,
    measure,
    p99_difference,
)
from _load import generator as choose_generator
from _load import step as one_step
from _projects import reap

FLYWHEEL = Path(sys.executable).parent / "flywheel"
MODES = ("off", "fast", "durable")
BATCH_ROWS = 32


# The "logging off" anchor: the same service whose log acknowledges and forgets every submission.
# It exists only here, to measure what logging costs; the product has no way to serve unlogged.
_UNLOGGED = """
import sys
from flywheel import prediction_log
from flywheel.cli import main

def forget(self, records, ack=None):
    if ack is not None:
        ack(None)

prediction_log.PredictionLog.submit = forget
sys.argv = ["flywheel", *sys.argv[1:]]
main()
"""


def _start(project: Path, ack: str) -> tuple[subprocess.Popen[str], str]:
    if ack == "off":
        command = [sys.executable, "-c", _UNLOGGED, "serve", str(project), "--port", "0", "--ack", "fast"]
    else:
        command = [str(FLYWHEEL), "serve", str(project), "--port", "0", "--ack", ack]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    found = re.search(r"http://127\.0\.0\.1:(\d+)", proc.stdout.readline())
    if not found:
        proc.kill()
        raise SystemExit(f"the {ack} service did not start")
    url = f"http://127.0.0.1:{found.group(1)}"
    for _ in range(200):
        try:
            if httpx.get(url + "/health").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc, url


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    reap(proc)


# --- capacity: closed loop, stepping the connections ----------------------------------------------


Stepper = Callable[[int], Step]


def _capacity(step: Stepper, steps: list[int], misses: int = 2) -> tuple[Step | None, list[Step]]:
    """Step up the connections until ``misses`` steps in a row do not hold (one blip of a busy
    machine does not end the climb); the best step that held (None: none did), and every step."""
    taken: list[Step] = []
    for connections in steps:
        taken.append(step(connections))
        if len(taken) >= misses and not any(s.holds for s in taken[-misses:]):
            break
    held = [s for s in taken if s.holds]
    return (max(held, key=lambda s: s.per_s) if held else None), taken


def _settled(url: str, timeout: float = 30.0) -> None:
    """Wait until the service's log has nothing waiting for its writer.

    ``--ack fast`` answers before the writer commits, so a step can end with a backlog; written
    during the next step (of this mode or another, on the same disk and cores), it would be
    charged to that one.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(url + "/health").json()["log_queue_depth"] == 0:
            return
        time.sleep(0.02)


def _checkpointed(project: Path) -> None:
    """Copy the service's write-ahead log into its database now, and empty it (the writer is idle).

    Else the writer's checkpoint thread copies it during the next measurement (of another mode),
    and a log under sustained load keeps a WAL of gigabytes for the rest of the run.
    """
    from flywheel.prediction_log import LOG_NAME

    path = project / ".flywheel" / LOG_NAME
    if path.exists():
        conn = sqlite3.connect(path, timeout=30)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()


def _stepper(generator: str, url: str, body: dict, body_file: Path, seconds: int) -> Stepper:
    def step(connections: int) -> Step:
        taken = one_step(generator, url, body, body_file, connections, seconds)
        _settled(url)
        return taken

    return step


# --- latency at a fixed rate: open loop -----------------------------------------------------------


# --- the run --------------------------------------------------------------------------------------


@dataclass
class _Setup:
    folder: Path  # holds one copy of the project per mode, so each mode logs into its own database
    bodies: dict[str, tuple[dict, Path, int]]  # load -> (JSON body, its file, rows per request)


def _setup() -> _Setup:
    from flywheel.pipeline import promote, run

    folder = Path(tempfile.mkdtemp(prefix="flywheel-serve-bench-"))
    trained = folder / "project"
    trained.mkdir()
    (trained / "flywheel.yaml").write_text(PROJECT, encoding="utf-8")
    run(trained, report=False)
    promote("logreg", trained, force=True)
    for mode in MODES:
        shutil.copytree(trained, folder / mode)
    rows = load_wine(as_frame=True).frame.drop(columns=["target"])
    one = {k: float(v) for k, v in rows.iloc[0].items()}
    batch = {"rows": [{k: float(v) for k, v in r.items()} for r in rows.iloc[:BATCH_ROWS].to_dict("records")]}
    bodies = {}
    for load, body, n in (("single rows", one, 1), (f"{BATCH_ROWS}-row batches", batch, BATCH_ROWS)):
        path = folder / f"body-{n}.json"
        path.write_text(json.dumps(body), encoding="utf-8")
        bodies[load] = (body, path, n)
    return _Setup(folder, bodies)


def _latency(urls: dict[str, str], setup: _Setup, args: argparse.Namespace) -> dict:
    """Per round: each mode's latencies (ms) at ``--rate``, open loop, then one-row disk commits."""
    body = setup.bodies["single rows"][0]
    measured = asyncio.run(
        measure(urls, body, args.rate, args.rate_seconds * args.rounds * 2, args.rounds * 2)
    )
    out = dict(measured)
    out["disk"] = [commit_times_ms(setup.folder / "disk-anchor.db", 200) for _ in range(args.rounds * 2)]
    return out


def _capacities(urls: dict[str, str], setup: _Setup, generator: str, args: argparse.Namespace) -> dict:
    """(load, mode) -> the best step that held in each round (None where none did)."""
    steps = [int(c) for c in args.connections.split(",")]
    steppers = {
        (load, mode): _stepper(generator, url, body, path, args.step_seconds)
        for load, (body, path, _) in setup.bodies.items()
        for mode, url in urls.items()
    }
    for step in steppers.values():  # connections, the fast path's first checks, caches
        step(4)
    best: dict[tuple[str, str], list[Step | None]] = {key: [] for key in steppers}
    modes = list(urls)
    for r in range(args.rounds):
        for load in setup.bodies:
            for mode in modes[r % len(modes) :] + modes[: r % len(modes)]:
                found, taken = _capacity(steppers[(load, mode)], steps)
                best[(load, mode)].append(found)
                _checkpointed(setup.folder / mode)
                shown = " | ".join(f"c{s.connections} {s.per_s:,.0f}/s p99 {s.p99_ms:.1f}" for s in taken)
                failed = sum(s.failed for s in taken)
                print(
                    f"  round {r + 1} · {load} · {mode}: {shown}" + (f" ({failed} failed)" if failed else ""),
                    file=sys.stderr,
                    flush=True,
                )
    return best


def _held(steps: list[Step | None]) -> str:
    """Where the rounds' best steps were: their p99 (median) and connections."""
    held = [s for s in steps if s is not None]
    if not held:
        return "no step held"
    at = "/".join(str(s.connections) for s in held)
    return f"p99 at that step {np.median([s.p99_ms for s in held]):.1f} ms, at {at} connections"


def _report_capacity(figures: Figures, best: dict, setup: _Setup) -> None:
    """Capacity per load and mode (ratios against logging off), and logged predictions/s."""
    for load, (_, _, rows) in setup.bodies.items():
        per_s = {mode: [s.per_s if s else 0.0 for s in best[(load, mode)]] for mode in MODES}
        for mode in MODES:
            off = mode == "off"
            figures.add(
                f"capacity, {load}, " + ("logging off" if off else f"--ack {mode}"),
                per_s[mode],
                "req/s",
                anchor=None if off else "logging off",
                anchor_values=None if off else per_s["off"],
                note=_held(best[(load, mode)]),
            )
        for mode in ("fast", "durable"):
            logged = [v * rows for v in per_s[mode]]
            durable = mode == "durable"
            figures.add(
                f"logged predictions/s at capacity, {load}, --ack {mode}",
                logged,
                "predictions/s",
                target=">= 1,000" if durable else None,
                met=bool(np.median(logged) >= 1000) if durable else None,
            )
        figures.add(
            f"capacity, {load}, --ack fast against --ack durable",
            per_s["fast"],
            "req/s",
            anchor="--ack durable",
            anchor_values=[v or float("nan") for v in per_s["durable"]],
        )


def _report_latency(figures: Figures, latency: dict, rate: float) -> None:
    """p99 at the fixed rate with logging off, what each ack mode adds, and one disk commit's p99.

    The target is judged on the difference pooled over rounds, with its 95 % interval, and on
    every round's difference (``_harness.judge_interval``): met when all of them are under the
    lowest round of the disk's commit p99, missed when all are over its highest, else undecided.
    """
    p99 = {mode: [float(np.percentile(r, 99)) for r in latency[mode]] for mode in (*MODES, "disk")}
    figures.add(f"p99 at {rate:g} req/s, single rows, logging off", p99["off"], "ms")
    figures.add("one durable one-row commit on this disk, p99 (servers idle)", p99["disk"], "ms")
    for mode in ("fast", "durable"):
        point, low, high = p99_difference(latency[mode], latency["off"])
        added = [a - b for a, b in zip(p99[mode], p99["off"], strict=True)]
        met = judge_interval(low, high, p99["disk"], added)
        figures.add(
            f"p99 added by logging at {rate:g} req/s, --ack {mode}",
            added,
            "ms",
            target=f"<= one disk commit, {min(p99['disk']):.2f}–{max(p99['disk']):.2f} ms"
            if mode == "durable"
            else None,
            met=met if mode == "durable" else None,
            note=f"pooled over rounds {point:+.2f} ms, 95 % CI {low:+.2f} to {high:+.2f}",
        )


def _method(generator: str, args: argparse.Namespace) -> None:
    cores = os.cpu_count()
    if generator == "wrk":
        print(f"load generator: wrk, one thread (-t1), closed loop; it and the service share {cores} cores")
    else:
        why = "--generator python" if shutil.which("wrk") else "wrk is not installed: apt-get install wrk"
        print(
            f"load generator: PYTHON FALLBACK ({why}), closed loop, asyncio; it and the service share "
            f"{cores} cores, and its own CPU lowers every capacity below"
        )
    print(
        f"capacity = most requests/s among the steps ({args.connections} connections, "
        f"{args.step_seconds} s each, up to two in a row that miss) whose p99 < {P99_LIMIT_MS:g} ms "
        "with no failed request; "
        f"median (range) of {args.rounds} interleaved rounds"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="capacity rounds (latency: twice as many)")
    parser.add_argument("--step-seconds", type=int, default=1, help="seconds per closed-loop step")
    parser.add_argument("--connections", default="4,8,16,32,64", help="the steps' connections")
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s for the latency comparison")
    parser.add_argument("--rate-seconds", type=float, default=1.5, help="seconds per mode and latency round")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    Figures.add_arguments(parser)
    args = parser.parse_args()
    generator = choose_generator(args.generator)
    figures = Figures("serve", args.json)
    setup = _setup()
    try:
        with pinned(1):
            servers = {mode: _start(setup.folder / mode, mode) for mode in MODES}
            try:
                urls = {mode: url for mode, (_, url) in servers.items()}
                latency = _latency(urls, setup, args)
                best = _capacities(urls, setup, generator, args)
            finally:
                for proc, _ in servers.values():
                    _stop(proc)
    finally:
        shutil.rmtree(setup.folder, ignore_errors=True)  # the logs of a run: gigabytes
    _method(generator, args)
    _report_capacity(figures, best, setup)
    _report_latency(figures, latency, args.rate)
    figures.write()


if __name__ == "__main__":
    main()
