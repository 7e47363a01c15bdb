"""The monitor's page: the same result `flywheel monitor` prints, as HTML beside the run reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flywheel.report._run_report import template

__all__ = ["write_monitor_report"]


def write_monitor_report(result: dict[str, Any], folder: Path) -> Path:
    """Write ``monitor.html`` into ``folder`` (atomically) from a monitor result; returns its path."""
    from flywheel.evaluation import write_atomically

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "monitor.html"
    write_atomically(path, template("monitor.html.j2").render(r=result).encode("utf-8"))
    return path
