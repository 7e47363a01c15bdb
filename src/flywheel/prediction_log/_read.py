"""Reading the prediction log (its SQLite file or its PostgreSQL tables): logged predictions,
feedback labels, shadow answers and outcomes, as plain dicts.

Mining, retraining and reports read the file directly (no writer, no service): each call opens
its own connection and closes it, and a log that does not exist yet reads as empty. A log written
before a table existed gains it (empty) when opened, so every reader works on every log.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from flywheel.prediction_log._location import LogLocation, log_exists
from flywheel.prediction_log._writer import connect

__all__ = [
    "in_conflict",
    "read_feedback",
    "read_labels",
    "read_outcomes",
    "read_predictions",
    "read_shadow",
]

_CHUNK = 500  # ids per query: far below SQLite's limit on bound parameters (32766; 999 before 3.32)


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
    path: LogLocation, *, since: float | None = None, ids: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """Logged predictions, oldest first (all, those after ``since``, or those with ``ids``)."""
    if not log_exists(path):
        return []
    conn = connect(path)
    try:
        query = "SELECT id, at, model, version, input, prediction, probabilities, latency_ms FROM predictions"
        if ids is not None:
            wanted = list(ids)
            rows: list[Any] = []
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                rows += conn.execute(query + f" WHERE id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
            rows.sort(key=lambda r: r[1])
        elif since is not None:
            rows = conn.execute(query + " WHERE at > ? ORDER BY at", (since,)).fetchall()
        else:
            rows = conn.execute(query + " ORDER BY at").fetchall()
        return [_as_dict(r) for r in rows]
    finally:
        conn.close()


_FEEDBACK = "SELECT prediction_id, label, source, at, origin FROM feedback"


def _feedback_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    return {"prediction_id": row[0], "label": row[1], "source": row[2], "at": row[3], "origin": row[4]}


def read_feedback(path: LogLocation) -> list[dict[str, Any]]:
    """Every feedback label ever given, oldest first: the history (a prediction labelled twice is
    here twice). :func:`read_labels` says which label each prediction has now."""
    if not log_exists(path):
        return []
    conn = connect(path)
    try:
        rows = conn.execute(_FEEDBACK + " ORDER BY id").fetchall()
    finally:
        conn.close()
    return [_feedback_dict(r) for r in rows]


def in_conflict(history: list[dict[str, Any]]) -> bool:
    """Whether the labels given to one prediction since its last review disagree.

    ``history`` is its feedback, oldest first. A review label (origin ``review``, from the review
    queue) settles what came before it, so only it and what followed count.

    Examples
    --------
    >>> fb = lambda label, origin="traffic": {"label": label, "origin": origin}
    >>> in_conflict([fb("cat"), fb("cat")]), in_conflict([fb("cat"), fb("dog")])
    (False, True)
    >>> in_conflict([fb("cat"), fb("dog"), fb("dog", "review")])
    False
    >>> in_conflict([fb("3"), fb("3.0")])  # one number, written before and after labels were typed
    False
    """
    start = max((i for i, h in enumerate(history) if h["origin"] == "review"), default=0)
    return len({_same(h["label"]) for h in history[start:]}) > 1


def _same(label: Any) -> Any:
    """What makes two labels the same: the number they spell when both are finite numbers."""
    try:
        value = float(label)
    except (TypeError, ValueError):
        return ("text", str(label))
    return ("number", value) if math.isfinite(value) else ("text", str(label))


def read_labels(path: LogLocation, *, conflicts_only: bool = False) -> list[dict[str, Any]]:
    """The label each labelled prediction has now: its latest feedback (the latest wins).

    Feedback is never overwritten — every label stays in the log with its time — so this is the
    one reading of it that mining, retraining and the review queue use. Each entry is the latest
    feedback row plus ``history`` (every label given for that prediction, oldest first) and
    ``conflict`` (:func:`in_conflict`); entries come in the order of their latest label.
    ``conflicts_only`` keeps the predictions whose labels disagree (found by the database, so
    cheap on a long log).
    """
    if not log_exists(path):
        return []
    query = _FEEDBACK + " ORDER BY id"
    if conflicts_only:
        query = (
            _FEEDBACK + " WHERE prediction_id IN (SELECT prediction_id FROM feedback GROUP BY prediction_id "
            "HAVING COUNT(DISTINCT label) > 1) ORDER BY id"
        )
    conn = connect(path)
    try:
        rows = conn.execute(query).fetchall()
    finally:
        conn.close()
    history: dict[str, list[dict[str, Any]]] = {}
    last: dict[str, int] = {}  # the position of each prediction's latest label
    for i, row in enumerate(rows):
        entry = _feedback_dict(row)
        history.setdefault(entry["prediction_id"], []).append(entry)
        last[entry["prediction_id"]] = i
    labels = []
    for pid in sorted(history, key=last.__getitem__):
        seen = history[pid]
        conflict = in_conflict(seen)
        if conflict or not conflicts_only:
            labels.append({**seen[-1], "history": seen, "conflict": conflict})
    return labels


def _by_prediction(conn: Any, query: str, ids: Iterable[str] | None, order: str) -> list[tuple[Any, ...]]:
    """Rows of ``query`` (its first column is the row's order), all or those of these prediction ids,
    in that order."""
    if ids is None:
        return list(conn.execute(f"{query} ORDER BY {order}").fetchall())
    wanted = list(dict.fromkeys(ids))
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        where = f" WHERE prediction_id IN ({','.join('?' * len(chunk))})"
        rows += conn.execute(query + where, chunk).fetchall()
    rows.sort(key=lambda r: r[0])
    return rows


def read_shadow(path: LogLocation, ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The answers of models that ran on logged requests but were not returned, in the order written.

    Parameters
    ----------
    path
        The log's file (or PostgreSQL database).
    ids
        Prediction ids: only the shadow answers to these predictions (all when None).

    Returns
    -------
    list of dict
        One per shadow answer, with ``prediction_id`` (the prediction that was returned for the
        same input), ``model``, ``version``, ``prediction``, ``probabilities`` (None for a
        regression) and ``latency_ms`` (the shadow model's own time). A prediction has one shadow
        answer per model and version that ran beside it (none when it had no shadow).
    """
    if not log_exists(path):
        return []
    query = "SELECT rowid, prediction_id, model, version, prediction, probabilities, latency_ms FROM shadow"
    conn = connect(path)
    try:
        rows = _by_prediction(conn, query, ids, "rowid")
    finally:
        conn.close()
    return [
        {
            "prediction_id": r[1],
            "model": r[2],
            "version": r[3],
            "prediction": json.loads(r[4]),
            "probabilities": None if r[5] is None else json.loads(r[5]),
            "latency_ms": r[6],
        }
        for r in rows
    ]


def read_outcomes(path: LogLocation, ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Outcomes (downstream events such as a click or a refund, each tied to a logged prediction),
    oldest first: all of them, or those of the prediction ids in ``ids``.

    Each is a dict with ``prediction_id``, ``name``, ``value`` (a float; true/false were stored as
    1.0/0.0) and ``at`` (when it was recorded, Unix seconds). A prediction may have many outcomes,
    of one name or several; every one stays in the log.
    """
    if not log_exists(path):
        return []
    conn = connect(path)
    try:
        rows = _by_prediction(conn, "SELECT id, prediction_id, name, value, at FROM outcomes", ids, "id")
    finally:
        conn.close()
    return [{"prediction_id": r[1], "name": r[2], "value": r[3], "at": r[4]} for r in rows]
