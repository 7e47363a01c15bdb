"""The review queue: its table in the prediction log, ``QueueItem``, listing, labelling, expiry,
and export to / import from any labelling tool.

Each item records the champion version that nominated it; when the champion moves, open items it
nominated expire. A label given here becomes feedback (origin ``review``), so retraining and the
log see it like any other label. The queue lives in the prediction log's database, next to the
feedback it feeds, so labelling an item and recording its feedback is one transaction.

Feedback is history — every label stays, the latest wins — so two labels that disagree for one
prediction are not resolved by whichever came last: reading the queue surfaces each such
prediction as an item with the reason ``conflict`` (every label given, in ``conflict``), ahead of
mined items, and a reviewer's label settles it. Conflict items do not expire with the champion.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from flywheel.errors import DataError
from flywheel.prediction_log import LogLocation, connect, is_postgres, read_labels
from flywheel.project import Project

__all__ = [
    "QueueItem",
    "ReviewQueue",
    "expire_items",
    "export_queue",
    "import_labels",
    "label_item",
    "list_queue",
    "next_item",
    "queue_counts",
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
    labelled_at REAL,
    conflict TEXT
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
    conflict: list[dict[str, Any]] | None = None  # a conflict item's labels, oldest first

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


def _log_path(project: Project) -> LogLocation:
    """The project's prediction log (a file, or its PostgreSQL store's database)."""
    from flywheel.registry import log_location

    return log_location(project)


def _queue_conn(project: Project) -> Any:
    conn = connect(_log_path(project))
    conn.executescript(_QUEUE_SCHEMA)
    if is_postgres(conn):  # its queue was made with every column
        return conn
    columns = {r[1] for r in conn.execute("PRAGMA table_info(review_queue)")}
    if "conflict" not in columns:  # a queue made before conflicts were surfaced
        conn.execute("ALTER TABLE review_queue ADD COLUMN conflict TEXT")
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
        json.loads(row[12]) if row[12] is not None else None,
    )


_COLUMNS = (
    "id, prediction_id, input, prediction, reasons, score, model, version, created_at, "
    "status, label, labelled_by, conflict"
)


def expire_items(project: Project, champion: tuple[str, int] | None) -> int:
    """Open items nominated by a model that is no longer champion expire; returns how many."""
    if champion is None:
        return 0
    conn = _queue_conn(project)
    try:
        cur = conn.execute(
            "UPDATE review_queue SET status='expired' WHERE status='open' AND NOT (model=? AND version=?) "
            "AND conflict IS NULL",  # disagreeing labels need a reviewer, whichever model serves
            champion,
        )
        return int(cur.rowcount)
    finally:
        conn.close()


def list_queue(project: Project, status: str | None = "open") -> list[QueueItem]:
    """Items by priority (open ones by default), conflicting labels surfaced first (see above)."""
    conn = _queue_conn(project)
    try:
        _surface_conflicts(project, conn)
        if status is None:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM review_queue ORDER BY score DESC, id").fetchall()
        else:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM review_queue WHERE status=? ORDER BY score DESC, id", (status,)
            ).fetchall()
        return [_item(r) for r in rows]
    finally:
        conn.close()


# Above any mined score (doubt, disagreement and weak spots add up to about 5 at most): a conflict
# already has labels and needs only a reviewer's word.
_CONFLICT_SCORE = 10.0


def _conflict_reason(history: list[dict[str, Any]]) -> str:
    """``conflict (cat by ann vs dog by bob)``: each label given, once, with who gave it."""
    given: dict[str, list[str]] = {}
    for h in history:
        who = given.setdefault(h["label"], [])
        if h["source"] not in who:
            who.append(h["source"])
    return "conflict (" + " vs ".join(f"{label} by {', '.join(who)}" for label, who in given.items()) + ")"


def _surface_conflicts(project: Project, conn: Any) -> int:
    """Put each prediction whose labels disagree in the queue, or keep its open item's labels current.

    An open item for the prediction (mined, or an earlier conflict item) gains the ``conflict``
    reason; otherwise a new item opens, nominated by the model that made the prediction. Returns
    how many items were opened or changed (no write when nothing changed).
    """
    disputed = read_labels(_log_path(project), conflicts_only=True)
    disputed = [e for e in disputed if not e["prediction_id"].startswith("item:")]
    if not disputed:
        return 0
    open_items = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT prediction_id, id, reasons, conflict FROM review_queue "
            "WHERE status='open' AND prediction_id IS NOT NULL"
        ).fetchall()
    }
    changes = [c for e in disputed if (c := _conflict_change(conn, e, open_items.get(e["prediction_id"])))]
    if changes:
        conn.execute("BEGIN IMMEDIATE")
        for sql, params in changes:
            conn.execute(sql, params)
        conn.execute("COMMIT")
    return len(changes)


def _conflict_change(
    conn: Any, entry: dict[str, Any], open_item: tuple[str, str, str | None] | None
) -> tuple[str, tuple[Any, ...]] | None:
    """The statement that surfaces one disputed prediction (None: already shown, or no longer logged)."""
    labels = [{k: h[k] for k in ("label", "source", "at", "origin")} for h in entry["history"]]
    reason = _conflict_reason(entry["history"])
    if open_item is not None:
        item_id, reasons, stored = open_item
        if stored is not None and json.loads(stored) == labels:
            return None
        kept = [r for r in json.loads(reasons) if not r.startswith("conflict")]
        # SQLite's MAX of two values is PostgreSQL's GREATEST
        higher = "GREATEST" if is_postgres(conn) else "MAX"
        return (
            f"UPDATE review_queue SET reasons=?, conflict=?, score={higher}(score, ?) WHERE id=?",
            (json.dumps([reason, *kept]), json.dumps(labels), _CONFLICT_SCORE, item_id),
        )
    pid = entry["prediction_id"]
    logged = conn.execute("SELECT input, prediction, model, version FROM predictions WHERE id=?", (pid,))
    found = logged.fetchone()
    if found is None:  # past retention: nothing left to review
        return None
    item_id = hashlib.sha1(f"{pid}:{len(labels)}".encode()).hexdigest()[:16]
    values = (item_id, pid, found[0], found[1], json.dumps([reason]), _CONFLICT_SCORE, found[2], found[3])
    return (
        "INSERT OR IGNORE INTO review_queue(id, prediction_id, input, prediction, reasons, score, "
        "model, version, created_at, conflict) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (*values, time.time(), json.dumps(labels)),
    )


class ReviewQueue:
    """The review queue read by the database on one connection: how many items have each status,
    the first open item not skipped, and one item by id — each one SQL query, so a page over a
    long queue does not read every item (:func:`list_queue` does, to list them).

    Opening it surfaces conflicting labels as :func:`list_queue` does, so what it reads is what
    ``list_queue`` would list. Use it in a ``with`` block (or call :meth:`close`).
    """

    def __init__(self, project: Project) -> None:
        self._conn = _queue_conn(project)
        try:
            _surface_conflicts(project, self._conn)
        except BaseException:
            self._conn.close()
            raise

    def __enter__(self) -> ReviewQueue:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def counts(self) -> dict[str, int]:
        """How many items have each status present (``open``, ``labelled``, ``expired``), by status."""
        rows = self._conn.execute("SELECT status, COUNT(*) FROM review_queue GROUP BY status ORDER BY status")
        return {str(status): int(n) for status, n in rows}

    def first_open(self, skip: Iterable[str] = ()) -> QueueItem | None:
        """The open item with the highest priority (``list_queue``'s order) whose id is not in ``skip``."""
        skipped: Any = [str(s) for s in skip]
        among = "id <> ALL(?)"  # PostgreSQL takes the list as an array
        if not is_postgres(self._conn):
            among, skipped = "id NOT IN (SELECT value FROM json_each(?))", json.dumps(skipped)
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM review_queue WHERE status='open' AND {among} "
            "ORDER BY score DESC, id LIMIT 1",
            (skipped,),
        ).fetchone()
        return None if row is None else _item(row)

    def get(self, item_id: str) -> QueueItem | None:
        """The item with this id, whatever its status (``None`` when the queue has none)."""
        row = self._conn.execute(f"SELECT {_COLUMNS} FROM review_queue WHERE id=?", (item_id,)).fetchone()
        return None if row is None else _item(row)

    def open_among(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are open items."""
        wanted: Any = [str(i) for i in ids]
        among = "status='open' AND id = ANY(?)"  # PostgreSQL takes the list as an array
        if not is_postgres(self._conn):  # `+status`: found by id (few), not among every open item
            among, wanted = "+status='open' AND id IN (SELECT value FROM json_each(?))", json.dumps(wanted)
        rows = self._conn.execute(f"SELECT id FROM review_queue WHERE {among}", (wanted,))
        return {str(r[0]) for r in rows}


def queue_counts(project: Project) -> dict[str, int]:
    """How many items of the project's queue have each status, counted by the database.

    Only statuses that some item has are keys: an empty queue is ``{}``.
    """
    with ReviewQueue(project) as queue:
        return queue.counts()


def next_item(project: Project) -> QueueItem | None:
    """The open item with the highest priority."""
    with ReviewQueue(project) as queue:
        return queue.first_open()


def label_item(
    project: Project, item_id: str, label: Any, by: str, classes: list[Any] | None, *, again: bool = False
) -> QueueItem:
    """Give an item its label; the label becomes feedback (origin ``review``).

    ``again`` also takes an item already labelled (a reviewer's correction, the workbench's undo):
    the new label is one more feedback row — the log keeps the first — and the queue shows it.

    Raises
    ------
    DataError
        When the item is unknown or not open (nor labelled, with ``again``), or the label is not a
        known class.
    """
    if classes is not None and str(label) not in {str(c) for c in classes}:
        raise DataError(f"label {label!r} is not a known class ({', '.join(map(str, classes[:12]))})")
    conn = _queue_conn(project)
    try:
        row = conn.execute(f"SELECT {_COLUMNS} FROM review_queue WHERE id=?", (item_id,)).fetchone()
        if row is None:
            raise DataError(f"no review item {item_id!r}")
        item = _item(row)
        if item.status != "open" and not (again and item.status == "labelled"):
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
    """Open items to CSV or JSONL (by the file's suffix), for any labelling tool; returns how many.

    Raises
    ------
    DataError
        For another suffix, a folder that does not exist, or a path that is a folder; before
        anything is read or written.
    """
    if path.suffix not in (".csv", ".jsonl"):
        raise DataError(f"{path.name}: export writes .csv or .jsonl; got {path.suffix or 'no suffix'}")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; allowed: a .csv or .jsonl file to write")
    if not path.parent.is_dir():
        raise DataError(
            f"{path}: the folder {path.parent} does not exist; allowed: a file in an existing folder"
        )
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
    import pandas as pd  # only export and import need it: `flywheel queue list` starts without it

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
