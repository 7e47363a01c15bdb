"""Serving with several workers: logged single-row predictions/s at capacity with 1 and 2 workers
(one shared log writer), and what durable logging adds to p99 at a fixed rate next to the disk's
own commit time.

Capacity is closed-loop on purpose (the question is "how many per second can it log", not "how
late is a request"): ``--connections`` keep-alive connections each send a request as soon as the
previous answer arrives, for ``--seconds``, and every answered request is a durable, logged
prediction (ack durable). The 1-worker and 2-worker services run side by side and are measured in
interleaved rounds, so drifts in the machine's load fall on both. The generator is the lean
asyncio client of ``serve.py`` in a process of its own; on a 2-core machine it, the workers,
their model processes and the writer all share the two cores, so read the ratio, not the figure.

The p99 part: the 2-worker service with the log on (durable) against the same service with the
log off at ``--rate`` requests/s, open-loop, with the paired bootstrap of ``serve.py``; the
anchor is one durable one-row commit on this disk.

    python benchmarks/workers.py [--seconds 6] [--rounds 3] [--connections 32] [--rate 200] [--model-on-loop]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from sklearn.datasets import load_wine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import PROJECT, _Client, _disk_commit_ms, _measure, _p99_difference

FLYWHEEL = Path(sys.executable).parent / "flywheel"
EXTRA: list[str] = []  # more `flywheel serve` flags (--model-on-loop), the same for every service


# The "logging off" anchor (benchmark only, as in serve.py): every process of the service — the
# workers are spawned, so a patch in the supervisor alone would not reach them — loads this first.
_FORGET = """
import flywheel.prediction_log as log

def forget(self, records, ack=None):
    if ack is not None:
        ack(None)

log.PredictionLog.submit = forget
"""


def _start(project: Path, workers: int, logged: bool = True) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ)
    if not logged:
        patch = Path(tempfile.mkdtemp(prefix="flywheel-unlogged-"))
        (patch / "sitecustomize.py").write_text(_FORGET, encoding="utf-8")
        env["PYTHONPATH"] = str(patch)
    command = [str(FLYWHEEL), "serve", str(project), "--port", "0", "--workers", str(workers), *EXTRA]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    found = re.search(r"http://127\.0\.0\.1:(\d+)", proc.stdout.readline())
    assert found, "the service did not start"
    url = f"http://127.0.0.1:{found.group(1)}"
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while len(seen) < workers and time.monotonic() < deadline:  # every worker up
        try:
            seen.add(httpx.get(url + "/health", headers={"connection": "close"}).json()["worker"])
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc, url


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    if proc.stdout is not None:
        proc.stdout.close()


async def _capacity(url: str, body: dict, connections: int, seconds: float) -> float:
    """Answered requests/s with ``connections`` requests always in flight (closed loop)."""
    client = _Client(url, body)
    await client.open(connections)
    done = 0
    stop = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            if await client.post() == 200:
                done += 1

    began = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(connections)))
    elapsed = time.perf_counter() - began
    client.close()
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds per capacity measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--connections", type=int, default=32, help="requests in flight at capacity")
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s for the p99 comparison")
    parser.add_argument("--model-on-loop", action="store_true", help="serve with --model-on-loop")
    args = parser.parse_args()
    EXTRA.extend(["--model-on-loop"] if args.model_on_loop else [])
    from flywheel.pipeline import promote, run

    folder = Path(tempfile.mkdtemp(prefix="flywheel-workers-bench-"))
    (folder / "flywheel.yaml").write_text(PROJECT, encoding="utf-8")
    run(folder, report=False)
    promote("logreg", folder, force=True)
    row = load_wine(as_frame=True).frame.drop(columns=["target"]).iloc[0]
    body = {k: float(v) for k, v in row.items()}

    rates: dict[int, list[float]] = {1: [], 2: []}
    servers = {n: _start(folder, n) for n in rates}
    try:
        for r in range(args.rounds):
            for n in list(rates) if r % 2 == 0 else list(reversed(rates)):
                rates[n].append(asyncio.run(_capacity(servers[n][1], body, args.connections, args.seconds)))
                print(f"  round {r + 1}: {n} worker(s) {rates[n][-1]:.0f}/s", file=sys.stderr, flush=True)
    finally:
        for proc, _ in servers.values():
            _stop(proc)
    print("logged single-row predictions/s at capacity (durable ack), median (range) of rounds:")
    for n, values in rates.items():
        print(f"  {n} worker(s): {np.median(values):,.0f}/s ({min(values):,.0f}–{max(values):,.0f})")
    ratios = [b / a for a, b in zip(rates[1], rates[2], strict=True)]
    print(
        f"  2 workers / 1 worker, round by round: {np.median(ratios):.2f}× "
        f"({min(ratios):.2f}–{max(ratios):.2f})"
    )

    pair = {"off": _start(folder, 2, logged=False), "durable": _start(folder, 2)}
    try:
        measured = asyncio.run(
            _measure(
                {m: url for m, (_, url) in pair.items()}, body, args.rate, 4.0 * args.rounds, args.rounds * 2
            )
        )
    finally:
        for proc, _ in pair.values():
            _stop(proc)
    on, off = measured["durable"][0], measured["off"][0]
    p99, low, high = _p99_difference(on, off)
    p50, disk99 = _disk_commit_ms(folder)
    print(
        f"2 workers at {args.rate:g} req/s: durable logging adds {p99:+.2f} ms at p99 (95 % CI {low:+.2f} "
        f"to {high:+.2f}); p99 {np.percentile(np.concatenate(on), 99):.2f} ms logged, "
        f"{np.percentile(np.concatenate(off), 99):.2f} ms unlogged"
    )
    print(f"the disk alone: a one-row durable commit takes {p50:.2f} ms at p50, {disk99:.2f} ms at p99")


if __name__ == "__main__":
    main()
