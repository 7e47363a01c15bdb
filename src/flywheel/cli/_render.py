"""How a run's result is drawn on the terminal: the ladder, the leaderboard, the diagnosis, the costs.

Shared by ``run``, ``baselines``, ``diagnose``, ``forecast`` and ``demo``; the result objects arrive
typed as ``Any`` so that drawing them imports nothing of the pipeline.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from flywheel.cli._app import out

__all__ = [
    "cost_table",
    "fmt",
    "render_ladder",
    "print_diagnosis",
    "print_need_ml",
    "print_result",
]


def fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if abs(value) < 1e4 else f"{value:.4g}"


def _interval(bounds: tuple[float, float] | None) -> str:
    return "" if bounds is None else f"{bounds[0]:.3f}-{bounds[1]:.3f}"


def _versus_best(standing: Any, best: str | None) -> str:
    """How the best model compares with this one on the same rows (paired bootstrap)."""
    if standing.name == best:
        return "best"
    if standing.versus_best is None:
        return ""
    if standing.versus_best.get("verdict") == "worse":  # better than the best, ranked lower by a constraint
        return "[cyan]>[/]"
    return "[yellow]≈[/]" if not standing.distinguishable else "[dim]<[/]"


def _constraint_status(s: Any) -> str:
    if s.feasible:
        return "[green]ok[/]"
    if s.feasible is None:
        return "[yellow]" + "; ".join(v.describe() for v in s.violations) + "[/]"
    return "[red]" + "; ".join(v.describe() for v in s.violations) + "[/]"


def _leaderboard(result: Any) -> Table:
    """Models by rank; columns beyond the essentials appear as the terminal gets wider."""
    metric = result.objective.optimize.name
    sel = result.ranking.selection_split
    wide = out.width >= 110
    others = [m for m in result.metrics if m != metric][: max(0, (out.width - 130) // 14)]
    table = Table(title=f"{result.project} · optimizing {metric} · ranked on {sel}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("model", no_wrap=True)
    table.add_column(sel, justify="right")
    table.add_column("95% CI", justify="right", no_wrap=True)
    table.add_column("vs best", no_wrap=True)
    table.add_column("test", justify="right")
    for m in others:
        table.add_column(m, justify="right")
    if wide:
        table.add_column("role")
        table.add_column("p95 ms", justify="right")
    table.add_column("constraints")
    by_name = {e.name: e for e in result.evaluations}
    for s in result.ranking.standings:
        e = by_name[s.name]
        extra = [s.role, fmt(e.systems.get("latency_p95_ms"), 2)] if wide else []
        table.add_row(
            str(s.rank),
            s.name,
            fmt(s.value),
            _interval(s.interval),
            _versus_best(s, result.ranking.best),
            fmt(s.test_value),
            *[fmt(e.value(m, sel)) for m in others],
            *extra,
            _constraint_status(s),
            style="bold" if s.name == result.ranking.best else ("dim" if s.role == "baseline" else None),
        )
    for d in result.declared:
        extra = [d["kind"], ""] if wide else []
        table.add_row(
            "",
            f"[magenta]{d['name']}[/]",
            "",
            "",
            "",
            fmt(d["values"].get(metric)),
            *[fmt(d["values"].get(m)) for m in others],
            *extra,
            "[magenta]declared[/]",
        )
    return table


_STEP_COLUMNS = (("latency_p95_ms", 2), ("size_mb", 3), ("fit_time_s", 2))


def render_ladder(result: Any) -> Table:
    """Rungs, candidates and declared baselines on one scale, with what each step up costs."""
    metric = result.objective.optimize.name
    table = Table(
        title=f"baseline ladder · {metric} on test · gain = share of the headroom from dummy to ceiling",
        title_justify="left",
    )
    for col, justify in (
        ("rung", "left"),
        ("test", "right"),
        ("95% CI", "right"),
        ("gain", "right"),
        ("+p95 ms", "right"),
        ("+size MB", "right"),
        ("+fit s", "right"),
    ):
        table.add_column(col, justify=justify, no_wrap=col != "rung")  # type: ignore[arg-type]
    for row in result.ladder:
        if row.get("error"):
            table.add_row(row["name"], "[red]failed[/]", "", "", "", "", "")
            continue
        step = row.get("step") or {}
        gain = row.get("gain")
        name = row["name"] if row["role"] != "declared" else f"[magenta]{row['name']} (declared)[/]"
        table.add_row(
            name,
            fmt(row["value"]),
            _interval((row["low"], row["high"]) if row.get("low") is not None else None),
            "" if gain is None else f"{gain:.0%}",
            *[_step_text(step, m, digits) for m, digits in _STEP_COLUMNS],
        )
    return table


def _step_text(step: dict[str, float | None], metric: str, digits: int) -> str:
    """A rung's price over the one before it; ≈ where the timings cannot be told apart."""
    if metric not in step:
        return ""
    value = step[metric]
    return "≈" if value is None else f"{value:+.{digits}f}"


def _print_sensitivity(result: Any) -> None:
    """For a weighted objective: does the ranking survive each weight moving by ±20 %?"""
    if not result.sensitivity:
        return
    moves = [
        f"{row['metric']} {row['change']}: best becomes {row['best']}"
        for row in result.sensitivity
        if row["best_changes"]
    ]
    reorders = [
        f"{row['metric']} {row['change']}"
        for row in result.sensitivity
        if row["order_changes"] and not row["best_changes"]
    ]
    if not moves and not reorders:
        out.print("weights ±20%: the ranking does not move", soft_wrap=True)
        return
    if moves:
        out.print("weights ±20%: " + "; ".join(moves), soft_wrap=True, markup=False)
    if reorders:
        out.print(
            "weights ±20% reorder the ranking below the best: " + ", ".join(reorders),
            soft_wrap=True,
            markup=False,
        )


def print_need_ml(result: Any) -> None:
    verdict = result.need_ml
    if verdict is None:
        return
    colour = {"yes": "green", "no": "red", "not yet clear": "yellow", "cannot tell": "yellow"}[verdict.answer]
    out.print(f"Do we need ML? [{colour}]{verdict.answer.upper()}[/] — {verdict.reason}", soft_wrap=True)


def print_result(result: Any) -> None:
    out.print(render_ladder(result))
    print_need_ml(result)
    out.print(_leaderboard(result))
    if any(s.versus_best is not None for s in result.ranking.standings):
        out.print(
            "[dim]vs best: ≈ not distinguishable from the best on the same rows, < worse, > better "
            "but ranked lower by a constraint (paired bootstrap, 95%)[/]",
            soft_wrap=True,
        )
    for e in result.evaluations:
        if not e.ok:
            out.print(f"[red]failed[/] {e.name}: {e.error}", soft_wrap=True, markup=True)
    _print_sensitivity(result)
    print_diagnosis(result)
    for note in result.notes:
        out.print(f"note: {note}", soft_wrap=True, markup=False)
    colour = {"pass": "green", "fail": "red", "inconclusive": "yellow"}[result.verdict.status]
    out.print(f"[{colour}]{result.verdict.status.upper()}[/] {result.verdict.reason}", soft_wrap=True)
    out.print(
        f"data {result.data['fingerprint']} · split {result.split['fingerprint']} · run {result.run_id}"
    )
    if result.report_path:
        out.print(f"report: {result.report_path}", soft_wrap=True)
    if result.timings:
        spent = " · ".join(f"{stage} {seconds:.1f} s" for stage, seconds in result.timings.items())
        out.print(f"time: {spent}", soft_wrap=True)


def _print_actions(diagnosis: Any, limit: int = 5) -> None:
    if not diagnosis.actions:
        out.print("What to do next: nothing stands out", soft_wrap=True)
        return
    out.print("[bold]What to do next[/]")
    for i, action in enumerate(diagnosis.actions[:limit], start=1):
        gain = f" [dim](could win {action.gain:+.4g})[/]" if action.gain else ""
        out.print(f" {i}. {escape(action.title)}{gain} — {escape(action.why)}", soft_wrap=True)


def print_diagnosis(result: Any, *, full: bool = False) -> None:
    """Bias/variance, the curve, weak classes and segments, the forecast, and the actions."""
    d = result.diagnosis
    if d is None:
        return
    bv = d.bias_variance
    if bv is not None:
        errors = " · ".join(
            f"{k.replace('_', '-')} {v[0]:.4g}"
            + (" (declared)" if k == "human" and bv.human_source == "declared" else "")
            for k, v in bv.errors.items()
        )
        out.print(f"bias/variance ({bv.model}, {bv.metric} error): {errors}", soft_wrap=True, markup=False)
        out.print(f"  → {bv.summary}", soft_wrap=True, markup=False)
        for note in bv.notes:
            out.print(f"  note: {note}", soft_wrap=True, markup=False)
    for f in [*d.curve_findings, *d.history_findings]:
        out.print(f"curve: {f.kind}: {f.text}", soft_wrap=True, markup=False)
    for note in d.curve.notes if d.curve is not None else ():
        out.print(f"  note: {note}", soft_wrap=True, markup=False)
    weak = [c for c in d.classes if c.weak] if not full else d.classes[:5]
    for c in weak:
        out.print(
            f"class {c.label}: recall {c.recall:.3f} [{c.recall_low:.3f}, {c.recall_high:.3f}] "
            f"on {c.support} rows" + (" (significantly below the others)" if c.weak else ""),
            soft_wrap=True,
            markup=False,
        )
    searched = d.searched
    if searched.get("tested"):
        out.print(
            f"weak segments: {len(d.segments)} found among {searched['tested']:,} slices tested "
            f"(FDR {searched['fdr']:g}, min {searched['min_support']} rows)",
            soft_wrap=True,
            markup=False,
        )
    for seg in d.segments[: 10 if full else 3]:
        out.print(
            f"  {seg.description}: {seg.rows} rows, error {seg.error:.3g} vs {seg.rest:.3g} elsewhere "
            f"(q={seg.q_value:.2g})",
            soft_wrap=True,
            markup=False,
        )
    if result.forecast is not None:
        out.print(f"forecast: {result.forecast.describe()}", soft_wrap=True, markup=False)
    _print_actions(d)


def cost_table(forecast: Any) -> Table:
    table = Table(title=f"what each target costs · {forecast.metric} · blended curve", title_justify="left")
    for col in ("target", "training rows", f"{forecast.confidence:.0%} interval", "labels to buy", "cost"):
        table.add_column(col, justify="right")
    for row in forecast.cost_curve:
        low = "?" if row["needed_low"] is None else f"{row['needed_low']:,.0f}"
        high = "open" if row["needed_high"] is None else f"{row['needed_high']:,.0f}"
        buy = row["labels_to_buy"]
        table.add_row(
            f"{row['target']:.4g}",
            f"{row['needed']:,.0f}",
            f"{low}–{high}",
            f"{buy:,.0f}",
            "" if row["cost"] is None else f"{row['cost']:,.0f}",
        )
    return table
