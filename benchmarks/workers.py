"""Serving with several workers: logged single-row predictions/s at capacity with 1 and 2 workers
(one shared log writer), and what durable logging adds to the 2-worker service's p99 at a fixed
rate next to the disk's own commit time.

Every service is `flywheel serve DIR --port 0 --workers N` run as a user runs it, with the
OpenMP/BLAS threads of every process pinned to one: the 2-worker figure is about using more
cores, and it does so with processes (two workers, each with its model process, and one writer),
not threads.

*Capacity* is closed-loop on purpose (the question is "how many per second can it log", not "how
late is a request"): ``--connections`` keep-alive connections each send a request as soon as the
previous answer arrives, for ``--seconds``, and every answered request is a durable, logged
prediction (ack durable). The load generator is ``wrk`` (one thread) where it is installed, else
the asyncio client of ``_load.py`` (which takes a core's worth of CPU from the service: the output
says which). The 1-worker and 2-worker services run side by side and are measured in interleaved
rounds (the order turning), so drifts in the machine's load fall on both; the 1-worker service is
the 2-worker one's anchor. On a 2-core machine the generator, the workers, their model processes
and the writer all share the two cores, so read the ratio, not the figure.

*p99 at a fixed rate*: the 2-worker service with the log on (durable) against the same service
with the log off (a benchmark-only stand-in whose log acknowledges and forgets), at ``--rate``
requests/s, open loop, in twice ``--rounds`` interleaved rounds, with the paired bootstrap of
``_load.py``; the anchor is one durable one-row commit on this disk, measured after each round.
The target (DESIGN.md's for serving: logging adds no more than one disk commit to p99) is judged
as in ``serve.py`` (``_harness.judge_interval``): met when the pooled difference's 95 % interval
and every round's difference are under the lowest round of the disk's commit p99, missed when all
of them are over its highest, else undecided.

    python benchmarks/workers.py [--seconds 3] [--rounds 3] [--connections 32] [--rate 200]
                                 [--rate-seconds 1] [--model-on-loop] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from _harness import Figures, judge_interval, pinned
from _load import PROJECT, commit_times_ms, measure, p99_difference
from _load import generator as choose_generator
from _load import step as one_step
from _projects import FLYWHEEL, Server, serving, trained_project
from sklearn.datasets import load_wine

# The "logging off" anchor (benchmark only, as in serve.py): every process of the service — the
# workers are spawned, so a patch in the supervisor alone would not reach them — loads this first.
_FORGET = """
import flywheel.prediction_log as log

def forget(self, records, ack=None):
    if ack is not None:
        ack(None)

log.PredictionLog.submit = forget
"""


def _every_worker(workers: int) -> Callable[[str], bool]:
    """A readiness check: true once ``/health`` has been answered by each of ``workers``."""
    seen: set[int] = set()

    def ready(url: str) -> bool:
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            seen.add(httpx.get(url + "/health", headers={"connection": "close"}).json()["worker"])
        return len(seen) >= workers

    return ready


def _service(project: Path, workers: int, extra: list[str], *, logged: bool = True) -> Server:
    """``flywheel serve DIR --workers N``, ready once every worker has answered."""
    env = dict(os.environ)
    if not logged:
        patch = project / "unlogged"
        patch.mkdir(exist_ok=True)
        (patch / "sitecustomize.py").write_text(_FORGET, encoding="utf-8")
        env["PYTHONPATH"] = str(patch)
    command = [FLYWHEEL, "serve", str(project), "--port", "0", "--workers", str(workers), *extra]
    return Server(command, env, _every_worker(workers))


def _capacity(generator: str, url: str, body: dict, body_file: Path, connections: int, seconds: int) -> float:
    """Answered (200, logged) requests/s with ``connections`` requests always in flight (closed loop)."""
    step = one_step(generator, url, body, body_file, connections, seconds)
    if step.failed:  # answered but not logged (a 503, say), or not answered: not counted
        print(f"  {step.failed} failed requests at {url}", file=sys.stderr, flush=True)
    return max(0.0, step.per_s - step.failed / seconds)


def _progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="seconds per capacity measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (p99: twice as many)")
    parser.add_argument("--connections", type=int, default=32, help="requests in flight at capacity")
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s for the p99 comparison")
    parser.add_argument("--rate-seconds", type=float, default=1.0, help="seconds per service and p99 round")
    parser.add_argument("--model-on-loop", action="store_true", help="serve with --model-on-loop")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    Figures.add_arguments(parser)
    args = parser.parse_args()
    figures = Figures("workers", args.json)
    generator = choose_generator(args.generator)
    extra = ["--model-on-loop"] if args.model_on_loop else []

    row = load_wine(as_frame=True).frame.drop(columns=["target"]).iloc[0]
    body = {k: float(v) for k, v in row.items()}
    rounds = args.rounds * 2
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="flywheel-workers-bench-") as tmp, pinned(1):
        folder = Path(tmp)
        body_file = folder / "body.json"
        body_file.write_text(json.dumps(body), encoding="utf-8")
        trained = trained_project(folder / "trained", PROJECT)
        for name in ("one", "two", "off"):  # a log of its own each: no writer works for another
            shutil.copytree(trained, folder / name)
        _progress(f"project trained in {time.perf_counter() - began:.0f} s")
        services = (
            _service(folder / "one", 1, extra),
            _service(folder / "two", 2, extra),
            _service(folder / "off", 2, extra, logged=False),
        )
        with serving(*services) as ((one, _), (two, _), (off, _)):
            _progress(f"services up at {time.perf_counter() - began:.0f} s")
            urls = {1: one, 2: two}
            for url in urls.values():  # connections, first checks, caches
                _capacity(generator, url, body, body_file, args.connections, 1)
            rates: dict[int, list[float]] = {1: [], 2: []}
            for r in range(args.rounds):
                for n in (1, 2) if r % 2 == 0 else (2, 1):
                    per_s = _capacity(generator, urls[n], body, body_file, args.connections, args.seconds)
                    rates[n].append(per_s)
                    _progress(f"round {r + 1}: {n} worker(s) {per_s:,.0f}/s")
            _progress(f"capacity measured at {time.perf_counter() - began:.0f} s")
            measured = asyncio.run(
                measure({"off": off, "durable": two}, body, args.rate, args.rate_seconds * rounds, rounds)
            )
            _progress(f"p99 measured at {time.perf_counter() - began:.0f} s")
        _progress(f"services stopped at {time.perf_counter() - began:.0f} s")
        disk = [commit_times_ms(folder / "disk-anchor.db", 100) for _ in range(rounds)]

    print(
        f"load generator: {'wrk, one thread' if generator == 'wrk' else 'PYTHON FALLBACK (asyncio)'}, "
        f"{args.connections} connections, {args.seconds} s a round; it and the services share "
        f"{os.cpu_count()} cores; BLAS/OpenMP threads pinned to 1 in every process"
    )
    load = f"{args.connections} in flight, --ack durable" + (", --model-on-loop" if extra else "")
    figures.add(f"logged single-row predictions/s at capacity, 1 worker ({load})", rates[1], "predictions/s")
    figures.add(
        f"logged single-row predictions/s at capacity, 2 workers ({load})",
        rates[2],
        "predictions/s",
        anchor="1 worker, the same round",
        anchor_values=rates[1],
    )
    on, unlogged = measured["durable"], measured["off"]
    p99 = {
        "on": [float(np.percentile(r, 99)) for r in on],
        "off": [float(np.percentile(r, 99)) for r in unlogged],
        "disk": [float(np.percentile(r, 99)) for r in disk],
    }
    figures.add(f"p99 at {args.rate:g} req/s, 2 workers, logging off", p99["off"], "ms")
    figures.add("one durable one-row commit on this disk, p99 (after each round)", p99["disk"], "ms")
    point, low, high = p99_difference(on, unlogged)
    added = [a - b for a, b in zip(p99["on"], p99["off"], strict=True)]
    # Judged as serve.py does: on the pooled difference's interval and on every round, against
    # the disk's commit p99 of every round (see judge_interval).
    met = judge_interval(low, high, p99["disk"], added)
    figures.add(
        f"p99 added by durable logging at {args.rate:g} req/s, 2 workers",
        added,
        "ms",
        anchor="one disk commit's p99",
        anchor_values=p99["disk"],
        target=f"<= one disk commit, {min(p99['disk']):.2f}–{max(p99['disk']):.2f} ms",
        met=met,
        note=f"pooled over rounds {point:+.2f} ms, 95 % CI {low:+.2f} to {high:+.2f}",
    )
    figures.write()


if __name__ == "__main__":
    main()
