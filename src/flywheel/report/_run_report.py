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
    from flywheel.results import RunResult

__all__ = [
    "render_report",
    "template",
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


def template(name: str) -> Any:
    """A template of the report package (autoescaped), by file name."""
    return _ENV.get_template(name)


def _chart(result: RunResult) -> dict[str, Any]:
    """Bars of the optimized metric on test, with the target and declared lines."""
    metric = result.objective.optimize.name
    bars = [(s.name, s.test_value, s.eligible) for s in result.ranking.standings if s.test_value is not None]
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


def _tick(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def _spread(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Push the labels of close lines apart (13 px) so each stays readable."""
    previous = -1e9
    for line in sorted(lines, key=lambda item: item["y"]):
        previous = max(line["y"] + 4, previous + 13)
        line["label_y"] = previous
    return lines


def _plot(
    series: list[dict[str, Any]],
    hlines: list[tuple[str, float, str]],
    *,
    xlog: bool,
    ylog: bool = False,
    x_label: str,
    y_label: str,
) -> dict[str, Any] | None:
    """A line chart in SVG coordinates: ``series`` of points (x, y[, low, high]) and labelled lines."""
    xs = [p[0] for s in series for p in s["points"]]
    ys = [v for s in series for p in s["points"] for v in p[1:] if v is not None]
    ys += [v for _, v, _ in hlines]
    if ylog:
        ys = [v for v in ys if v > 0]
    if len(xs) < 2 or not ys:
        return None
    fx = (lambda v: math.log10(v)) if xlog else (lambda v: v)
    fy = (lambda v: math.log10(max(v, 1e-12))) if ylog else (lambda v: v)
    x0, x1 = fx(min(xs)), fx(max(xs))
    y0, y1 = fy(min(ys)), fy(max(ys))
    pad = (y1 - y0) * 0.06 or 0.05
    y0, y1 = y0 - pad, y1 + pad
    left, top, width, height = 70, 14, 520, 260

    def px(v: float) -> float:
        return left + width * (fx(v) - x0) / ((x1 - x0) or 1.0)

    def py(v: float) -> float:
        return top + height * (y1 - fy(v)) / ((y1 - y0) or 1.0)

    out_series = []
    for s in series:
        pts = [(px(p[0]), py(p[1])) for p in s["points"] if p[1] is not None and (not ylog or p[1] > 0)]
        band = [
            (px(p[0]), py(p[2]), py(p[3]))
            for p in s["points"]
            if len(p) > 3 and p[2] is not None and p[3] is not None and (not ylog or p[2] > 0)
        ]
        out_series.append(
            {
                "name": s["name"],
                "colour": s["colour"],
                "dash": s.get("dash", "none"),
                "path": " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(pts)),
                "dots": pts if s.get("dots") else [],
                "band": (
                    " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{lo:.1f}" for i, (x, lo, _) in enumerate(band))
                    + " "
                    + " ".join(f"L{x:.1f},{hi:.1f}" for x, _, hi in reversed(band))
                    + " Z"
                )
                if band
                else None,
            }
        )
    ticks_y = [y0 + pad + (y1 - y0 - 2 * pad) * i / 4 for i in range(5)]
    ticks_x = np.linspace(x0, x1, 5)
    return {
        "width": left + width + 200,
        "height": top + height + 40,
        "left": left,
        "right": left + width,
        "top": top,
        "bottom": top + height,
        "x_label": x_label,
        "y_label": y_label,
        "series": out_series,
        "lines": _spread(
            [{"name": n, "y": py(v), "value": v, "colour": c} for n, v, c in hlines if not ylog or v > 0]
        ),
        "yticks": [
            {"y": top + height * (y1 - t) / ((y1 - y0) or 1.0), "label": _tick(10**t if ylog else t)}
            for t in ticks_y
        ],
        "xticks": [
            {"x": left + width * (t - x0) / ((x1 - x0) or 1.0), "label": _tick(10**t if xlog else t)}
            for t in ticks_x
        ],
    }


def _curve_chart(result: RunResult) -> dict[str, Any] | None:
    """Validation and training score against training size (or step), with baseline and human lines."""
    d = result.diagnosis
    if d is None:
        return None
    curve = d.curve or d.history
    if curve is None:
        return None
    rows = curve.summary()
    series = [
        {
            "name": "validation",
            "colour": "#2f6fd0",
            "points": [(r["size"], r["valid"]) for r in rows],
            "dots": True,
        },
    ]
    if any(r["train"] is not None for r in rows):
        series.append(
            {
                "name": "training",
                "colour": "#c0504d",
                "points": [(r["size"], r["train"]) for r in rows if r["train"] is not None],
                "dots": True,
            }
        )
    fc = result.forecast
    if d.curve is not None and fc is not None and fc.fitted:
        last = max(r["size"] for r in rows) * 4
        series.append(
            {
                "name": "fitted (" + " + ".join(sorted(fc.weights, key=lambda k: -fc.weights[k])) + ")",
                "colour": "#7a8699",
                "dash": "5 4",
                "points": [
                    (p["size"], p["value"]) for p in fc.fitted if rows[0]["size"] <= p["size"] <= last
                ],
            }
        )
    lines = []
    metric = curve.metric
    best_simple = None
    for e in result.evaluations:
        v = e.value(metric, result.ranking.selection_split)
        better = best_simple is None or (v is not None and (v > best_simple[1]) == curve.greater_is_better)
        if e.ok and e.stage != "model" and v is not None and better:
            best_simple = (e.name, v)
    if best_simple is not None:
        lines.append((f"best baseline ({best_simple[0]})", best_simple[1], "#9aa5b5"))
    bv = d.bias_variance
    if bv is not None and "human" in bv.errors:
        human = curve.value(bv.errors["human"][0])
        lines.append((f"human ({bv.human_source})", float(human), "#7d3cc8"))
    if result.objective.target is not None and not result.objective.weighted:
        lines.append(("target", result.objective.target, "#2e8b57"))
    axis = "training rows (log scale)" if curve.axis == "size" else "step"
    return _plot(series, lines, xlog=curve.axis == "size", x_label=axis, y_label=f"{metric} ({curve.split})")


def _cost_chart(result: RunResult) -> dict[str, Any] | None:
    """Training rows needed against the target (log scale), with the interval as a band."""
    fc = result.forecast
    if fc is None or len(fc.cost_curve) < 2:
        return None
    points = [(c["target"], c["needed"], c["needed_low"], c["needed_high"]) for c in fc.cost_curve]
    series = [{"name": "rows needed", "colour": "#2f6fd0", "points": points, "dots": True}]
    lines = [("labelled today", float(fc.n_train), "#9aa5b5")]
    return _plot(series, lines, xlog=False, ylog=True, x_label=f"target {fc.metric}", y_label="training rows")


def render_report(result: RunResult) -> str:
    """The report's HTML text."""
    template = _ENV.get_template("report.html.j2")
    by_name = {e.name: e for e in result.evaluations}
    return template.render(
        r=result,
        by_name=by_name,
        chart=_chart(result),
        ladder_chart=_ladder_chart(result),
        curve_chart=_curve_chart(result),
        cost_chart=_cost_chart(result),
        failed=[e for e in result.evaluations if not e.ok],
    )


def write_report(result: RunResult, folder: Path, *, latest: bool = True) -> Path:
    """Write ``<run-id>.html`` and, for a full run (``latest``), refresh ``latest.html``; atomically,
    readable by others as any file the user writes (the umask's mode, not ``mkstemp``'s 0600)."""
    folder.mkdir(parents=True, exist_ok=True)
    html = render_report(result)
    path = folder / f"{result.run_id}.html"
    umask = os.umask(0)
    os.umask(umask)
    for target in (path, folder / "latest.html") if latest else (path,):
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.chmod(tmp, 0o666 & ~umask)
        shutil.move(tmp, target)
    return path
