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


def render_report(result: RunResult) -> str:
    """The report's HTML text."""
    template = _ENV.get_template("report.html.j2")
    by_name = {e.name: e for e in result.evaluations}
    return template.render(
        r=result, by_name=by_name, chart=_chart(result), failed=[e for e in result.evaluations if not e.ok]
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
