"""Every chart flywheel draws, built in Python with Plotly and drawn in the page by ``plotly.min.js``.

The static reports and the workbench use these same figures: the report writes ``plotly.min.js``
beside its pages (copied from the installed plotly package), the workbench serves it, so nothing
is fetched from a CDN. Figures are made from the stored run (its JSON form), so a chart shows the
stored numbers, formatted once; Plotly picks round ticks, every axis has a title and every trace a
name in the legend.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, TypeGuard

__all__ = [
    "ARCHETYPE_COLOURS",
    "figure_json",
    "log_ticks",
    "ladder_figure",
    "leaderboard_figure",
    "plotly_js",
    "portfolio_figure",
    "write_plotly_js",
]

ARCHETYPE_COLOURS = {"software-2.0": "#2f6fd0", "human-in-the-loop": "#2e8b57", "autonomous": "#c0504d"}
_ROLE_COLOURS = {"baseline": "#8a94a6", "candidate": "#2f6fd0", "declared": "#c0504d"}
_QUIET = {"color": "#5b6473"}
_FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 13}


def _layout(title: str, x: str, y: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title},
        "xaxis": {"title": {"text": x}, "zeroline": False, **extra.pop("xaxis", {})},
        "yaxis": {"title": {"text": y}, "zeroline": False, **extra.pop("yaxis", {})},
        "legend": {"orientation": "h", "y": -0.25},
        "margin": {"l": 70, "r": 20, "t": 50, "b": 90},
        "font": _FONT,
        "template": "plotly_white",
        **extra,
    }


def log_ticks(low: float, high: float) -> dict[str, Any]:
    """Round tick values (1, 2, 5 × a power of ten, thinned to at most eight) for a log axis over
    ``low``–``high``, labelled with thousands separators: Plotly's own log ticks label the
    minor ones with bare digits ("2 3 4 … 9 100 2 3")."""
    low, high = max(low, 1e-12), max(high, low)
    powers = range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
    values: list[float] = []
    for mantissas in ((1, 2, 5), (1, 1.5, 2, 3, 4, 5, 7)):
        values = [m * 10.0**e for e in powers for m in mantissas if low <= m * 10.0**e <= high]
        if len(values) >= 3:
            break
    else:  # a narrow range: three points to three significant digits, so each label is its value
        rounded = {float(f"{v:.3g}") for v in (low, math.sqrt(low * high), high)}
        values = sorted(v for v in rounded if low <= v <= high) or [low, high]
    step = max(1, math.ceil(len(values) / 8))
    values = values[::step]
    text = [f"{v:,.0f}" if v >= 10 else f"{v:.3g}" for v in values]
    return {"type": "log", "tickmode": "array", "tickvals": values, "ticktext": text}


def figure_json(fig: Any) -> str:
    """The figure as JSON safe inside a ``<script>`` element (no ``</`` can close it early)."""
    return str(fig.to_json()).replace("</", "<\\/")


def _finite(v: Any) -> TypeGuard[float]:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _error_bars(scores: list[dict[str, Any]], colour: str) -> dict[str, Any]:
    """Asymmetric Plotly error bars from each score's ``low``–``high`` range."""
    return {
        "type": "data",
        "symmetric": False,
        "array": [d["high"] - d["score"] for d in scores],
        "arrayminus": [d["score"] - d["low"] for d in scores],
        "color": colour,
    }


def _range(d: dict[str, Any]) -> str:
    return f"{d['score']:.2f} ({d['low']:.2f}–{d['high']:.2f})"


def _evidence(row: dict[str, Any]) -> str:
    """The hover text of one project: both scores with their ranges and what feasibility rests on."""
    lines = [
        f"feasibility {_range(row['feasibility'])} · impact {_range(row['impact'])}",
        f"{row['quadrant']} · phase {row.get('phase', '—')} · "
        + ("measured by a run" if row["measured"] else "declared only, no run yet"),
    ]
    drivers = row.get("drivers") or {}
    if drivers:
        lines.append(
            " · ".join(
                f"{name} {d['score']:.2f}" + (" measured" if d.get("measured") else " declared")
                for name, d in drivers.items()
            )
        )
    value = row.get("net_value_per_year")
    if _finite(value):
        lines.append(f"net value {value:,.0f} a year")
    return "<br>".join(lines)


def portfolio_figure(rows: list[dict[str, Any]]) -> Any:
    """Impact against feasibility, one trace per archetype (the legend), with uncertainty bars."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for archetype, colour in ARCHETYPE_COLOURS.items():
        mine = [r for r in rows if r["archetype"] == archetype]
        if not mine:
            continue
        f = [r["feasibility"] for r in mine]
        i = [r["impact"] for r in mine]
        fig.add_trace(
            go.Scatter(
                x=[d["score"] for d in f],
                y=[d["score"] for d in i],
                mode="markers+text",
                name=archetype,
                text=[f"{r['rank']}. {r['project']}" for r in mine],
                textposition="top right",
                marker={
                    "size": 12,
                    "color": colour,
                    "symbol": ["circle" if r["measured"] else "circle-open" for r in mine],
                },
                error_x=_error_bars(f, colour),
                error_y=_error_bars(i, colour),
                customdata=[_evidence(r) for r in mine],
                hovertemplate="%{text}<br>%{customdata}<extra></extra>",
            )
        )
    layout = _layout(
        "Portfolio: impact × feasibility (filled: measured, open: declared only)",
        "feasibility (data, accuracy requirement, difficulty)",
        "impact",
        xaxis={"range": [0, 1.05], "dtick": 0.2},
        yaxis={"range": [0, 1.05], "dtick": 0.2},
        annotations=[
            {"x": x, "y": y, "text": text, "showarrow": False, "xanchor": anchor, "font": _QUIET}
            for text, x, y, anchor in (
                ("do first", 1.04, 1.03, "right"),
                ("long shot", 0.01, 1.03, "left"),
                ("quick win", 1.04, 0.02, "right"),
                ("reconsider", 0.01, 0.02, "left"),
            )
        ],
        shapes=[
            {
                "type": "line",
                "x0": 0.5,
                "x1": 0.5,
                "y0": 0,
                "y1": 1.05,
                "line": {"color": "#d5dbe5", "dash": "dot"},
            },
            {
                "type": "line",
                "x0": 0,
                "x1": 1.05,
                "y0": 0.5,
                "y1": 0.5,
                "line": {"color": "#d5dbe5", "dash": "dot"},
            },
        ],
    )
    fig.update_layout(**layout)
    return fig


def ladder_figure(ladder: list[dict[str, Any]], metric: str, target: float | None) -> Any:
    """Every rung's test value with its interval, baselines and candidates told apart by colour."""
    import plotly.graph_objects as go

    fig = go.Figure()
    shown = [r for r in ladder if _finite(r.get("value"))]
    for role, colour in _ROLE_COLOURS.items():
        mine = [r for r in shown if _role(r) == role]
        if not mine:
            continue
        low = [r["value"] - r["low"] if _finite(r.get("low")) else 0 for r in mine]
        high = [r["high"] - r["value"] if _finite(r.get("high")) else 0 for r in mine]
        fig.add_trace(
            go.Scatter(
                x=[r["value"] for r in mine],
                y=[r["name"] for r in mine],
                mode="markers",
                name={"declared": "declared (human, published)"}.get(role, role + "s"),
                marker={"size": 11, "color": colour},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": high,
                    "arrayminus": low,
                    "color": colour,
                },
                hovertemplate="%{y}: %{x:.4f}<extra></extra>",
            )
        )
    shapes = []
    if target is not None:
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": target,
                "x1": target,
                "y0": 0,
                "y1": 1,
                "line": {"color": "#c0504d", "dash": "dash"},
            }
        )
    layout = _layout(
        f"Ladder: test {metric} with 95% intervals"
        + ("" if target is None else f" (dashed: target {target:g})"),
        f"test {metric}",
        "rung",
        yaxis={"categoryorder": "array", "categoryarray": [r["name"] for r in shown], "automargin": True},
        shapes=shapes,
        height=max(320, 40 * len(shown) + 160),
    )
    fig.update_layout(**layout)
    return fig


def _role(rung: dict[str, Any]) -> str:
    if rung.get("declared") or rung.get("role") in ("human", "declared", "published"):
        return "declared"
    return "baseline" if rung.get("role") == "baseline" else "candidate"


def _span(value: float, interval: Any) -> dict[str, float]:
    """``score``/``low``/``high`` of a value and its interval (the value itself where an end is missing)."""
    low, high = (interval or [None, None])[:2]
    return {"score": value, "low": low if _finite(low) else value, "high": high if _finite(high) else value}


def leaderboard_figure(standings: list[dict[str, Any]], metric: str) -> Any | None:
    """Each ranked model's validation value with its interval, best first; ``None`` when empty."""
    import plotly.graph_objects as go

    shown = [s for s in standings if _finite(s.get("value"))]
    if not shown:
        return None
    spans = [_span(s["value"], s.get("interval")) for s in shown]
    fig = go.Figure(
        go.Scatter(
            x=[s["value"] for s in shown],
            y=[f"{s.get('rank', '')}. {s['name']}" for s in shown],
            mode="markers",
            name=f"validation {metric} (95% interval)",
            marker={"size": 11, "color": "#2f6fd0"},
            error_x=_error_bars(spans, "#2f6fd0"),
            hovertemplate="%{y}: %{x:.4f}<extra></extra>",
        )
    )
    fig.update_layout(
        **_layout(
            f"Leaderboard: validation {metric} with 95% intervals",
            f"validation {metric}",
            "model",
            yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
            height=max(300, 36 * len(shown) + 160),
        )
    )
    return fig


def plotly_js() -> Path:
    """The installed plotly package's ``plotly.min.js`` (what every page loads; never a CDN)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def write_plotly_js(folder: Path) -> Path:
    """Copy ``plotly.min.js`` beside the pages in ``folder`` unless the same file is there already."""
    source, target = plotly_js(), folder / "plotly.min.js"
    if target.exists() and target.stat().st_size == source.stat().st_size:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    os.close(fd)
    shutil.copyfile(source, tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return target
