"""Serving: capacity (requests/s at p99 < 50 ms) and what logging adds to p99 at a fixed rate.

Targets (DESIGN.md): at least 1,000 logged predictions/s on 2 cores, and logging adds no more than
one disk commit to p99 at a fixed 200 requests/s.

*Capacity* is closed-loop, from a native load generator: ``wrk -t1 -cN --latency`` with
``serve_load.lua`` (POST /predict, one JSON body) at N = 2, 4, 8, ... connections, a second or
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

    python benchmarks/serve.py [--rounds 3] [--step-seconds 1] [--connections 2,4,8,16,32,64]
                               [--rate 200] [--rate-seconds 1.5] [--generator auto|wrk|python]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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
from _harness import Figures, pinned
from _projects import reap

HERE = Path(__file__).resolve().parent
FLYWHEEL = Path(sys.executable).parent / "flywheel"
LUA = HERE / "serve_load.lua"
MODES = ("off", "fast", "durable")
P99_LIMIT_MS = 50.0
BATCH_ROWS = 32

PROJECT = """\
project: serve-bench
data: {source: builtin:wine, target: cultivar}
objective: {optimize: accuracy}
diagnosis: {forecast: false}
models:
  - {name: logreg, estimator: sklearn.linear_model.LogisticRegression, params: {max_iter: 2000}}
"""


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


class _Client:
    """A lean HTTP/1.1 load generator on keep-alive connections (wrk2's way, in asyncio).

    httpx costs about a millisecond of CPU per request, and on two cores the generator's CPU is
    taken from the server it measures; this one writes pre-encoded requests and reads just the
    status line and the body's length.
    """

    def __init__(self, url: str, body: dict) -> None:
        found = re.match(r"http://([^:/]+):(\d+)", url)
        assert found
        self.host, self.port = found.group(1), int(found.group(2))
        payload = json.dumps(body).encode()
        self.request = (
            f"POST /predict HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode() + payload
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.failures: dict[str, int] = {}  # what failed requests got (a status or an exception)

    async def open(self, connections: int) -> None:
        for _ in range(connections):
            self.idle.append(await asyncio.open_connection(self.host, self.port))

    async def post(self) -> int:
        # A request due while every connection is busy opens a new one: its handshake is latency too.
        # So does one whose connection the server closed for idling (uvicorn: after 5 s).
        while self.idle and self.idle[-1][0].at_eof():
            self.idle.pop()[1].close()
        conn = self.idle.pop() if self.idle else await asyncio.open_connection(self.host, self.port)
        reader, writer = conn
        writer.write(self.request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        await reader.readexactly(int(length.group(1)) if length else 0)
        self.idle.append(conn)
        return int(head[9:12])

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle = []


# --- capacity: closed loop, stepping the connections ----------------------------------------------


@dataclass(frozen=True)
class Step:
    """One closed-loop step: ``connections`` requests always in flight for a few seconds."""

    connections: int
    per_s: float  # answered requests/s (every answer, 200 or not)
    p50_ms: float
    p99_ms: float
    failed: int  # answers other than 200, and socket errors or timeouts

    @property
    def holds(self) -> bool:
        return self.failed == 0 and self.p99_ms < P99_LIMIT_MS


def _wrk_step(url: str, body_file: Path, connections: int, seconds: int) -> Step:
    """One step with wrk (one thread), through serve_load.lua's summary line."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(LUA)]
    out = subprocess.run(
        [*command, url + "/predict", "--", str(body_file)], capture_output=True, text=True, check=True
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("FLYWHEEL "))
    got = {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    return Step(
        connections,
        got["requests"] / got["seconds"],
        got["p50_us"] / 1000,
        got["p99_us"] / 1000,
        int(got["non2xx"] + got["socket_errors"]),
    )


async def _python_step(url: str, body: dict, connections: int, seconds: float) -> Step:
    """One step with the asyncio client (the fallback when wrk is not installed)."""
    client = _Client(url, body)
    await client.open(connections)
    latencies: list[float] = []
    failed = 0
    stop = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal failed
        while (began := time.perf_counter()) < stop:
            try:
                ok = await client.post() == 200
            except (OSError, asyncio.IncompleteReadError, ValueError):
                ok = False
            latencies.append(time.perf_counter() - began)
            failed += 0 if ok else 1

    began = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(connections)))
    elapsed = time.perf_counter() - began
    client.close()
    p50, p99 = np.percentile(np.array(latencies) * 1000, [50, 99])
    return Step(connections, len(latencies) / elapsed, float(p50), float(p99), failed)


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
        if generator == "wrk":
            taken = _wrk_step(url, body_file, connections, seconds)
        else:
            taken = asyncio.run(_python_step(url, body, connections, seconds))
        _settled(url)
        return taken

    return step


# --- latency at a fixed rate: open loop -----------------------------------------------------------


async def _open_loop(client: _Client, rate: float, seconds: float, warmup: float = 0.0) -> list[float]:
    """Send ``rate`` requests/s on a fixed schedule; latency (s) counts from each request's due time.

    Requests due during ``warmup`` are sent but not counted. A failed request counts as infinitely
    slow, so errors cannot flatter the percentiles.
    """
    latencies: list[float] = []
    start = time.perf_counter() + warmup

    async def one(due: float) -> None:
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        status: int | str
        try:
            status = await client.post()
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            status = type(exc).__name__
        ok = status == 200
        if not ok and due >= start:
            client.failures[str(status)] = client.failures.get(str(status), 0) + 1
        if due >= start:
            latencies.append(time.perf_counter() - due if ok else float("inf"))

    await asyncio.gather(*(one(start + i / rate) for i in range(-int(rate * warmup), int(rate * seconds))))
    return latencies


async def _measure(urls: dict[str, str], body: dict, rate: float, seconds: float, rounds: int) -> dict:
    """Interleave the modes in short rounds (rotating their order) so drifts in the machine's load
    fall on every mode alike; each mode's latencies (ms) per round, and its measured seconds."""
    clients = {mode: _Client(url, body) for mode, url in urls.items()}
    for client in clients.values():
        await client.open(16)
        await _open_loop(client, rate, 0.0, warmup=1.0)  # connections and caches at this rate
    latencies: dict[str, list[list[float]]] = {mode: [] for mode in urls}
    walls: dict[str, float] = dict.fromkeys(urls, 0.0)
    modes = list(urls)
    # The generator must not pause either: its heap (this process ran the project) is large,
    # and a full collection (~0.1 s) would show as server latency on every request due meanwhile.
    gc.collect()
    gc.disable()
    try:
        for r in range(rounds):
            for mode in modes[r % len(modes) :] + modes[: r % len(modes)]:
                began = time.perf_counter()
                latencies[mode].append(await _open_loop(clients[mode], rate, seconds / rounds, warmup=0.2))
                walls[mode] += time.perf_counter() - began - 0.2
    finally:
        gc.enable()
        for client in clients.values():
            client.close()
    for mode, client in clients.items():
        if client.failures:
            print(f"  {mode}: failed requests {client.failures}", file=sys.stderr, flush=True)
    return {mode: ([np.array(r) * 1000 for r in latencies[mode]], walls[mode]) for mode in urls}


def _p99_difference(mode: list[np.ndarray], anchor: list[np.ndarray], q: float = 99.0) -> tuple[float, ...]:
    """The difference in the q-th percentile, with a 95 % interval from a paired bootstrap of rounds.

    Rounds, not requests, are resampled: requests of one round share the machine's state and are
    not independent, and round r of each mode ran under the same conditions (so they are paired).
    """
    rng = np.random.default_rng(0)
    rounds = len(mode)
    point = np.percentile(np.concatenate(mode), q) - np.percentile(np.concatenate(anchor), q)
    draws = []
    for _ in range(2000):
        idx = rng.integers(0, rounds, rounds)
        a = np.percentile(np.concatenate([mode[i] for i in idx]), q)
        b = np.percentile(np.concatenate([anchor[i] for i in idx]), q)
        draws.append(a - b)
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(point), float(low), float(high)


def _commit_times_ms(path: Path, n: int) -> np.ndarray:
    """``n`` one-row durable commits (WAL, synchronous=FULL, as the log's writer) on this disk, ms."""
    from flywheel.prediction_log import connect

    conn: sqlite3.Connection = connect(path)
    times = []
    for i in range(n):
        began = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        row = (str(i), "a", "anchor", 0.0)
        conn.execute("INSERT INTO feedback(prediction_id, label, source, at) VALUES (?,?,?,?)", row)
        conn.execute("COMMIT")
        times.append(time.perf_counter() - began)
        time.sleep(0.002)
    conn.close()
    return np.array(times) * 1000


def _disk_commit_ms(folder: Path, n: int = 400) -> tuple[float, float]:
    """p50 and p99 of one-row commits on this disk, alone and unhurried: the floor under what a
    durable acknowledgement can cost."""
    p50, p99 = np.percentile(_commit_times_ms(folder / "disk-anchor.db", n), [50, 99])
    return float(p50), float(p99)


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
        _measure(urls, body, args.rate, args.rate_seconds * args.rounds * 2, args.rounds * 2)
    )
    out = {mode: per_round for mode, (per_round, _) in measured.items()}
    out["disk"] = [_commit_times_ms(setup.folder / "disk-anchor.db", 200) for _ in range(args.rounds * 2)]
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

    The target is judged on the difference pooled over rounds, with its 95 % interval: met when
    the whole interval is at most one commit, missed when all of it is above, else undecided (?).
    """
    p99 = {mode: [float(np.percentile(r, 99)) for r in latency[mode]] for mode in (*MODES, "disk")}
    disk = float(np.percentile(np.concatenate(latency["disk"]), 99))
    figures.add(f"p99 at {rate:g} req/s, single rows, logging off", p99["off"], "ms")
    figures.add("one durable one-row commit on this disk, p99 (servers idle)", p99["disk"], "ms")
    for mode in ("fast", "durable"):
        point, low, high = _p99_difference(latency[mode], latency["off"])
        met = True if high <= disk else False if low > disk else None
        figures.add(
            f"p99 added by logging at {rate:g} req/s, --ack {mode}",
            [a - b for a, b in zip(p99[mode], p99["off"], strict=True)],
            "ms",
            target=f"<= one disk commit, {disk:.2f} ms" if mode == "durable" else None,
            met=met if mode == "durable" else None,
            note=f"pooled over rounds {point:+.2f} ms, 95 % CI {low:+.2f} to {high:+.2f}",
        )


def _generator(wanted: str) -> str:
    found = shutil.which("wrk") is not None
    if wanted == "wrk" and not found:
        raise SystemExit("--generator wrk: wrk is not on the PATH (Debian: apt-get install wrk)")
    return "wrk" if wanted in ("auto", "wrk") and found else "python"


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
    parser.add_argument("--connections", default="2,4,8,16,32,64", help="the steps' connections")
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s for the latency comparison")
    parser.add_argument("--rate-seconds", type=float, default=1.5, help="seconds per mode and latency round")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    Figures.add_arguments(parser)
    args = parser.parse_args()
    generator = _generator(args.generator)
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
