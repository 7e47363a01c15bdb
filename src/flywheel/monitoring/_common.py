"""What the monitor's parts share: the policy (enough rows, effects worth acting on), how
statuses combine into a verdict, windows of days, and the number formats of its sentences."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

import numpy as np

from flywheel.monitoring._state import RESERVOIR, Day

__all__: list[str] = []

_SEVERITY = {"too few rows": 0, "ok": 1, "watch": 2, "act": 3}
Window = Literal["day", "week"]


@dataclass(frozen=True)
class MonitorPolicy:
    """What counts as enough rows and as an effect worth acting on.

    The quality margin is the project's own (``gate.margin``, else one point for a bounded metric);
    the drift thresholds are the conventional PSI bands and a domain classifier that separates the
    two samples clearly (AUC above 0.6 with 95 % confidence).
    """

    min_rows: int = 100  # predictions in a window before its drift is judged
    min_labels: int = 30  # traffic-labelled predictions before live quality is judged
    min_requests: int = 30  # requests before live latency percentiles are judged
    min_outcome_rows: int = 20  # right and wrong predictions each, before an outcome is judged
    psi_act: float = 0.25
    psi_watch: float = 0.1
    auc_act: float = 0.6
    fdr: float = 0.05


def _window_of(day: str, window: Window) -> str:
    if window == "day":
        return day
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()  # the Monday that starts its ISO week


def _merge(days: list[Day]) -> Day:
    out = Day()
    for d in days:
        out.n += d.n
        for f, c in d.features.items():
            out.features[f] = out.features.get(f, np.zeros_like(c)) + c
        for f, u in d.unseen.items():
            tally = out.unseen.setdefault(f, {})
            for k, v in u.items():
                tally[k] = tally.get(k, 0) + v
        for key, m in d.models.items():
            out.models[key] = out.models[key].add(m) if key in out.models else m
        out.offered += d.offered
    out.sample = _pooled_sample(days, out.offered)
    return out


def _pooled_sample(days: list[Day], offered: int) -> list[dict[str, Any]]:
    """One window's sample of at most :data:`RESERVOIR` rows, each day in proportion to its traffic
    (a quiet day's 100 rows must not weigh as much as a busy day's 2,000-row sample of 100,000)."""
    if sum(len(d.sample) for d in days) <= RESERVOIR:
        return [row for d in days for row in d.sample]
    rng = np.random.default_rng(offered)
    pooled: list[dict[str, Any]] = []
    for d in days:
        quota = min(len(d.sample), round(RESERVOIR * d.offered / max(offered, 1)))
        keep = rng.choice(len(d.sample), quota, replace=False) if quota < len(d.sample) else range(quota)
        pooled += [d.sample[i] for i in sorted(keep)]
    return pooled


def _worst(statuses: list[str]) -> str:
    decided = [s for s in statuses if s != "too few rows"]
    if not decided:
        return "undecided"
    return max(decided, key=_SEVERITY.__getitem__)


def _few(n: int, needed: int, what: str) -> dict[str, Any]:
    return {
        "status": "too few rows",
        "rows": n,
        "needed": needed,
        "evidence": [f"{n:,} {what}; at least {needed:,} needed"],
    }


def _q(q: float) -> str:
    return f"{q:.2g}"  # two significant digits: a tiny q stays a number the JSON holds


def _f3(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _f4(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _g3(v: float | None) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.3g}"
