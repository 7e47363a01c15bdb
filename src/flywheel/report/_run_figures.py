"""Every chart of one stored run, by section: what the static report and the workbench both draw."""

from __future__ import annotations

from typing import Any

from flywheel.report._charts import figure_json, ladder_figure, leaderboard_figure
from flywheel.report._diagnosis_charts import (
    calibration_figure,
    confusion_figure,
    cost_figure,
    learning_curve_figure,
)

__all__ = [
    "run_figures",
]


def run_figures(run: dict[str, Any]) -> dict[str, str]:
    """Every chart of one stored run, as JSON ready for ``Plotly.newPlot``, by section name:
    ``ladder``, ``leaderboard``, ``curve``, ``cost``, ``calibration``, ``confusion`` (each only
    where the run holds what it draws)."""
    objective = run.get("objective") or {}
    metric = objective.get("optimize", "score")
    diagnosis = run.get("diagnosis") or {}
    model = diagnosis.get("model")
    ladder = run.get("ladder") or []
    figures = {
        "ladder": ladder_figure(ladder, metric, objective.get("target")) if ladder else None,
        "leaderboard": leaderboard_figure((run.get("ranking") or {}).get("standings") or [], metric),
        "curve": learning_curve_figure(run),
        "cost": cost_figure(run.get("forecast") or {}),
        "calibration": calibration_figure(diagnosis.get("reliability") or {}, model),
        "confusion": confusion_figure(diagnosis.get("confusion") or {}, model),
    }
    return {name: figure_json(fig) for name, fig in figures.items() if fig is not None}
