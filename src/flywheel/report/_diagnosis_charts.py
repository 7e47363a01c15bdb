"""The diagnosis's charts: the learning curve against the baselines, the labels the target needs,
calibration and the confusion matrix, each drawn from the stored run (see :mod:`._charts`)."""

from __future__ import annotations

from typing import Any

from flywheel.report._charts import _finite, _layout, log_ticks

__all__ = [
    "calibration_figure",
    "confusion_figure",
    "cost_figure",
    "learning_curve_figure",
]


def _best_simple(run: dict[str, Any], metric: str, split: str, greater: bool) -> tuple[str, float] | None:
    """The best baseline that is not a fitted model (rule, constant, heuristic) on ``split``."""
    best: tuple[str, float] | None = None
    for e in run.get("evaluations") or []:
        v = ((e.get("metrics") or {}).get(split) or {}).get(metric)
        if e.get("error") or e.get("stage") == "model" or not _finite(v):
            continue
        if best is None or (v > best[1]) == greater:
            best = (e["name"], float(v))
    return best


def learning_curve_figure(run: dict[str, Any]) -> Any | None:
    """Validation (with its spread over repeats) and training score against training rows (or the
    training history against steps), the forecast's fitted curve, and the best simple baseline,
    the human level and the target as labelled lines; ``None`` when the run measured no curve."""
    import plotly.graph_objects as go

    diagnosis = run.get("diagnosis") or {}
    curve = diagnosis.get("curve") or diagnosis.get("history")
    if not curve or len(curve.get("points") or []) < 2:
        return None
    points = curve["points"]
    sizes = [p["size"] for p in points]
    metric, greater = curve.get("metric", "score"), bool(curve.get("greater_is_better", True))
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=sizes,
            y=[p["valid"] for p in points],
            mode="lines+markers",
            name=f"{curve.get('model') or 'model'} validation",
            marker={"color": "#2f6fd0"},
            error_y={"type": "data", "array": [p.get("valid_sd") or 0 for p in points], "color": "#2f6fd0"},
            hovertemplate="%{x:,} rows: %{y:.4f}<extra>validation</extra>",
        )
    )
    if any(_finite(p.get("train")) for p in points):
        fig.add_trace(
            go.Scatter(
                x=sizes,
                y=[p.get("train") for p in points],
                mode="lines+markers",
                name="training",
                line={"dash": "dot", "color": "#c0504d"},
                hovertemplate="%{x:,} rows: %{y:.4f}<extra>training</extra>",
            )
        )
    _add_fitted(fig, run.get("forecast") or {}, sizes, diagnosis.get("curve") is not None)
    right = max(x for trace in fig.data for x in trace.x if _finite(x))
    _add_levels(fig, run, curve, metric, greater, [min(sizes), right])
    size_axis = curve.get("axis", "size") == "size"
    drawn = [x for trace in fig.data for x in (trace.x or ()) if _finite(x)]
    fig.update_layout(
        **_layout(
            f"Learning curve: {metric} against " + ("training rows" if size_axis else "training steps"),
            "training rows (log scale)" if size_axis else "step",
            f"{metric} ({curve.get('split') or 'validation'})",
            xaxis=log_ticks(min(drawn), max(drawn)) if size_axis else {},
        )
    )
    return fig


def _add_fitted(fig: Any, fc: dict[str, Any], sizes: list[float], on_size: bool) -> None:
    """The forecast's fitted curve over the measured sizes and up to four times the largest."""
    import plotly.graph_objects as go

    fitted = [p for p in fc.get("fitted") or [] if min(sizes) <= p["size"] <= 4 * max(sizes)]
    if not on_size or len(fitted) < 2:
        return
    weights = fc.get("weights") or {}
    fig.add_trace(
        go.Scatter(
            x=[p["size"] for p in fitted],
            y=[p["value"] for p in fitted],
            mode="lines",
            name="fitted (" + " + ".join(sorted(weights, key=lambda k: -weights[k])) + ")",
            line={"dash": "dash", "color": "#7a8699"},
            hovertemplate="%{x:,.0f} rows: %{y:.4f}<extra>fitted</extra>",
        )
    )


def _add_levels(
    fig: Any, run: dict[str, Any], curve: dict[str, Any], metric: str, greater: bool, span: list[float]
) -> None:
    """The best simple baseline, the human level and the target as horizontal lines."""
    import plotly.graph_objects as go

    lines = []
    simple = _best_simple(run, metric, curve.get("split") or "valid", greater)
    if simple is not None:
        lines.append((f"best baseline ({simple[0]})", simple[1], "#8a94a6"))
    bv = (run.get("diagnosis") or {}).get("bias_variance") or {}
    human = next((r.get("value") for r in run.get("ladder") or [] if r.get("kind") == "human"), None)
    if _finite(human):
        lines.append((f"human ({bv.get('human_source') or 'declared'})", float(human), "#7d3cc8"))
    objective = run.get("objective") or {}
    if _finite(objective.get("target")) and objective.get("optimize") == metric:
        lines.append(("target", float(objective["target"]), "#2e8b57"))
    for name, value, colour in lines:
        fig.add_trace(
            go.Scatter(
                x=span,
                y=[value, value],
                mode="lines",
                name=f"{name} {value:.4g}",
                line={"color": colour, "dash": "dash", "width": 1.5},
                hovertemplate=f"{name}: {value:.4f}<extra></extra>",
            )
        )


def cost_figure(fc: dict[str, Any]) -> Any | None:
    """Training rows needed against the target, with the forecast's interval as a band and the
    rows labelled today as a line; ``None`` without a cost curve of two reachable points."""
    import plotly.graph_objects as go

    reach = [c for c in fc.get("cost_curve") or [] if _finite(c.get("needed"))]
    x = [c["target"] for c in reach]
    if len(reach) < 2 or max(x) - min(x) <= 1e-6 * max(1.0, abs(max(x))):
        return None  # a levelled-off curve: the targets differ in digits no axis can show
    level = f"{round(100 * (fc.get('confidence') or 0.9))}%"
    fig = go.Figure()
    banded = [c for c in reach if _finite(c.get("needed_low")) and _finite(c.get("needed_high"))]
    if banded:
        fig.add_trace(
            go.Scatter(
                x=[c["target"] for c in banded] + [c["target"] for c in reversed(banded)],
                y=[c["needed_high"] for c in banded] + [c["needed_low"] for c in reversed(banded)],
                fill="toself",
                fillcolor="rgba(47,111,208,0.15)",
                line={"width": 0},
                name=f"{level} interval",
                hoverinfo="skip",
            )
        )
    if len(banded) < len(reach):  # an unbounded upper end: draw the ends that exist as lines
        for end, label in (("needed_low", "lower"), ("needed_high", "upper")):
            shown = [c for c in reach if _finite(c.get(end))]
            if shown and len(shown) > len(banded):
                fig.add_trace(
                    go.Scatter(
                        x=[c["target"] for c in shown],
                        y=[c[end] for c in shown],
                        mode="lines",
                        name=f"{label} end of the {level} interval"
                        + (" (the upper end is unbounded elsewhere)" if label == "lower" else ""),
                        line={"color": "#2f6fd0", "dash": "dot", "width": 1},
                        hoverinfo="skip",
                    )
                )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[c["needed"] for c in reach],
            mode="lines+markers",
            name="training rows needed",
            marker={"color": "#2f6fd0"},
            customdata=[_cost_text(c) for c in reach],
            hovertemplate="target %{x:.4f}: %{y:,.0f} rows<br>%{customdata}<extra></extra>",
        )
    )
    if _finite(fc.get("n_train")):
        today = float(fc["n_train"])
        fig.add_trace(
            go.Scatter(
                x=[min(x), max(x)],
                y=[today, today],
                mode="lines",
                name=f"labelled today {today:,.0f}",
                line={"color": "#8a94a6", "dash": "dash"},
                hoverinfo="skip",
            )
        )
    metric = fc.get("metric", "score")
    fig.update_layout(
        **_layout(
            f"Labels needed: training rows to reach each target {metric}",
            f"target {metric}",
            "training rows (log scale)",
            yaxis=log_ticks(*_rows_span(fig)),
        )
    )
    return fig


def _rows_span(fig: Any) -> tuple[float, float]:
    rows = [y for trace in fig.data for y in (trace.y or ()) if _finite(y) and y > 0]
    return min(rows), max(rows)


def _cost_text(c: dict[str, Any]) -> str:
    buy = c.get("labels_to_buy")
    out = f"labels to buy {buy:,.0f}" if _finite(buy) else "nothing to buy"
    return out + (f" · cost {c['cost']:,.2f}" if _finite(c.get("cost")) else "")


def calibration_figure(table: dict[str, Any], model: str | None) -> Any | None:
    """Observed rate against predicted probability, bin by bin with Wilson intervals, beside the
    diagonal of perfect calibration; ``None`` without a reliability table."""
    import plotly.graph_objects as go

    bins = (table or {}).get("bins") or []
    if not bins:
        return None
    positive = table.get("kind") == "positive"
    what = f"P({table.get('positive')})" if positive else "top class probability"
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfectly calibrated",
            line={"color": "#8a94a6", "dash": "dash"},
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[b["predicted"] for b in bins],
            y=[b["observed"] for b in bins],
            mode="lines+markers",
            name=f"{model or 'model'} (ECE {table['ece']:.3f})",
            marker={"color": "#2f6fd0", "size": 9},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [b["observed_high"] - b["observed"] for b in bins],
                "arrayminus": [b["observed"] - b["observed_low"] for b in bins],
                "color": "#2f6fd0",
            },
            customdata=[b["rows"] for b in bins],
            hovertemplate="predicted %{x:.3f}, observed %{y:.3f} (%{customdata:,} rows)<extra></extra>",
        )
    )
    observed = "share of rows in the class" if positive else "share of top classes that were right"
    fig.update_layout(
        **_layout(
            "Calibration: observed against predicted, 95% Wilson intervals",
            f"mean predicted {what}",
            observed,
            xaxis={"range": [0, 1], "dtick": 0.2},
            yaxis={"range": [0, 1.02], "dtick": 0.2},
        )
    )
    return fig


def confusion_figure(table: dict[str, Any], model: str | None) -> Any | None:
    """True class against predicted class; each cell's colour is its share of the true class's
    rows (so the diagonal reads as recall) and its text the count; ``None`` without a matrix."""
    import plotly.graph_objects as go

    labels, matrix = (table or {}).get("labels") or [], (table or {}).get("matrix") or []
    if not labels or not matrix:
        return None
    shares = [[c / sum(row) if sum(row) else 0.0 for c in row] for row in matrix]
    fig = go.Figure(
        go.Heatmap(
            z=shares,
            x=labels,
            y=labels,
            text=[[f"{c:,}" for c in row] for row in matrix],
            texttemplate="%{text}" if len(labels) <= 12 else None,
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"title": {"text": "share of the true class"}},
            hovertemplate="true %{y}, predicted %{x}: %{text} rows (%{z:.1%} of the class)<extra></extra>",
        )
    )
    folded = table.get("folded") or 0
    note = f"; {folded} least frequent classes folded into one" if folded else ""
    fig.update_layout(
        **_layout(
            f"Confusion matrix of {model or 'the best model'}{note}",
            "predicted class",
            "true class",
            xaxis={"type": "category", "side": "bottom", "automargin": True},
            yaxis={"type": "category", "autorange": "reversed", "automargin": True},
            height=max(360, 28 * len(labels) + 200),
        )
    )
    return fig
