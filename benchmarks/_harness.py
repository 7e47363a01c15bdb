"""What every benchmark shares: interleaved rounds, pinned threads, figures with their anchors.

A figure is measured in rounds, and in each round flywheel and its anchor run one after the other
(the order alternating), so a busy moment of the machine falls on both. A ratio is taken within a
round (ours / anchor in the same round), and the median and range of those per-round ratios are
printed, next to the median and range of each side's own times. Threads are pinned for both sides
(``pinned``) so an anchor that would spread over every core does not swing with the machine's load.

With ``--json PATH`` (see ``Figures.add_arguments``) a script also writes its figures as JSON;
``benchmarks/run.py`` collects those into ``benchmarks/results.json`` and ``results.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "UNJUDGED",
    "VERDICT",
    "Figure",
    "Figures",
    "interleave",
    "judge",
    "judge_interval",
    "machine",
    "pinned",
    "spread",
    "timed",
]

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")

# How a target came out: within it in every round, in none, or straddling it (noise never decides).
VERDICT = {True: "met", False: "missed", None: "undecided"}
# A target stated for a larger run than the one measured (the suite's sizes): neither met nor missed.
UNJUDGED = "not judged at this size"


@contextlib.contextmanager
def pinned(threads: int = 1) -> Iterator[None]:
    """Every OpenMP/BLAS pool of this process (and of processes it starts) limited to ``threads``."""
    from threadpoolctl import threadpool_limits

    before = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: str(threads) for k in _THREAD_VARS})
    try:
        with threadpool_limits(threads):
            yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of ``fn`` takes, the collector off as ``timeit`` does."""
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        if was:
            gc.enable()


def interleave(contenders: dict[str, Callable[[], Any]], rounds: int = 3) -> dict[str, list[float]]:
    """Seconds per round for each contender, run one after the other in every round.

    The order turns each round (A B C, B C A, ...) so no contender always runs first (cold
    caches) or last (a machine warmed by the others).
    """
    names = list(contenders)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            times[name].append(timed(contenders[name]))
    return times


def spread(values: list[float]) -> tuple[float, float, float]:
    """(median, lowest, highest)."""
    return statistics.median(values), min(values), max(values)


def machine() -> dict[str, Any]:
    """Where the figures were measured: cores, memory, Python and the date."""
    import psutil

    return {
        "date": time.strftime("%Y-%m-%d"),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


@dataclass
class Figure:
    """One measured figure: its values over rounds and, when it has one, its anchor's and the ratio."""

    benchmark: str
    name: str
    unit: str
    values: list[float]
    anchor: str | None = None
    anchor_values: list[float] | None = None
    ratios: list[float] | None = None
    target: str | None = None
    met: bool | None = None
    note: str | None = None
    judged: bool = True
    median: float = field(init=False)
    low: float = field(init=False)
    high: float = field(init=False)

    def __post_init__(self) -> None:
        self.median, self.low, self.high = spread(self.values)

    def ratio(self) -> tuple[float, float, float] | None:
        return spread(self.ratios) if self.ratios else None

    def verdict(self) -> str:
        """met, missed or undecided; or, measured below the target's size, not judged."""
        return VERDICT[self.met] if self.judged else UNJUDGED

    def line(self) -> str:
        """The figure as one printed line: median (range) unit, and the ratio to its anchor."""
        text = f"{self.name}: {_num(self.median)} {self.unit} ({_num(self.low)}–{_num(self.high)})"
        if (r := self.ratio()) is not None:
            text += f"  = {_num(r[0])}x {self.anchor} ({_num(r[1])}–{_num(r[2])})"
        if self.target:
            text += f"  [target {self.target}: {self.verdict()}]"
        if self.note:
            text += f"  ({self.note})"
        return text


def _num(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


class Figures:
    """A benchmark's figures: printed as they are added, written as JSON at the end when asked."""

    def __init__(self, benchmark: str, json_path: Path | None = None) -> None:
        self.benchmark = benchmark
        self.json_path = json_path
        self.figures: list[Figure] = []

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")

    def add(
        self,
        name: str,
        values: list[float],
        unit: str = "s",
        *,
        anchor: str | None = None,
        anchor_values: list[float] | None = None,
        target: str | None = None,
        met: bool | None = None,
        note: str | None = None,
        judged: bool = True,
    ) -> Figure:
        """Add and print a figure; with ``anchor_values`` the per-round ratios are values / anchor.

        ``judged=False`` says the target is for a larger run than this one: it is printed as not
        judged, never as met, missed or undecided, whatever ``met`` holds."""
        ratios = None
        if anchor_values is not None:
            ratios = [v / a for v, a in zip(values, anchor_values, strict=True)]
        fig = Figure(
            self.benchmark,
            name,
            unit,
            list(values),
            anchor,
            anchor_values,
            ratios,
            target,
            met if judged else None,
            note,
            judged,
        )
        self.figures.append(fig)
        print(fig.line(), flush=True)
        return fig

    def write(self) -> None:
        if self.json_path is None:
            return
        data = {
            "benchmark": self.benchmark,
            "machine": machine(),
            "figures": [asdict(f) for f in self.figures],
        }
        self.json_path.write_text(json.dumps(data, indent=1) + "\n")


def judge(values: list[float], at_most: float, note: str = "") -> tuple[bool | None, str | None]:
    """A target (``<= at_most``) judged on every round: met when all of ``values`` are within it,
    missed when none is, and undecided (None) when the rounds straddle it, which the note says;
    noise never decides."""
    if max(values) <= at_most:
        return True, note or None
    if min(values) > at_most:
        return False, note or None
    return None, f"{note}; the rounds straddle the target: undecided".lstrip("; ")


def judge_interval(
    low: float, high: float, at_most: float | list[float], rounds: list[float] | None = None
) -> bool | None:
    """A target (``<= at_most``) judged on an interval: met when all of it is within, missed when
    all of it is above, else undecided (None).

    A target that is itself measured (the disk's commit p99, one value a round) is given as its
    rounds: met only under the lowest of them, missed only over the highest. With ``rounds`` (the
    figure's own per-round values) every round must agree as well. An interval from a few rounds
    is narrower than the swings between runs on a shared machine (measured: a p99 difference of
    +0.65 to +1.80 ms in one run, -1.02 to +0.23 ms in the next); both conditions together keep
    such a swing to undecided instead of a met that turns to missed."""
    limits = [at_most] if isinstance(at_most, int | float) else list(at_most)
    values = rounds or []
    if high <= min(limits) and all(v <= min(limits) for v in values):
        return True
    if low > max(limits) and all(v > max(limits) for v in values):
        return False
    return None
