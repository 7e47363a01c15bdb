"""Reports: the HTML page of a run, the monitor's page and the portfolio chart, readable offline."""

from flywheel.report._monitor_report import write_monitor_report
from flywheel.report._portfolio import write_chart_html, write_chart_png
from flywheel.report._run_report import render_report, template, write_report

__all__ = [
    "render_report",
    "template",
    "write_chart_html",
    "write_chart_png",
    "write_monitor_report",
    "write_report",
]
