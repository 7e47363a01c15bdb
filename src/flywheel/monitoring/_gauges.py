"""The latest monitor result as Prometheus gauges, for the service's ``/metrics``.

The service does not compute drift (that would cost the request path); it publishes what the
last `flywheel monitor` found, with the time it was found, so an alerting rule can also fire
when the monitor has not run for too long.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flywheel.project import Project

__all__ = ["gauges"]

_VERDICT = {"undecided": -1, "too few rows": -1, "ok": 0, "watch": 1, "act": 2}


def gauges(project: Project) -> str:
    """Prometheus text lines for the latest monitor result ("" when there is none or it is unreadable)."""
    from flywheel.scoping import monitor_file

    try:
        result = json.loads(monitor_file(project).read_text(encoding="utf-8"))
        return _lines(result)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ""


def _gauge(name: str, about: str, value: float | int | None, labels: str = "") -> list[str]:
    """One gauge in Prometheus text: its help, its type and its sample (nothing when ``value`` is None)."""
    if value is None:
        return []
    shown = f"{value:.6g}" if isinstance(value, float) else str(value)
    sample = f"flywheel_monitor_{name}{{{labels}}} {shown}" if labels else f"flywheel_monitor_{name} {shown}"
    return [f"# HELP flywheel_monitor_{name} {about}", f"# TYPE flywheel_monitor_{name} gauge", sample]


def _lines(r: dict[str, Any]) -> str:
    at = int(datetime.fromisoformat(r["at"]).timestamp())
    out = _gauge("timestamp_seconds", "When `flywheel monitor` last judged the log.", at)
    out += _gauge(
        "verdict", "The latest verdict: -1 undecided, 0 ok, 1 watch, 2 act.", _VERDICT[r["verdict"]]
    )
    if r["windows"]:
        w = r["windows"][-1]
        window = f'window="{w["window"]}"'
        domain = w["input_drift"].get("domain") or {}
        live, est = w["live_quality"], w["estimated_quality"]
        out += _gauge(
            "window_verdict",
            "The newest window's verdict (-1 undecided … 2 act).",
            _VERDICT[w["verdict"]],
            window,
        )
        drifted = len(w["input_drift"].get("drifted", []))
        out += _gauge("drifted_features", "Features whose drift is significant and large.", drifted, window)
        out += _gauge(
            "domain_auc",
            "Domain classifier AUC, training vs logged (0.5: no drift).",
            domain.get("auc"),
            window,
        )
        metric = f'{window},metric="{r["metric"]}"'
        out += _gauge(
            "live_metric",
            "The objective's metric on traffic-labelled predictions.",
            live.get("value"),
            metric,
        )
        estimated = f'{window},metric="{est.get("metric", r["metric"])}"'
        out += _gauge("estimated_metric", "The metric estimated without labels.", est.get("value"), estimated)
    return "\n".join(out) + "\n"
