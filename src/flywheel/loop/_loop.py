"""Closing the loop: mine hard cases into a review queue, take labels, retrain, judge, promote.

**Mining** scores logged predictions without feedback (and an optional pool file of unlabelled
rows) with the champion, and nominates the ones a label would teach most, each with its reason
codes: ``low-margin`` (top two classes close), ``high-entropy``, ``disagreement`` (the challenger
predicts otherwise), ``weak-class`` and ``weak-segment`` (the latest diagnosis's weak spots), and
``label-error`` for feedback that confident learning (cleanlab's ``find_label_issues``, on the
champion's probabilities — out of sample, since feedback rows were never trained on) says is
probably wrong. Exact and near duplicates are folded, and per-class quotas keep one confusing
class from filling the queue. Each item records the champion version that nominated it; when
the champion moves, open items it nominated expire.

**Retraining** fits the champion's model family on the training split plus the accepted labels —
never on the frozen test split — and registers the result as the ``challenger``. Labels from
traffic (``POST /feedback``) are a random sample of production; labels from the review queue are
not (mining chose them). So a fixed, hash-chosen half of the traffic labels is held out, and the
challenger is judged against the champion on the frozen test split plus that fresh slice.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import time
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flywheel.errors import DataError, FlywheelError, ModelError
from flywheel.prediction_log import LOG_NAME, connect, read_feedback, read_predictions
from flywheel.project import Project

__all__ = [
    "QueueItem",
    "Retrained",
    "expire_items",
    "export_queue",
    "import_labels",
    "label_item",
    "list_queue",
    "mine",
    "next_item",
    "retrain",
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


# --- mining ---------------------------------------------------------------------------------------


def _entropy(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.nansum(np.where(p > 0, p * np.log(p), 0.0), axis=1)
    return h / math.log(p.shape[1]) if p.shape[1] > 1 else h


def _fingerprint(frame: pd.DataFrame, numeric: list[str]) -> list[str]:
    """Rows that agree to 2 significant decimals after scaling count as the same (near duplicates)."""
    scaled = frame.copy()
    for c in numeric:
        col = pd.to_numeric(scaled[c], errors="coerce")
        spread = float(col.std()) or 1.0
        scaled[c] = ((col - float(col.mean())) / spread).round(1)
    return [
        hashlib.sha1(json.dumps(r, default=str).encode()).hexdigest()
        for r in scaled.to_dict(orient="records")
    ]


def _read_pool(path: Path, features: list[str]) -> pd.DataFrame:
    from flywheel.data import read_table

    frame = read_table(path, field="--pool", where="flywheel mine")
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise DataError(f"--pool {path.name}: lacks feature column {missing[0]!r}")
    return frame


def mine(
    project: Project,
    budget: int,
    *,
    pool: Path | None = None,
    quota_share: float | None = None,
) -> list[QueueItem]:
    """Nominate up to ``budget`` rows for review and add them to the queue; returns the new items."""
    from flywheel.registry import load_alias

    if budget < 1:
        raise DataError(f"--budget must be at least 1; got {budget}")
    champion = load_alias(project, "champion")
    expire_items(project, (champion.name, champion.version))
    challenger = None
    try:
        challenger = load_alias(project, "challenger")
        if challenger.model_id == champion.model_id:
            challenger = None
    except ModelError:
        challenger = None
    features = list(champion.schema.features)
    feedback_ids = {f["prediction_id"] for f in read_feedback(_log_path(project))}
    queued = {i.prediction_id for i in list_queue(project, None)}
    logged = [
        p
        for p in read_predictions(_log_path(project))
        if p["id"] not in feedback_ids and p["id"] not in queued
    ]
    rows = [p["input"] for p in logged]
    keys: list[str | None] = [p["id"] for p in logged]
    if pool is not None:
        extra = _read_pool(pool, features)
        rows += extra[features].to_dict(orient="records")
        keys += [None] * len(extra)
    now = time.time()
    items = _nominate(project, champion, challenger, rows, keys, budget, quota_share, now) if rows else []
    items += _label_errors(project, champion, budget - len(items), now)
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
    return items


def _nominate(
    project: Project,
    champion: Any,
    challenger: Any,
    rows: list[dict[str, Any]],
    keys: list[str | None],
    budget: int,
    quota_share: float | None,
    now: float,
) -> list[QueueItem]:
    """Score unlabelled rows with the champion (and challenger); the hardest, deduplicated, by quota."""
    from flywheel.evaluation import predict_with_scores
    from flywheel.registry import open_store

    frame = pd.DataFrame(rows, columns=list(champion.schema.features))
    for col, kind in champion.schema.features.items():
        frame[col] = (
            pd.to_numeric(frame[col], errors="coerce") if kind == "numeric" else frame[col].astype(object)
        )
    labels, proba = predict_with_scores(champion.model, frame, champion.schema.classes)
    n = len(frame)
    score = np.zeros(n)
    reasons: list[list[str]] = [[] for _ in range(n)]
    if proba is not None and proba.shape[1] > 1:
        top2 = np.sort(proba, axis=1)[:, -2:]
        margin = top2[:, 1] - top2[:, 0]
        entropy = _entropy(proba)
        score += (1 - margin) + entropy
        for i in range(n):
            if margin[i] < 0.2:
                reasons[i].append(f"low-margin ({margin[i]:.2f})")
            if entropy[i] > 0.5:
                reasons[i].append(f"high-entropy ({entropy[i]:.2f})")
    if challenger is not None:
        other, _ = predict_with_scores(challenger.model, frame, challenger.schema.classes)
        differ = np.asarray(other).astype(str) != np.asarray(labels).astype(str)
        score += differ * 1.0
        for j in np.flatnonzero(differ):
            i = int(j)
            reasons[i].append(
                f"disagreement (challenger {challenger.name} v{challenger.version}: {other[i]})"
            )
    store = open_store(project.store_dir, create=False)
    try:
        latest = store.latest_run(project.project)
    finally:
        store.close()
    diagnosis = (latest or {}).get("diagnosis") or {}
    weak = {str(c["label"]) for c in diagnosis.get("classes", []) if c.get("weak")}
    for i, lab in enumerate(np.asarray(labels).astype(str)):
        if lab in weak:
            score[i] += 0.5
            reasons[i].append(f"weak-class ({lab})")
    from flywheel.diagnosis import WeakSegment

    for seg in diagnosis.get("segments", []):
        if not seg.get("conditions"):
            continue
        inside = WeakSegment(**seg).contains(frame)
        score += inside * 0.5
        for j in np.flatnonzero(inside):
            reasons[int(j)].append(f"weak-segment ({seg['description']})")
    chosen = _select(frame, labels, score, reasons, budget, quota_share, champion.schema)
    items = [
        QueueItem(
            uuid.uuid4().hex[:16],
            keys[i],
            {k: _json_value(v) for k, v in frame.iloc[i].to_dict().items()},
            _json_value(labels[i]),
            reasons[i],
            float(score[i]),
            champion.name,
            champion.version,
            now,
        )
        for i in chosen
    ]
    return items


def _json_value(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _select(
    frame: pd.DataFrame,
    labels: Any,
    score: np.ndarray,
    reasons: list[list[str]],
    budget: int,
    quota_share: float | None,
    schema: Any,
) -> list[int]:
    """Highest scores first, near duplicates folded, each predicted class held to its quota."""
    numeric = [c for c, k in schema.features.items() if k == "numeric"]
    prints = _fingerprint(frame, numeric)
    label_text = np.asarray(labels).astype(str)
    k = max(1, len(set(label_text)))
    quota = max(1, math.ceil(budget * (quota_share if quota_share is not None else 1.0 / k)))
    order = sorted(range(len(frame)), key=lambda i: (-score[i], i))
    seen: set[str] = set()
    per_class: dict[str, int] = {}
    chosen: list[int] = []
    deferred: list[int] = []
    for i in order:
        if not reasons[i]:
            continue  # nothing makes it hard: not worth a label
        if prints[i] in seen:
            continue
        seen.add(prints[i])
        if per_class.get(label_text[i], 0) >= quota:
            deferred.append(i)
            continue
        per_class[label_text[i]] = per_class.get(label_text[i], 0) + 1
        chosen.append(i)
        if len(chosen) >= budget:
            return chosen
    for i in deferred:  # the quota keeps variety; spare budget still goes to the hardest rows
        if len(chosen) >= budget:
            break
        chosen.append(i)
    return chosen


def _label_errors(project: Project, champion: Any, room: int, now: float) -> list[QueueItem]:
    """Feedback labels that confident learning flags as probably wrong, for a second look."""
    if room <= 0 or champion.schema.classes is None:
        return []
    from flywheel.evaluation import predict_with_scores

    fb = {
        f["prediction_id"]: f
        for f in read_feedback(_log_path(project))
        if not f["prediction_id"].startswith("item:")
    }
    if len(fb) < 10:
        return []
    logged = read_predictions(_log_path(project), ids=fb)
    classes = [str(c) for c in champion.schema.classes]
    rows = [p for p in logged if fb[p["id"]]["label"] in classes]
    if len(rows) < 10:
        return []
    frame = pd.DataFrame([p["input"] for p in rows], columns=list(champion.schema.features))
    _, proba = predict_with_scores(champion.model, frame, champion.schema.classes)
    if proba is None:
        return []
    given = np.array([classes.index(fb[p["id"]]["label"]) for p in rows])
    try:
        from cleanlab.filter import find_label_issues
    except ImportError:
        return []  # optional: pip install 'ml-flywheel[cleanlab]'
    present = np.unique(given)
    if len(present) < 2:
        return []
    # cleanlab wants every class it is told about to appear; keep the columns of the classes given.
    sub = proba[:, present]
    sub = sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)
    remap = {c: j for j, c in enumerate(present)}
    try:
        with warnings.catch_warnings():  # cleanlab warns about small classes; the result stands
            warnings.simplefilter("ignore")
            flagged = find_label_issues(
                np.array([remap[g] for g in given]), sub, return_indices_ranked_by="self_confidence", n_jobs=1
            )
    except Exception:  # too few rows per class for confident learning: nothing to flag
        return []
    out = []
    for idx in list(flagged)[:room]:
        p = rows[int(idx)]
        said = classes[int(np.argmax(proba[int(idx)]))]
        out.append(
            QueueItem(
                uuid.uuid4().hex[:16],
                p["id"],
                p["input"],
                p["prediction"],
                [f"label-error (given {fb[p['id']]['label']}, the model says {said})"],
                2.0,
                champion.name,
                champion.version,
                now,
            )
        )
    return out


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


# --- retraining -----------------------------------------------------------------------------------


def _fresh(prediction_id: str) -> bool:
    """Half of the traffic labels, chosen by a hash of the prediction id, are held out for judging."""
    return int(hashlib.sha256(prediction_id.encode()).hexdigest()[:8], 16) % 2 == 0


@dataclass(frozen=True)
class Retrained:
    """A retrained challenger and its judgement against the champion."""

    name: str
    version: int
    trained_rows: int
    added_labels: int
    judged_rows: int
    fresh_rows: int
    verdict: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


def _labelled_rows(project: Project, features: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows to train on, fresh traffic rows to judge on): each with the feature columns and ``_label``."""
    feedback = read_feedback(_log_path(project))
    latest: dict[str, dict[str, Any]] = {}
    for f in feedback:
        latest[f["prediction_id"]] = f  # the newest label for a prediction wins
    ids = [k for k in latest if not k.startswith("item:")]
    inputs = {p["id"]: p["input"] for p in read_predictions(_log_path(project), ids=ids)}
    pool_items = {
        f"item:{it.id}": it.input for it in list_queue(project, "labelled") if it.prediction_id is None
    }
    train_rows, fresh_rows = [], []
    for key, f in latest.items():
        row = inputs.get(key) or pool_items.get(key)
        if row is None:
            continue
        record = {**{c: row.get(c) for c in features}, "_label": f["label"], "_key": key}
        if f["origin"] == "traffic" and _fresh(key):
            fresh_rows.append(record)
        else:
            train_rows.append(record)
    columns = [*features, "_label", "_key"]
    return pd.DataFrame(train_rows, columns=columns), pd.DataFrame(fresh_rows, columns=columns)


def retrain(project: Project) -> Retrained:
    """Fit the champion's family on train + accepted labels, register it as challenger, and judge it."""
    from flywheel.evaluation import class_scores, make_objective, save_artifact
    from flywheel.metrics import compare
    from flywheel.pipeline import plan
    from flywheel.registry import load_alias, open_store

    champion = load_alias(project, "champion")
    planned = plan(project)
    cand = next((c for c in planned.candidates if c.name == champion.name and c.make is not None), None)
    if cand is None:
        raise FlywheelError(
            f"the champion {champion.name!r} is not a model in flywheel.yaml that flywheel can refit"
        )
    ds, split = planned.dataset, planned.split
    features = list(ds.columns.features)
    added, fresh = _labelled_rows(project, features)
    notes: list[str] = []
    # Never train on the frozen test split: drop any fed-back row identical to a test row.
    test_rows = {
        json.dumps([_json_value(v) for v in r], default=str)
        for r in ds.X.iloc[split.test].itertuples(index=False)
    }
    if len(added):
        key = added[features].apply(lambda r: json.dumps([_json_value(v) for v in r], default=str), axis=1)
        leaked = key.isin(test_rows)
        if leaked.any():
            notes.append(f"{int(leaked.sum())} fed-back rows equal test rows and were left out of training")
            added = added.loc[~leaked]

    def typed(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[features].copy()
        for c in ds.columns.numeric:
            out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
        return out

    def labels(values: Iterable[Any]) -> np.ndarray:
        if ds.classes is None:
            return np.asarray([float(v) for v in values])
        by_text = {str(c): c for c in ds.classes}
        return np.asarray([by_text.get(str(v), v) for v in values], dtype=ds.y.dtype)

    X = pd.concat([ds.X.iloc[split.train], typed(added)], ignore_index=True)
    y = np.concatenate([ds.y[split.train], labels(added["_label"])])
    make = cand.make
    assert make is not None
    model = make()
    model.fit(X, y)
    judge_X = pd.concat([ds.X.iloc[split.test], typed(fresh)], ignore_index=True)
    judge_y = np.concatenate([ds.y[split.test], labels(fresh["_label"])])
    objective = make_objective(
        project.objective, ds.task, project.objective_fingerprint(), str(project.path), classes=ds.classes
    )
    metric = objective.primary.name
    from flywheel.metrics import get_metric

    def outputs(m: Any) -> np.ndarray:
        if get_metric(metric).needs == "scores":
            assert ds.classes is not None
            proba = class_scores(m, judge_X, ds.classes)
            if proba is None:
                raise FlywheelError(f"{metric} needs class scores and the model gives none")
            return proba
        return np.asarray(m.predict(judge_X))

    gate = project.gate
    margin = gate.margin if gate.policy == "superiority" else -gate.margin
    classes = None if ds.classes is None else np.asarray(ds.classes)
    comp = compare(
        judge_y, outputs(model), outputs(champion.model), metric, margin=margin, classes=classes
    ).to_dict()
    status = {"better": "pass", "worse": "fail"}.get(comp["verdict"], "inconclusive")
    verdict = {
        "status": status,
        "metric": metric,
        "policy": gate.policy,
        "margin": gate.margin,
        "comparison": comp,
        "reason": (
            f"retrained {champion.name} vs champion v{champion.version}: {metric} improvement "
            f"{comp['improvement']:+.4f} [{comp['low']:+.4f}, {comp['high']:+.4f}] on {comp['n']} rows "
            f"(test {len(split.test)} + fresh traffic {len(fresh)}), {gate.policy} margin {gate.margin:g}"
        ),
    }
    now = datetime.now(UTC)
    store = open_store(project.store_dir)
    try:
        version = store.next_model_version(project.project, champion.name)
        path = project.store_dir / "models" / champion.name / f"v{version}.pkl"
        save_artifact(path, pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), ds)
        path.with_suffix(".judged.json").write_text(json.dumps(verdict, default=str), encoding="utf-8")
        run_id = f"retrain-{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"
        saved = store.register_model(
            project.project,
            champion.name,
            version,
            path,
            ds.fingerprint,
            split.fingerprint,
            objective.version,
            run_id,
            now,
        )
        store.set_alias(
            project.project, "challenger", saved["id"], now, note=f"retrained with {len(added)} labels"
        )
    finally:
        store.close()
    return Retrained(champion.name, version, len(X), len(added), len(judge_y), len(fresh), verdict, notes)


# --- the report's flywheel section ----------------------------------------------------------------


