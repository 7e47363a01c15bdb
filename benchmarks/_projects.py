"""What the benchmarks that run a project share: a trained project with a champion, a prediction
log written as the service writes it, the ``flywheel`` command timed end to end with its peak
memory, served commands started and stopped, and rounds whose contenders need an untimed step
before each timed one (a monitor "from scratch" first deletes what the last one kept).

``monitor.py`` and ``workbench.py`` set up their projects and time their rounds with these;
``workers.py`` starts its services with ``serving``; ``startup.py`` and ``out_of_core.py`` take
``judge`` (and the paths).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _harness import timed

ROOT = Path(__file__).resolve().parents[1]
FLYWHEEL = str(Path(sys.executable).parent / "flywheel")
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None

# (inputs rows x features, predictions, probabilities rows x classes or None, latency ms) of a chunk
Chunk = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]


def flywheel(*args: str, cwd: Path | None = None, ok: tuple[int, ...] = (0,)) -> str:
    """Run ``flywheel ARGS`` (setup, not timed); its stdout, or the reason it failed and exit 1."""
    done = subprocess.run([FLYWHEEL, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode not in ok:
        raise SystemExit(f"flywheel {' '.join(args)} failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


@dataclass
class Ran:
    """One command run to its end: its output and its peak resident memory."""

    stdout: str
    peak_mib: float


def run_measured(args: list[str], cwd: Path | None = None) -> Ran:
    """Run a command to its end with its peak resident memory; a failure raises with its stderr.

    The peak is the command's own: GNU time's ``%M`` where ``/usr/bin/time`` exists (its fork is
    small), else the last ``VmHWM`` polled every 10 ms. Not ``wait4``'s ``ru_maxrss``: a child
    forked from this process inherits this process's high-water mark, which would hide its own.
    """
    with tempfile.TemporaryDirectory(prefix="flywheel-run-") as tmp:
        report = Path(tmp) / "peak"
        command = [GNU_TIME, "-f", "%M", "-o", str(report), *args] if GNU_TIME else args
        with open(Path(tmp) / "out", "w+") as out, open(Path(tmp) / "err", "w+") as err:
            proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err, text=True)
            peak_kib = 0
            while GNU_TIME is None and proc.poll() is None:
                peak_kib = max(peak_kib, _hwm_kib(proc.pid))
                time.sleep(0.01)
            proc.wait()
            out.seek(0)
            err.seek(0)
            if proc.returncode != 0:
                raise SystemExit(f"{' '.join(args)} failed (exit {proc.returncode}): {err.read()[-2000:]}")
            if GNU_TIME:
                peak_kib = int(report.read_text().split()[-1])
            return Ran(out.read(), peak_kib / 1024)


def _hwm_kib(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def trained_project(folder: Path, yaml: str, files: dict[str, Any] | None = None) -> Path:
    """``folder`` with ``yaml`` as its flywheel.yaml (and ``files``: name -> a DataFrame written as
    CSV), run once (the library call, no report) and its first model promoted: a project with a
    stored run and a champion."""
    from flywheel.pipeline import promote, run

    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (files or {}).items():
        frame.to_csv(folder / name, index=False)
    (folder / "flywheel.yaml").write_text(yaml, encoding="utf-8")
    run(folder, report=False)
    model = re.search(r"- \{name: ([\w-]+)", yaml)
    assert model, "the project names no model"
    promote(model.group(1), folder, force=True)
    return folder


def write_log(
    path: Path,
    rows: int,
    chunk: Callable[[int, int], Chunk],
    names: list[str],
    *,
    model: str,
    days: float,
    size: int = 50_000,
) -> tuple[int, float]:
    """``rows`` predictions of ``model`` v1 spread evenly over the last ``days`` days, into the log at
    ``path`` with its own tables, in rows as the service writes them (JSON input, prediction and
    probabilities); ``chunk(start, n)`` makes rows ``start`` to ``start + n``. Returns the file's
    bytes and the seconds it took to write."""
    from flywheel.prediction_log import connect

    made = time.perf_counter()
    connect(path).close()  # the log's own tables, WAL
    conn = sqlite3.connect(path, isolation_level=None)
    begin = time.time() - days * 86_400
    for start in range(0, rows, size):
        n = min(size, rows - start)
        inputs, predictions, probabilities, latency = chunk(start, n)
        at = begin + (start + np.arange(n)) * (days * 86_400 / rows)
        batch = [
            (
                uuid.uuid4().hex,
                float(at[i]),
                model,
                1,
                json.dumps(dict(zip(names, inputs[i].tolist(), strict=True))),
                json.dumps(predictions[i].item()),
                None
                if probabilities is None
                else json.dumps({str(k): float(p) for k, p in enumerate(probabilities[i])}),
                float(latency[i]),
            )
            for i in range(n)
        ]
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO predictions VALUES (?,?,?,?,?,?,?,?)", batch)
        conn.execute("COMMIT")
    conn.close()
    return path.stat().st_size, time.perf_counter() - made


@dataclass
class Server:
    """A command that serves: what to run, its environment, and when it counts as ready."""

    command: list[str]
    env: dict[str, str] | None = None
    ready: Callable[[str], bool] | None = None  # default: any answer to ``GET /``


@contextlib.contextmanager
def serving(*servers: Server) -> Iterator[list[tuple[str, float]]]:
    """Start every server at once (each prints ``http://127.0.0.1:PORT`` on its first line) and
    yield, for each, its URL and the seconds from its launch to its first ready answer. Stopped as
    a user stops them (Ctrl-C, all at once), killed if they do not stop."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background by a shell (``make bench &``), this process ignores Ctrl-C and
        # so would every server it starts: ``python -m http.server`` would then wait out reap's
        # minute on each stop. A handler of its own is not inherited, so the servers get the default.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.perf_counter()
    procs = [
        subprocess.Popen(s.command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=s.env)
        for s in servers
    ]
    try:
        up = []
        for server, proc in zip(servers, procs, strict=True):
            assert proc.stdout is not None
            found = re.search(r"http://127\.0\.0\.1:\d+", proc.stdout.readline())
            if not found:
                raise SystemExit(f"{' '.join(server.command)} did not start")
            url = found.group(0)
            deadline = time.monotonic() + 120
            while not (server.ready or _answers)(url):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"{' '.join(server.command)} did not answer")
                time.sleep(0.01)
            up.append((url, time.perf_counter() - started))
        yield up
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            reap(proc)


def reap(proc: subprocess.Popen[str]) -> None:
    """Wait for a process told to stop (a minute, then kill it) and close its output."""
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@contextlib.contextmanager
def served(command: list[str]) -> Iterator[tuple[str, float]]:
    """One server (see ``serving``): its URL and the seconds from its launch to its first answer."""
    with serving(Server(command)) as ((url, seconds),):
        yield url, seconds


def _answers(url: str) -> bool:
    try:
        httpx.get(url + "/", timeout=60)
    except httpx.HTTPError:
        return False
    return True


def interleave_prepared(
    contenders: dict[str, Callable[[], Any]], rounds: int, before: dict[str, Callable[[], Any]]
) -> dict[str, list[float]]:
    """``_harness.interleave`` (every contender once a round, the order turning), where
    ``before[name]``, when given, runs untimed just before each timed run of ``name``."""
    names = list(contenders)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            if name in before:
                before[name]()
            times[name].append(timed(contenders[name]))
    return times
