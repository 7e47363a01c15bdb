"""The review queue: its table in the prediction log, ``QueueItem``, listing, labelling, expiry,
and export to / import from any labelling tool.

Each item records the champion version that nominated it; when the champion moves, open items it
nominated expire. A label given here becomes feedback (origin ``review``), so retraining and the
log see it like any other label. The queue lives in the prediction log's database, next to the
feedback it feeds, so labelling an item and recording its feedback is one transaction.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from flywheel.errors import DataError
from flywheel.prediction_log import LOG_NAME, connect
from flywheel.project import Project

__all__ = [
    "QueueItem",
    "expire_items",
    "export_queue",
    "import_labels",
    "label_item",
    "list_queue",
    "next_item",
]

_QUEUE_SCHEMA = """
CREATE TABLE IF NOT EXISTS review_queue (
    id TEXT PRIMARY KEY,
    prediction_id TEXT,
    input TEXT NOT NULL,
    prediction TEXT,
    reasons TEXT NOT NULL,
    score REAL NOT NULL,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    label TEXT,
    labelled_by TEXT,
    labelled_at REAL
);
CREATE INDEX IF NOT EXISTS review_status ON review_queue(status, score);
"""


@dataclass(frozen=True)
class QueueItem:
    """One row nominated for review, why, and by which model version."""

    id: str
    prediction_id: str | None
    input: dict[str, Any]
    prediction: Any
    reasons: list[str]
    score: float
    model: str
    version: int
    created_at: float
    status: str = "open"
    label: str | None = None
    labelled_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


def _log_path(project: Project) -> Path:
    return project.store_dir / LOG_NAME


def _queue_conn(project: Project) -> Any:
    conn = connect(_log_path(project))
    conn.executescript(_QUEUE_SCHEMA)
    return conn


def _item(row: tuple[Any, ...]) -> QueueItem:
    return QueueItem(
        row[0],
        row[1],
        json.loads(row[2]),
        json.loads(row[3]) if row[3] is not None else None,
        json.loads(row[4]),
        row[5],
        row[6],
        row[7],
        row[8],
        row[9],
        row[10],
        row[11],
    )


_COLUMNS = (
    "id, prediction_id, input, prediction, reasons, score, model, version, created_at, "
    "status, label, labelled_by"
)


def expire_items(project: Project, champion: tuple[str, int] | None) -> int:
    """Open items nominated by a model that is no longer champion expire; returns how many."""
    if champion is None:
        return 0
    conn = _queue_conn(project)
    try:
        cur = conn.execute(
            "UPDATE review_queue SET status='expired' WHERE status='open' AND NOT (model=? AND version=?)",
            champion,
        )
        return int(cur.rowcount)
    finally:
        conn.close()


def list_queue(project: Project, status: str | None = "open") -> list[QueueItem]:
    """Items by priority (open ones by default)."""
    conn = _queue_conn(project)
    try:
        if status is None:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM review_queue ORDER BY score DESC, id").fetchall()
        else:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM review_queue WHERE status=? ORDER BY score DESC, id", (status,)
            ).fetchall()
        return [_item(r) for r in rows]
    finally:
        conn.close()


def next_item(project: Project) -> QueueItem | None:
    """The open item with the highest priority."""
    items = list_queue(project)
    return items[0] if items else None


def label_item(project: Project, item_id: str, label: Any, by: str, classes: list[Any] | None) -> QueueItem:
    """Give an item its label; the label becomes feedback (origin ``review``).

    Raises
    ------
    DataError
        When the item is unknown or not open, or the label is not a known class.
    """
    if classes is not None and str(label) not in {str(c) for c in classes}:
        raise DataError(f"label {label!r} is not a known class ({', '.join(map(str, classes[:12]))})")
    conn = _queue_conn(project)
    try:
        row = conn.execute(f"SELECT {_COLUMNS} FROM review_queue WHERE id=?", (item_id,)).fetchone()
        if row is None:
            raise DataError(f"no review item {item_id!r}")
        item = _item(row)
        if item.status != "open":
            raise DataError(f"review item {item_id!r} is {item.status}, not open")
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "UPDATE review_queue SET status='labelled', label=?, labelled_by=?, labelled_at=? WHERE id=?",
            (str(label), by, now, item_id),
        )
        conn.execute(
            "INSERT INTO feedback(prediction_id, label, source, at, origin) VALUES (?,?,?,?, 'review')",
            (item.prediction_id or f"item:{item_id}", str(label), by, now),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return QueueItem(**{**item.to_dict(), "status": "labelled", "label": str(label), "labelled_by": by})


def _json_value(v: Any) -> Any:
    """A numpy scalar as a plain JSON value (non-finite floats as ``None``), as rows are stored here."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _enqueue(project: Project, items: list[QueueItem]) -> None:
    """Add newly nominated items to the queue, all in one transaction."""
    conn = _queue_conn(project)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO review_queue(id, prediction_id, input, prediction, reasons, score, model, version, "
            "created_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (
                    it.id,
                    it.prediction_id,
                    json.dumps(it.input, default=str),
                    json.dumps(it.prediction, default=str),
                    json.dumps(it.reasons),
                    it.score,
                    it.model,
                    it.version,
                    it.created_at,
                )
                for it in items
            ],
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


# --- export / import ------------------------------------------------------------------------------


def export_queue(project: Project, path: Path) -> int:
    """Open items to CSV or JSONL (by the file's suffix), for any labelling tool; returns how many."""
    items = list_queue(project)
    records = [
        {
            "item_id": it.id,
            **it.input,
            "model_prediction": it.prediction,
            "reasons": "; ".join(it.reasons),
            "label": "",
        }
        for it in items
    ]
    frame = pd.DataFrame(
        records, columns=None if records else ["item_id", "model_prediction", "reasons", "label"]
    )
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        raise DataError(f"{path.name}: export writes .csv or .jsonl; got {path.suffix or 'no suffix'}")
    return len(items)


def import_labels(
    project: Project, path: Path, classes: list[Any] | None, by: str = "import"
) -> tuple[int, list[str]]:
    """Labels from a CSV/JSONL with ``item_id`` and ``label`` (optional ``by``); returns (taken, problems).

    Rows with an empty label are skipped; every other problem is reported, and the good rows are
    still taken (each label is its own transaction, so nothing half-applied is left).
    """
    from flywheel.data import read_table

    frame = read_table(path, field="import", where="flywheel queue import")
    for column in ("item_id", "label"):
        if column not in frame.columns:
            raise DataError(f"{path.name}: lacks column {column!r}; expected item_id, label[, by]")
    taken, problems = 0, []
    for i, row in frame.iterrows():
        label = row["label"]
        if label is None or (isinstance(label, float) and math.isnan(label)) or str(label).strip() == "":
            continue
        label = str(label).strip()
        if classes is None:
            try:
                label = str(float(label))
            except ValueError:
                problems.append(f"line {int(str(i)) + 2}: label {label!r} is not a number")
                continue
        who = str(row["by"]) if "by" in frame.columns and isinstance(row["by"], str) and row["by"] else by
        try:
            label_item(project, str(row["item_id"]), label, who, classes)
            taken += 1
        except DataError as exc:
            problems.append(f"line {int(str(i)) + 2}: {exc}")
    return taken, problems
