"""The HTML report: one self-contained page per run, readable offline.

Rendered from a Jinja2 template with autoescaping (names and descriptions come
from user files). The page has no external assets: styles are inline and the
chart is an inline SVG, so the file can be mailed or archived as it is.
Each run writes ``reports/<run-id>.html`` and refreshes ``reports/latest.html``.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape

if TYPE_CHECKING:
    from flywheel.pipeline import RunResult

__all__ = [
    "render_report",
    "write_report",
]

_ENV = Environment(
    loader=PackageLoader("flywheel", "report/templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return (
            f"{value:.{digits}g}" if abs(value) >= 1e4 or (0 < abs(value) < 1e-3) else f"{value:.{digits}f}"
        )
    return str(value)


_ENV.filters["fmt"] = _fmt


def _chart(result: RunResult) -> dict[str, Any]:
    """Bars of the optimized metric on test, with the target and declared lines."""
    metric = result.objective.optimize.name
    bars = [(s.name, s.test_value, s.feasible) for s in result.ranking.standings if s.test_value is not None]
    lines = []
    if result.objective.target is not None:
        lines.append(("target", result.objective.target))
    for d in result.declared:
        if metric in d["values"]:
            lines.append((d["name"] + " (declared)", d["values"][metric]))
    values = [v for _, v, _ in bars] + [v for _, v in lines]
    if not values:
        return {"bars": [], "lines": [], "metric": metric}
    lo = min(0.0, *values) if result.objective.optimize.lower >= 0 else min(values)
    hi = max(values) or 1.0
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return 160 + 420 * (v - lo) / span

    bars_end = 10 + 26 * len(bars)
    return {
        "metric": metric,
        "bars_end": bars_end,
        "height": bars_end + 8 + 16 * len(lines),
        "bars": [
            {"name": n, "value": v, "x0": x(lo), "width": x(v) - x(lo), "y": 10 + 26 * i, "feasible": f}
            for i, (n, v, f) in enumerate(bars)
        ],
        # Reference lines are labelled on rows of their own, so close values stay readable.
        "lines": [
            {"name": n, "value": v, "x": x(v), "label_y": bars_end + 18 + 16 * i}
            for i, (n, v) in enumerate(lines)
        ],
    }


def _ladder_chart(result: RunResult) -> dict[str, Any]:
    """Rungs and declared baselines as horizontal lines; candidates as points with interval bars."""
    rows = [r for r in result.ladder if r.get("value") is not None and math.isfinite(r["value"])]
    if not rows:
        return {"lines": [], "points": []}
    lows = [r["low"] for r in rows if r.get("low") is not None]
    highs = [r["high"] for r in rows if r.get("high") is not None]
    values = [r["value"] for r in rows] + lows + highs
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.05 or 0.05
    lo, hi = lo - pad, hi + pad
    height, top, left, width = 320, 20, 60, 560

    def y(v: float) -> float:
        return top + (height - 2 * top) * (hi - v) / (hi - lo)

    lines = [r for r in rows if r["role"] != "candidate"]
    points = [r for r in rows if r["role"] == "candidate"]
    step = width / (len(points) + 1)
    colours = {"declared": "#7d3cc8", "measured": "#2e8b57"}
    # Labels of close lines are pushed apart so each stays readable.
    label_y: dict[str, float] = {}
    previous = -1e9
    for r in sorted(lines, key=lambda r: y(r["value"])):
        previous = max(y(r["value"]) + 4, previous + 13)
        label_y[r["name"]] = previous
    return {
        "height": max(height, int(previous) + 10),
        "width": left + width + 240,
        "left": left,
        "right": left + width,
        "ticks": [{"y": y(v), "label": f"{v:.3g}"} for v in np.linspace(lo + pad, hi - pad, 5)],
        "lines": [
            {
                "y": y(r["value"]),
                "name": r["name"],
                "value": r["value"],
                "label_y": label_y[r["name"]],
                "colour": colours.get(r["role"], "#9aa5b5" if r["kind"] != "model" else "#4a78c2"),
                "dash": "4 3" if r["role"] in colours else "none",
            }
            for r in lines
        ],
        "points": [
            {
                "x": left + step * (i + 1),
                "y": y(r["value"]),
                "name": r["name"],
                "value": r["value"],
                "y_low": y(r["low"]) if r.get("low") is not None else None,
                "y_high": y(r["high"]) if r.get("high") is not None else None,
            }
            for i, r in enumerate(points)
        ],
    }


def render_report(result: RunResult) -> str:
    """The report's HTML text."""
    template = _ENV.get_template("report.html.j2")
    by_name = {e.name: e for e in result.evaluations}
    return template.render(
        r=result,
        by_name=by_name,
        chart=_chart(result),
        ladder_chart=_ladder_chart(result),
        failed=[e for e in result.evaluations if not e.ok],
    )


def write_report(result: RunResult, folder: Path) -> Path:
    """Write ``<run-id>.html`` and refresh ``latest.html`` atomically; return the run's path."""
    folder.mkdir(parents=True, exist_ok=True)
    html = render_report(result)
    path = folder / f"{result.run_id}.html"
    for target in (path, folder / "latest.html"):
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        shutil.move(tmp, target)
    return path
