"""Reports: the HTML page of a run, the monitor's page and the portfolio chart, readable offline,
and the Plotly figures they share with the workbench."""

from flywheel.report._charts import (
    figure_json,
    ladder_figure,
    leaderboard_figure,
    log_ticks,
    plotly_js,
    portfolio_figure,
    write_plotly_js,
)
from flywheel.report._diagnosis_charts import (
    calibration_figure,
    confusion_figure,
    cost_figure,
    learning_curve_figure,
)
from flywheel.report._monitor_report import write_monitor_report
from flywheel.report._portfolio import write_chart_html, write_chart_png
from flywheel.report._run_figures import run_figures
from flywheel.report._run_report import render_report, template, write_report

__all__ = [
    "calibration_figure",
    "confusion_figure",
    "cost_figure",
    "figure_json",
    "ladder_figure",
    "leaderboard_figure",
    "learning_curve_figure",
    "log_ticks",
    "plotly_js",
    "portfolio_figure",
    "render_report",
    "run_figures",
    "template",
    "write_chart_html",
    "write_chart_png",
    "write_monitor_report",
    "write_plotly_js",
    "write_report",
]
