"""The portfolio chart: impact against feasibility with uncertainty bars, as HTML and as a PNG for slides."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flywheel.report._charts import ARCHETYPE_COLOURS, figure_json, portfolio_figure, write_plotly_js
from flywheel.report._run_report import template
from flywheel.scoping import Entry

__all__ = [
    "write_chart_html",
    "write_chart_png",
]


_COLOURS = ARCHETYPE_COLOURS


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def write_chart_html(entries: list[Entry], path: Path) -> Path:
    """The chart (the workbench's Plotly figure, with ``plotly.min.js`` written beside the page) and
    the table, in one page that loads nothing from the network."""
    rows = [e.to_dict() for e in entries]
    html = template("portfolio.html.j2").render(figure=figure_json(portfolio_figure(rows)), rows=rows)
    write_plotly_js(path.parent)
    _atomic_write(path, html.encode("utf-8"))
    return path


def write_chart_png(entries: list[Entry], path: Path) -> Path:
    """The same chart as a PNG, for slides (matplotlib, headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6), dpi=150)
    try:
        ax.axhline(0.5, color="#e3e7ee", zorder=0)
        ax.axvline(0.5, color="#e3e7ee", zorder=0)
        for e in entries:
            a = e.assessment
            f, i = a.feasibility, a.impact
            colour = _COLOURS[a.archetype]
            ax.errorbar(
                f.score,
                i.score,
                xerr=[[f.score - f.low], [f.high - f.score]],
                yerr=[[i.score - i.low], [i.high - i.score]],
                fmt="o",
                color=colour,
                mfc=colour if a.run_id else "white",
                alpha=0.85,
                capsize=3,
            )
            ax.annotate(
                f"{e.rank}. {a.project}", (f.score, i.score), textcoords="offset points", xytext=(7, 7)
            )
        for text, (tx, ty), ha in (
            ("do first", (0.98, 0.97), "right"),
            ("long shot", (0.02, 0.97), "left"),
            ("quick win", (0.98, 0.02), "right"),
            ("reconsider", (0.02, 0.02), "left"),
        ):
            ax.text(tx, ty, text, ha=ha, color="#6a7383", transform=ax.transAxes)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("feasibility (data, accuracy requirement, difficulty)")
        ax.set_ylabel("impact")
        ax.set_title("Portfolio: impact × feasibility (filled: measured, open: declared only)")
        fd, tmp = tempfile.mkstemp(dir=path.parent if path.parent.exists() else None, suffix=".png")
        os.close(fd)
        fig.savefig(tmp, format="png", bbox_inches="tight")
        _atomic_write(path, Path(tmp).read_bytes())
        Path(tmp).unlink(missing_ok=True)
    finally:
        plt.close(fig)
    return path
