"""The HTML report: one self-contained page per run, readable offline.

Rendered from a Jinja2 template with autoescaping (names and descriptions come
from user files). Styles are inline; the charts are the workbench's Plotly figures
(:mod:`flywheel.report._charts`), drawn by ``plotly.min.js`` which is written once
beside the reports, so the page loads nothing from the network. Each run writes
``reports/<run-id>.html`` and refreshes ``reports/latest.html``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape

from flywheel.report._charts import write_plotly_js
from flywheel.report._run_figures import run_figures

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


def render_report(result: RunResult) -> str:
    """The report's HTML text."""
    template = _ENV.get_template("report.html.j2")
    by_name = {e.name: e for e in result.evaluations}
    figures = run_figures(result.to_dict())
    return template.render(
        r=result,
        by_name=by_name,
        figures=figures,
        figures_js="{" + ",".join(f"{json.dumps(k)}: {v}" for k, v in figures.items()) + "}",
        failed=[e for e in result.evaluations if not e.ok],
    )


def write_report(result: RunResult, folder: Path, *, latest: bool = True) -> Path:
    """Write ``<run-id>.html`` and, for a full run (``latest``), refresh ``latest.html``; atomically,
    readable by others as any file the user writes (the umask's mode, not ``mkstemp``'s 0600)."""
    folder.mkdir(parents=True, exist_ok=True)
    html = render_report(result)
    write_plotly_js(folder)
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
