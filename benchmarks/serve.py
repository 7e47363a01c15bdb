"""Serving: throughput and tail latency with the durable log on and off, open-loop, on this machine.

Targets (DESIGN.md): at least 1,000 logged predictions/s, and logging adds at most 1 ms at p99
at a fixed 200 requests/s.

The load generator is *open-loop*: requests are sent on a fixed schedule whatever the server
does, and each latency is measured from the moment the request was *due*, not from when it was
sent. A closed-loop client (send, wait, send) slows down when the server does and so hides
queueing delay from its tail latencies (coordinated omission).

Anchors, in the same run: the same service with ``--ack fast`` (answers once queued: the log's
cost taken out of the request path) — the difference at p99 is what durability costs.

    python benchmarks/serve.py [--seconds 10] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
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


def _start(project: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [str(FLYWHEEL), "serve", str(project), "--port", "0", *args],
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


async def _open_loop(url: str, body: dict, rate: float, seconds: float, batch: int) -> dict[str, float]:
    """Send ``rate`` requests/s on a fixed schedule; latency counts from each request's due time."""
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        for _ in range(20):  # warm-up
            await client.post("/predict", json=body)
        start = time.perf_counter()
        n = int(rate * seconds)

        async def one(due: float) -> None:
            nonlocal errors
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                r = await client.post("/predict", json=body)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            errors += not ok
            latencies.append(time.perf_counter() - due)

        await asyncio.gather(*(one(start + i / rate) for i in range(n)))
        wall = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {
        "requests": float(n),
        "errors": float(errors),
        "predictions_per_s": n * batch / wall,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s for the latency comparison")
    args = parser.parse_args()
    from flywheel.gate import promote
    from flywheel.pipeline import run

    folder = Path(tempfile.mkdtemp(prefix="flywheel-serve-bench-"))
    (folder / "flywheel.yaml").write_text(PROJECT, encoding="utf-8")
    run(folder, report=False)
    promote("logreg", folder, force=True)
    rows = load_wine(as_frame=True).frame.drop(columns=["target"])
    one = {k: float(v) for k, v in rows.iloc[0].items()}
    batch = {"rows": [{k: float(v) for k, v in r.items()} for r in rows.iloc[:50].to_dict(orient="records")]}

    results: dict[str, dict[str, float]] = {}
    for ack in ("fast", "durable"):
        proc, url = _start(folder, "--ack", ack)
        try:
            for name, body, rate, rows_per in (
                (f"{ack} · 1 row @ {args.rate:g}/s", one, args.rate, 1),
                (f"{ack} · 50-row batches @ 40/s", batch, 40.0, 50),
            ):
                results[name] = asyncio.run(_open_loop(url, body, rate, args.seconds, rows_per))
                print(f"  measured {name}", file=sys.stderr, flush=True)
        finally:
            _stop(proc)
    print(f"{'scenario':<32} {'req':>7} {'errors':>6} {'pred/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in results.items():
        print(
            f"{name:<32} {r['requests']:>7.0f} {r['errors']:>6.0f} {r['predictions_per_s']:>9.0f} "
            f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}"
        )
    durable = results[f"durable · 1 row @ {args.rate:g}/s"]
    fast = results[f"fast · 1 row @ {args.rate:g}/s"]
    print(
        f"\nlogging adds {durable['p99_ms'] - fast['p99_ms']:+.2f} ms at p99 at {args.rate:g} req/s "
        f"(target <= 1 ms); logged predictions/s in batches: "
        f"{results['durable · 50-row batches @ 40/s']['predictions_per_s']:.0f} (target >= 1,000)"
    )


if __name__ == "__main__":
    main()
