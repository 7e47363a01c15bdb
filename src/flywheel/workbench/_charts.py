"""The workbench's charts, built in Python with Plotly and drawn in the page by ``plotly.min.js``
(served from the installed plotly package, so nothing is fetched from a CDN).

Figures are made here rather than in JavaScript so that the numbers on a chart are the stored
numbers, formatted once; Plotly picks round ticks, and every axis has a title and every trace a
name in the legend.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "figure_json",
    "ladder_figure",
    "learning_curve_figure",
    "portfolio_figure",
]

_ARCHETYPE_COLOURS = {"software-2.0": "#2f6fd0", "human-in-the-loop": "#2e8b57", "autonomous": "#c0504d"}
_ROLE_COLOURS = {"baseline": "#8a94a6", "candidate": "#2f6fd0", "declared": "#c0504d"}
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


def figure_json(fig: Any) -> str:
    """The figure as JSON safe inside a ``<script>`` element (no ``</`` can close it early)."""
    return str(fig.to_json()).replace("</", "<\\/")


def _finite(v: Any) -> bool:
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


def portfolio_figure(rows: list[dict[str, Any]]) -> Any:
    """Impact against feasibility, one trace per archetype (the legend), with uncertainty bars."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for archetype, colour in _ARCHETYPE_COLOURS.items():
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
                customdata=[[r["quadrant"], "measured" if r["measured"] else "declared only"] for r in mine],
                hovertemplate="%{text}<br>feasibility %{x:.2f}<br>impact %{y:.2f}"
                "<br>%{customdata[0]} · %{customdata[1]}<extra></extra>",
            )
        )
    layout = _layout(
        "Portfolio: impact × feasibility (filled: measured, open: declared only)",
        "feasibility (data, accuracy requirement, difficulty)",
        "impact",
        xaxis={"range": [0, 1.05], "dtick": 0.2},
        yaxis={"range": [0, 1.05], "dtick": 0.2},
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


def learning_curve_figure(
    curve: dict[str, Any], baselines: list[dict[str, Any]], human: float | None, target: float | None
) -> Any:
    """Validation (with its spread over repeats) and training score against training rows, the
    baselines, the human level and the target as labelled horizontal lines."""
    import plotly.graph_objects as go

    points = curve["points"]
    sizes = [p["size"] for p in points]
    metric = curve.get("metric", "score")
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=sizes,
            y=[p["valid"] for p in points],
            mode="lines+markers",
            name=f"{curve.get('model', 'model')} validation",
            error_y={"type": "data", "array": [p.get("valid_sd") or 0 for p in points]},
        )
    )
    if any(_finite(p.get("train")) for p in points):
        fig.add_trace(
            go.Scatter(
                x=sizes,
                y=[p.get("train") for p in points],
                mode="lines+markers",
                name="training",
                line={"dash": "dot"},
            )
        )
    lines = [(b["name"] + " (baseline)", b["value"], "#8a94a6") for b in baselines]
    if human is not None:
        lines.append(("human (declared)", human, "#c0504d"))
    if target is not None:
        lines.append(("target", target, "#2e8b57"))
    for name, value, colour in lines:
        fig.add_trace(
            go.Scatter(
                x=[min(sizes), max(sizes)],
                y=[value, value],
                mode="lines",
                name=name,
                line={"color": colour, "dash": "dash", "width": 1.5},
            )
        )
    layout = _layout(
        f"Learning curve: {metric} against training rows",
        "training rows (log scale)",
        f"validation {metric}",
        xaxis={"type": "log"},
    )
    fig.update_layout(**layout)
    return fig
