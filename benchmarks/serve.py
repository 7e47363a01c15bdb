"""Serving: throughput and tail latency with the durable log on and off, open-loop, on this machine.

Targets (DESIGN.md): at least 1,000 logged predictions/s, and logging adds at most 1 ms at p99
at a fixed 200 requests/s.

The load generator is *open-loop*: requests are sent on a fixed schedule whatever the server
does, and each latency is measured from the moment the request was *due*, not from when it was
sent. A closed-loop client (send, wait, send) slows down when the server does and so hides
queueing delay from its tail latencies (coordinated omission).

Anchors, in the same run: the same service with logging *off* (its log acknowledges and forgets
each submission; a benchmark-only stand-in, the product cannot serve unlogged). Against it:
``--ack fast`` (answers once the record is handed to the writer process) and ``--ack durable``
(answers once the record is committed and fsynced) — the differences are what logging costs.

    python benchmarks/serve.py [--seconds 12] [--rounds 6] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
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

HERE = Path(__file__).resolve().parent
FLYWHEEL = Path(sys.executable).parent / "flywheel"

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
    assert found, "the service did not start"
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
    proc.wait(timeout=30)
    if proc.stdout is not None:
        proc.stdout.close()


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
    fall on every mode alike; then pool each mode's latencies."""
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


def _disk_commit_ms(folder: Path, n: int = 400) -> tuple[float, float]:
    """p50 and p99 of one-row commits (WAL, synchronous=FULL) on this disk, alone and unhurried:
    the floor under what a durable acknowledgement can cost."""
    from flywheel.prediction_log import connect

    conn = connect(folder / "disk-anchor.db")
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
    p50, p99 = np.percentile(np.array(times) * 1000, [50, 99])
    return float(p50), float(p99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per mode and load")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds the seconds are cut into")
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s for the latency comparison")
    args = parser.parse_args()
    from flywheel.pipeline import promote, run

    folder = Path(tempfile.mkdtemp(prefix="flywheel-serve-bench-"))
    (folder / "flywheel.yaml").write_text(PROJECT, encoding="utf-8")
    run(folder, report=False)
    promote("logreg", folder, force=True)
    rows = load_wine(as_frame=True).frame.drop(columns=["target"])
    one = {k: float(v) for k, v in rows.iloc[0].items()}
    batch = {"rows": [{k: float(v) for k, v in r.items()} for r in rows.iloc[:50].to_dict(orient="records")]}

    servers = {mode: _start(folder, mode) for mode in ("off", "fast", "durable")}
    try:
        urls = {mode: url for mode, (_, url) in servers.items()}
        loads: dict[str, tuple[dict, float, int]] = {
            f"1 row @ {args.rate:g}/s": (one, args.rate, 1),
            "50-row batches @ 40/s": (batch, 40.0, 50),
        }
        results = {}
        rounds_of: dict[tuple[str, str], list[np.ndarray]] = {}
        for load, (body, rate, rows_per) in loads.items():
            measured = asyncio.run(_measure(urls, body, rate, args.seconds, args.rounds))
            for mode, (per_round, wall) in measured.items():
                lat = np.concatenate(per_round)
                rounds_of[(mode, load)] = per_round
                results[(mode, load)] = {
                    "requests": float(len(lat)),
                    "errors": float(np.isinf(lat).sum()),
                    "predictions_per_s": len(lat) * rows_per / wall,
                    "p50_ms": float(np.percentile(lat, 50)),
                    "p99_ms": float(np.percentile(lat, 99)),
                }
            print(f"  measured {load}", file=sys.stderr, flush=True)
    finally:
        for proc, _ in servers.values():
            _stop(proc)
    print(f"{'scenario':<34} {'req':>7} {'errors':>6} {'pred/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for (mode, load), r in sorted(results.items(), key=lambda kv: (kv[0][1], list(servers).index(kv[0][0]))):
        print(
            f"{mode + ' · ' + load:<34} {r['requests']:>7.0f} {r['errors']:>6.0f} "
            f"{r['predictions_per_s']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}"
        )
    single = f"1 row @ {args.rate:g}/s"
    off = results[("off", single)]
    for ack in ("fast", "durable"):
        mode = results[(ack, single)]
        p99, low, high = _p99_difference(rounds_of[(ack, single)], rounds_of[("off", single)])
        print(
            f"logging ({ack} ack) adds {mode['p50_ms'] - off['p50_ms']:+.2f} ms at p50, "
            f"{p99:+.2f} ms at p99 (95 % CI {low:+.2f} to {high:+.2f}) at {args.rate:g} req/s "
            "(target <= 1 ms at p99)"
        )
    p50, p99 = _disk_commit_ms(folder)
    print(f"the disk alone: a one-row durable commit takes {p50:.2f} ms at p50, {p99:.2f} ms at p99")
    print(
        "logged predictions/s in 50-row batches (durable): "
        f"{results[('durable', '50-row batches @ 40/s')]['predictions_per_s']:.0f} (target >= 1,000)"
    )


if __name__ == "__main__":
    main()
