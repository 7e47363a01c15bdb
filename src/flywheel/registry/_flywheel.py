"""What the served loop has stored: labels gained over time, the review queue, each retrain's judgement.

A query over the prediction log and the judgements ``flywheel retrain`` writes beside each
retrained artifact; the report's flywheel section shows it. It only reads: a log without a
review queue yet counts an empty queue.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flywheel.prediction_log import connect, is_postgres, log_exists
from flywheel.project import Project

__all__ = [
    "flywheel_summary",
    "loop_counts",
]


# Labels gained: each labelled prediction once, on the day (and by the origin) of its first label;
# a second label for it is history, not a new label. (SQLite takes the origin of the MIN(at) row.)
_LABEL_DAYS = (
    "SELECT date(first_at, 'unixepoch') AS day, origin, COUNT(*) FROM "
    "(SELECT prediction_id, MIN(at) AS first_at, origin FROM feedback GROUP BY prediction_id) "
    "GROUP BY day, origin ORDER BY day"
)
_LABEL_DAYS_PG = (
    "SELECT to_char(to_timestamp(first_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, origin, COUNT(*) "
    "FROM (SELECT DISTINCT ON (prediction_id) prediction_id, at AS first_at, origin FROM feedback "
    "ORDER BY prediction_id, at, id) AS firsts GROUP BY day, origin ORDER BY day"
)


def flywheel_summary(project: Project) -> dict[str, Any] | None:
    """Labels gained over time (by day and origin), the queue, and the metric across retrains.

    ``None`` when the project has never served a prediction.
    """
    from flywheel.registry._store import log_location

    log = log_location(project)
    if not log_exists(log):
        return None
    conn = connect(log)
    try:
        predictions = int(conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])
        if predictions == 0 and is_postgres(conn):  # the tables are there from the start
            return None
        days = conn.execute(_LABEL_DAYS_PG if is_postgres(conn) else _LABEL_DAYS).fetchall()
        has_queue = conn.execute(
            "SELECT to_regclass('review_queue') IS NOT NULL"
            if is_postgres(conn)
            else "SELECT COUNT(*) FROM sqlite_master WHERE name = 'review_queue'"
        ).fetchone()[0]
        queue = (
            dict(conn.execute("SELECT status, COUNT(*) FROM review_queue GROUP BY status").fetchall())
            if has_queue
            else {}
        )
    finally:
        conn.close()
    timeline: list[dict[str, Any]] = []
    total = 0
    for day, origin, n in days:
        total += n
        timeline.append({"day": day, "origin": origin, "labels": n, "cumulative": total})
    retrains = []
    folder = project.store_dir / "models"
    for judged in sorted(
        folder.glob("*/v*.judged.json"), key=lambda p: (p.parent.name, int(p.stem.split(".")[0][1:]))
    ):
        verdict = json.loads(judged.read_text(encoding="utf-8"))
        comp = verdict["comparison"]
        retrains.append(
            {
                "model": judged.parent.name,
                "version": int(judged.stem.split(".")[0][1:]),
                "metric": verdict["metric"],
                "challenger": comp.get("a"),
                "champion": comp.get("b"),
                "improvement": comp.get("improvement"),
                "low": comp.get("low"),
                "high": comp.get("high"),
                "rows": comp.get("n"),
                "status": verdict["status"],
            }
        )
    return {
        "predictions": predictions,
        "labels": total,
        "timeline": timeline,
        "queue": queue,
        "retrains": retrains,
        "monitor": _monitor_summary(project),
    }


MONITOR_FILE = Path("monitor") / "latest.json"  # under the store: what `flywheel monitor` found last


def _monitor_summary(project: Project) -> dict[str, Any] | None:
    """The last `flywheel monitor` result in brief (its verdicts and proposals), for the run's report."""
    try:
        r = json.loads((project.store_dir / MONITOR_FILE).read_text(encoding="utf-8"))
        return {
            "at": str(r["at"]),
            "champion": {"name": str(r["champion"]["name"]), "version": int(r["champion"]["version"])},
            "verdict": str(r["verdict"]),
            "metric": str(r["metric"]),
            "windows": [
                {
                    "window": str(w["window"]),
                    "predictions": int(w["predictions"]),
                    "labelled": int(w["labelled"]),
                    "verdict": str(w["verdict"]),
                    "live": w["live_quality"].get("value"),
                }
                for w in r["windows"]
            ],
            "proposals": [
                {"id": str(p["id"]), "to": str(p["to"]), "reason": str(p["reason"])} for p in r["proposals"]
            ],
            "report": str(r.get("report", "")),
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # never monitored, or a file this version cannot read: the report goes without


def loop_counts(summary: dict[str, Any] | None) -> dict[str, int]:
    """Logged predictions and feedback labels from :func:`flywheel_summary`, as readiness and the
    lifecycle count them: one source, so the report's sections cannot disagree."""
    if summary is None:
        return {"predictions_logged": 0, "feedback": 0}
    return {"predictions_logged": int(summary["predictions"]), "feedback": int(summary["labels"])}
