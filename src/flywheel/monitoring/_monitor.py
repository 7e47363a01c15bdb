"""`flywheel monitor`: production's evidence, window by window, judged against the project's objective.

For each day (or week) of the prediction log the monitor reports input drift, prediction drift,
live quality on labelled traffic, the quality estimated without labels, and live latency; each is
``ok``, ``watch`` (an effect, not yet significant, or significant but small), ``act`` (significant
and larger than the project's margin) or ``too few rows`` (said instead of a verdict), and the
window's verdict is the worst of them. Across the windows it compares the champion with every
model that ran beside it (shadow or pilot) on the same labelled requests, with the gate's rules,
and reports whether the model's correctness moves the downstream outcomes.

From that evidence the lifecycle's loop-backs are *proposed* (a person accepts one with
``flywheel phase back --accept ID``): significant input drift or live quality below the test
estimate → back to data; a piloted model falling short of its lab estimate → back to training;
outcomes unmoved by correctness → back to planning. The result is written to
``.flywheel/monitor/latest.json``, which `phase show`, readiness, `mine` (its ``drift`` reason) and
the service's ``/metrics`` read.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from flywheel.errors import DataError
from flywheel.monitoring._common import MonitorPolicy, Window, _merge, _window_of, _worst
from flywheel.monitoring._loopbacks import _proposals, _region
from flywheel.monitoring._reference import Reference, build_reference
from flywheel.monitoring._state import (
    Day,
    load_state,
    reference_key,
    save_state,
    update_state,
)
from flywheel.monitoring._traffic import _labelled, _outcomes, _paired
from flywheel.monitoring._windows import _judge_window
from flywheel.project import Project
from flywheel.report import write_monitor_report

__all__ = [
    "EXIT_CODES",
    "MonitorPolicy",
    "monitor",
    "parse_since",
]

_SAMPLED_DAYS = 70  # days whose sampled inputs are kept: the longest default look-back, and some
_CACHED = 400  # domain-classifier results kept (a year of days and of weeks)
EXIT_CODES = {"ok": 0, "watch": 0, "act": 1, "undecided": 3}


def parse_since(text: str | None, window: Window, today: date) -> date:
    """The first day shown: an ISO date, or ``N`` days/weeks back (``7d``, ``2w``); by default the
    last 7 days, or the last 8 weeks with ``--window week``.

    >>> parse_since("3d", "day", date(2026, 11, 30)), parse_since("2026-11-01", "day", date(2026, 11, 30))
    (datetime.date(2026, 11, 28), datetime.date(2026, 11, 1))
    """
    if text is None:
        return today - (timedelta(days=6) if window == "day" else timedelta(weeks=7))  # 7 days, 8 weeks
    m = re.fullmatch(r"\s*(\d+)\s*([dw])\s*", text)
    if m:
        n = int(m.group(1))
        if n < 1:
            raise DataError(f"--since must be at least 1d; got {text!r}")
        return today - timedelta(days=n * (7 if m.group(2) == "w" else 1) - 1)
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise DataError(
            f"--since must be a date (2026-11-01) or a span back (7d, 2w); got {text!r}"
        ) from None


def monitor(
    project: Project,
    *,
    since: str | None = None,
    window: Window = "day",
    policy: MonitorPolicy | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Read the log's new rows, judge every window since ``since`` and write ``latest.json``.

    Raises
    ------
    FlywheelError
        One line: no prediction log, no champion, a bad ``since``.
    """

    policy = policy or MonitorPolicy()
    if window not in ("day", "week"):
        raise DataError(f"--window must be day or week; got {window!r}")
    started = time.perf_counter()
    now = time.time() if now is None else now
    today = datetime.fromtimestamp(now, UTC).date()
    first = parse_since(since, window, today)
    log = _log_of(project)
    champion, ds, split, objective, ref = setting(project)
    metric = objective.primary
    folder = monitor_folder(project)
    state = update_state(load_state(folder / "state.json", reference_key(ref)), log, ref)
    champ_key = f"{champion.name}:{champion.version}"
    margin = project.gate.margin if project.gate.margin > 0 else _default_margin(metric)
    grouped = _grouped(state.days, first, today, window)
    labelled, unknown = _labelled(log, ref)
    judge = partial(
        _judge_window, ref=ref, champ_key=champ_key, objective=objective, margin=margin, policy=policy
    )
    windows = [
        judge(
            name,
            _merge(days),
            [r for r in labelled if _window_of(r["day"], window) == name],
            cache=state.cache,
            kind=window,
        )
        for name, days in grouped.items()
    ]
    _keep(state, folder, today)
    in_range = [r for r in labelled if _window_of(r["day"], window) in grouped]
    pairs = _paired(project, in_range, champ_key, metric.name, ref, ds, split, objective)
    outcomes = _outcomes(log, in_range, champ_key, ref, policy)
    verdict = _worst([w["verdict"] for w in windows])
    result = {
        "at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        "project": project.project,
        "champion": {"id": champion.model_id, "name": champion.name, "version": champion.version},
        "metric": metric.name,
        "greater_is_better": metric.greater_is_better,
        "margin": margin,
        "target": objective.target,
        "test": {"value": ref.test_value, "interval": ref.test_interval, "rows": ref.test_rows},
        "window": window,
        "since": first.isoformat(),
        "confidence": 0.95,
        "policy": asdict(policy),
        "windows": windows,
        "paired": pairs,
        "outcomes": outcomes,
        "verdict": verdict,
        "exit_code": EXIT_CODES[verdict],
        "unknown_labels": unknown,  # traffic labels of classes the champion does not know: left out
        "log": {"rows_read": state.read_now, "rows_counted": sum(d.n for d in state.days.values())},
        "seconds": None,
    }
    result["proposals"] = _proposals(result)
    result["drift_region"] = _region(windows, grouped, ref)
    result["report"] = str(project.store_dir / "reports" / "monitor.html")
    result["seconds"] = round(time.perf_counter() - started, 3)
    _write(folder, result)
    write_monitor_report(result, project.store_dir / "reports")
    return result


def _keep(state: Any, folder: Any, today: date) -> None:
    """Save the totals, with a bounded cache and raw samples for the recent days only (counts stay)."""
    state.cache = dict(list(state.cache.items())[-_CACHED:])
    stale = (today - timedelta(days=_SAMPLED_DAYS)).isoformat()
    for day_name, day in state.days.items():
        if day_name < stale:
            day.sample = []
    save_state(folder / "state.json", state)


def _log_of(project: Project) -> Any:
    """The project's prediction log, refused in one line when there is none or it cannot be read."""
    from flywheel.prediction_log import PostgresLog
    from flywheel.registry import log_location

    log = log_location(project)
    if isinstance(log, PostgresLog):  # its tables are made when missing: an empty log reads as empty
        return log
    if not log.is_file():
        raise DataError(
            f"flywheel monitor: {project.project} has no prediction log ({log}); "
            "serve the champion (`flywheel serve`) and send it traffic first"
        )
    readable(log)
    return log


def readable(log: Any) -> None:
    """Refuse, in one line, a log file that is not a prediction log (another file, a damaged one)."""
    import sqlite3

    if not isinstance(log, Path):  # PostgreSQL: the tables are the log's, made by it
        return
    try:
        conn = sqlite3.connect(f"file:{log}?mode=ro", uri=True, timeout=30)
        try:
            conn.execute(
                "SELECT id, at, model, version, input, prediction, probabilities, latency_ms "
                "FROM predictions LIMIT 1"
            )
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise DataError(
            f"{log} is not a readable prediction log ({exc}); "
            "nothing was changed: move it aside and serve again to start a new one"
        ) from None


def setting(project: Project) -> tuple[Any, Any, Any, Any, Reference]:
    """The champion (loaded), the project's data and split, its objective, and the reference."""
    from flywheel.data import load_dataset, split_dataset
    from flywheel.evaluation import make_objective
    from flywheel.registry import load_alias

    champion = load_alias(project, "champion")
    ds = load_dataset(project.data, project.root, where=project.where)
    split = split_dataset(ds, project.data.split, where=project.where)
    objective = make_objective(
        project.objective, ds.task, project.objective_fingerprint(), project.where, ds.classes
    )
    return champion, ds, split, objective, build_reference(project, champion, objective.primary, ds, split)


def _grouped(days: dict[str, Day], first: date, today: date, window: Window) -> dict[str, list[Day]]:
    """The stored days from the window holding ``first`` to ``today``, grouped into windows."""
    start = date.fromisoformat(_window_of(first.isoformat(), window))
    grouped: dict[str, list[Day]] = {}
    for day_name in sorted(days):
        w = _window_of(day_name, window)
        if date.fromisoformat(w) >= start and date.fromisoformat(day_name) <= today:
            grouped.setdefault(w, []).append(days[day_name])
    if days:  # a window with no traffic at all is shown (a silent service is news), from the first logged
        step = timedelta(days=1 if window == "day" else 7)
        w_day = max(start, date.fromisoformat(_window_of(min(days), window)))
        while w_day <= today:
            grouped.setdefault(w_day.isoformat(), [])
            w_day += step
    return dict(sorted(grouped.items()))


def monitor_folder(project: Project) -> Any:
    from flywheel.scoping import monitor_file

    return monitor_file(project).parent


def _default_margin(metric: Any) -> float:
    from flywheel.baselines import default_margin

    return default_margin(metric)


def _write(folder: Any, result: dict[str, Any]) -> None:
    from flywheel.evaluation import write_atomically

    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / "latest.json", json.dumps(result, indent=1, default=_plain).encode())
    summary = {
        "at": result["at"],
        "verdict": result["verdict"],
        "champion": result["champion"],
        "windows": {w["window"]: w["verdict"] for w in result["windows"]},
    }
    with (folder / "history.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(summary) + "\n")


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON: {type(v).__name__}")
