"""Reading the prediction log's file: logged predictions and feedback labels, as plain dicts.

Mining, retraining and reports read the file directly (no writer, no service): each call opens
its own connection and closes it, and a log that does not exist yet reads as empty.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flywheel.prediction_log._writer import connect

__all__ = [
    "read_feedback",
    "read_predictions",
]


def _as_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "id": row[0],
        "at": row[1],
        "model": row[2],
        "version": row[3],
        "input": json.loads(row[4]),
        "prediction": json.loads(row[5]),
        "probabilities": None if row[6] is None else json.loads(row[6]),
        "latency_ms": row[7],
    }


def read_predictions(
    path: Path, *, since: float | None = None, ids: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """Logged predictions, oldest first (all, those after ``since``, or those with ``ids``)."""
    if not path.exists():
        return []
    conn = connect(path)
    try:
        query = "SELECT id, at, model, version, input, prediction, probabilities, latency_ms FROM predictions"
        if ids is not None:
            wanted = list(ids)
            rows: list[Any] = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows += conn.execute(query + f" WHERE id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
            rows.sort(key=lambda r: r[1])
        elif since is not None:
            rows = conn.execute(query + " WHERE at > ? ORDER BY at", (since,)).fetchall()
        else:
            rows = conn.execute(query + " ORDER BY at").fetchall()
        return [_as_dict(r) for r in rows]
    finally:
        conn.close()


def read_feedback(path: Path) -> list[dict[str, Any]]:
    """Feedback labels, oldest first; the latest label for a prediction wins where there are several."""
    if not path.exists():
        return []
    conn = connect(path)
    try:
        rows = conn.execute(
            "SELECT prediction_id, label, source, at, origin FROM feedback ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    return [{"prediction_id": r[0], "label": r[1], "source": r[2], "at": r[3], "origin": r[4]} for r in rows]
