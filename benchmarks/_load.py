"""Load for the serving benchmarks (serve.py, workers.py): the project they serve, a step of
closed-loop load from wrk or the asyncio fallback, open-loop latency at a fixed rate in interleaved
rounds, the paired bootstrap of a p99 difference, and one-row durable commits on this disk (the
anchor for what logging may add)."""

from __future__ import annotations

import asyncio
import gc
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
LUA = HERE / "serve_load.lua"
P99_LIMIT_MS = 50.0

PROJECT = """\
project: serve-bench
data: {source: builtin:wine, target: cultivar}
objective: {optimize: accuracy}
diagnosis: {forecast: false}
models:
  - {name: logreg, estimator: sklearn.linear_model.LogisticRegression, params: {max_iter: 2000}}
"""


class Client:
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


def wrk_step(url: str, body_file: Path, connections: int, seconds: int) -> Step:
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


async def python_step(url: str, body: dict, connections: int, seconds: float) -> Step:
    """One step with the asyncio client (the fallback when wrk is not installed)."""
    client = Client(url, body)
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


def generator(wanted: str) -> str:
    """The load generator for ``--generator auto|wrk|python``: wrk where it is installed."""
    found = shutil.which("wrk") is not None
    if wanted == "wrk" and not found:
        raise SystemExit("--generator wrk: wrk is not on the PATH (Debian: apt-get install wrk)")
    return "wrk" if wanted in ("auto", "wrk") and found else "python"


def step(generator: str, url: str, body: dict, body_file: Path, connections: int, seconds: int) -> Step:
    """One closed-loop step from ``generator`` (see :func:`generator`)."""
    if generator == "wrk":
        return wrk_step(url, body_file, connections, seconds)
    return asyncio.run(python_step(url, body, connections, seconds))


async def open_loop(client: Client, rate: float, seconds: float, warmup: float = 0.0) -> list[float]:
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


async def measure(urls: dict[str, str], body: dict, rate: float, seconds: float, rounds: int) -> dict:
    """Interleave the modes in short rounds (rotating their order) so drifts in the machine's load
    fall on every mode alike; each mode's latencies (ms) per round."""
    clients = {mode: Client(url, body) for mode, url in urls.items()}
    for client in clients.values():
        await client.open(16)
        await open_loop(client, rate, 0.0, warmup=1.0)  # connections and caches at this rate
    latencies: dict[str, list[list[float]]] = {mode: [] for mode in urls}
    modes = list(urls)
    # The generator must not pause either: its heap (this process ran the project) is large,
    # and a full collection (~0.1 s) would show as server latency on every request due meanwhile.
    gc.collect()
    gc.disable()
    try:
        for r in range(rounds):
            for mode in modes[r % len(modes) :] + modes[: r % len(modes)]:
                latencies[mode].append(await open_loop(clients[mode], rate, seconds / rounds, warmup=0.2))
    finally:
        gc.enable()
        for client in clients.values():
            client.close()
    for mode, client in clients.items():
        if client.failures:
            print(f"  {mode}: failed requests {client.failures}", file=sys.stderr, flush=True)
    return {mode: [np.array(r) * 1000 for r in latencies[mode]] for mode in urls}


def p99_difference(mode: list[np.ndarray], anchor: list[np.ndarray], q: float = 99.0) -> tuple[float, ...]:
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


def commit_times_ms(path: Path, n: int) -> np.ndarray:
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
