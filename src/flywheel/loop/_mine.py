"""Mining: scoring rows without a label and nominating the ones a label would teach most.

Mining scores logged predictions without feedback (and an optional pool file of unlabelled
rows) with the champion, and nominates the ones a label would teach most, each with its reason
codes: ``low-margin`` (top two classes close), ``high-entropy``, ``disagreement`` (the challenger
predicts otherwise), ``weak-class`` and ``weak-segment`` (the latest diagnosis's weak spots),
``out-of-range`` and ``wide-spread`` (``_novelty``), ``drift`` (the input lies in the region where
`flywheel monitor` last saw the champion's live inputs drift), and ``label-error`` for feedback
that confident learning (cleanlab's ``find_label_issues``, on the champion's probabilities — out
of sample, since feedback rows were never trained on) says is probably wrong. Exact and near
duplicates are folded, and per-class quotas keep one confusing class from filling the queue.

Drift rows are often ones the champion answers confidently (it extrapolates without doubt), so
their score alone would leave them behind the uncertain rows; yet after "input drift → back to
data" the person expects the queue to hold the drifted region. Up to half the budget is offered to
drift rows first (hardest first, under the same folding and quotas); the rest goes by score. The
nominations go to the review queue (``_queue``).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flywheel.errors import DataError, ModelError
from flywheel.loop._novelty import score_drift, score_out_of_range, score_spread
from flywheel.loop._queue import QueueItem, _enqueue, _json_value, _log_path, expire_items, list_queue
from flywheel.prediction_log import read_labels, read_predictions
from flywheel.project import Project

__all__ = ["mine"]


def _entropy(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.nansum(np.where(p > 0, p * np.log(p), 0.0), axis=1)
    return h / math.log(p.shape[1]) if p.shape[1] > 1 else h


def _fingerprint(frame: pd.DataFrame, numeric: list[str]) -> list[str]:
    """Rows that agree to 2 significant decimals after scaling count as the same (near duplicates)."""
    scaled = frame.copy()
    with np.errstate(all="ignore"):  # a logged 1e308 overflows the spread: it is still a row
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
    challenger = _challenger(project, champion)
    features = list(champion.schema.features)
    rows, keys = _unlabelled(project)
    if pool is not None:
        extra = _read_pool(pool, features)
        rows += extra[features].to_dict(orient="records")
        keys += [None] * len(extra)
    now = time.time()
    items = _nominate(project, champion, challenger, rows, keys, budget, quota_share, now) if rows else []
    items += _label_errors(project, champion, budget - len(items), now)
    _enqueue(project, items)
    return items


def _challenger(project: Project, champion: Any) -> Any:
    """The challenger, when there is one and it is not the champion itself; else ``None``."""
    from flywheel.registry import load_alias

    try:
        challenger = load_alias(project, "challenger")
    except ModelError:
        return None
    return None if challenger.model_id == champion.model_id else challenger


def _unlabelled(project: Project) -> tuple[list[dict[str, Any]], list[str | None]]:
    """(inputs, prediction ids) of logged predictions with no feedback and not yet queued."""
    feedback_ids = {f["prediction_id"] for f in read_labels(_log_path(project))}
    queued = {i.prediction_id for i in list_queue(project, None)}
    logged = [
        p
        for p in read_predictions(_log_path(project))
        if p["id"] not in feedback_ids and p["id"] not in queued
    ]
    rows = [p["input"] for p in logged]
    keys: list[str | None] = [p["id"] for p in logged]
    return rows, keys


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

    frame = _typed_rows(rows, champion.schema)
    labels, proba = predict_with_scores(champion.model, frame, champion.schema.classes)
    n = len(frame)
    score = np.zeros(n)
    reasons: list[list[str]] = [[] for _ in range(n)]
    _score_uncertainty(proba, score, reasons)
    score_out_of_range(frame, champion.schema, score, reasons)  # margin-free: any model
    if champion.schema.classes is None:
        score_spread(champion.model, frame, score, reasons)  # a tree ensemble's own doubt
    if challenger is not None:
        _score_disagreement(challenger, frame, labels, score, reasons)
    _score_weak_spots(project, frame, labels, score, reasons)
    drifted = score_drift(frame, _drift_region(project, champion), score, reasons)
    chosen = _select(frame, labels, score, reasons, budget, quota_share, champion.schema, first=drifted)
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


def _drift_region(project: Project, champion: Any) -> list[dict[str, Any]]:
    """The latest monitor run's drift region, when it watched this champion; else empty."""
    from flywheel.scoping import drift_region

    return drift_region(project, champion.model_id)


def _typed_rows(rows: list[dict[str, Any]], schema: Any) -> pd.DataFrame:
    """The rows as a frame of the schema's features: numeric columns as numbers, the rest as objects."""
    frame = pd.DataFrame(rows, columns=list(schema.features))
    for col, kind in schema.features.items():
        frame[col] = (
            pd.to_numeric(frame[col], errors="coerce") if kind == "numeric" else frame[col].astype(object)
        )
    return frame


def _score_uncertainty(proba: np.ndarray | None, score: np.ndarray, reasons: list[list[str]]) -> None:
    """Add the champion's doubt (1 - margin, plus entropy) to ``score``; low-margin, high-entropy."""
    if proba is None or proba.shape[1] <= 1:
        return
    top2 = np.sort(proba, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    entropy = _entropy(proba)
    score += (1 - margin) + entropy
    for i in range(len(score)):
        if margin[i] < 0.2:
            reasons[i].append(f"low-margin ({margin[i]:.2f})")
        if entropy[i] > 0.5:
            reasons[i].append(f"high-entropy ({entropy[i]:.2f})")


def _score_disagreement(
    challenger: Any, frame: pd.DataFrame, labels: Any, score: np.ndarray, reasons: list[list[str]]
) -> None:
    """Add 1 to ``score`` where the challenger predicts otherwise than the champion; disagreement."""
    from flywheel.evaluation import predict_with_scores

    other, _ = predict_with_scores(challenger.model, frame, challenger.schema.classes)
    differ = np.asarray(other).astype(str) != np.asarray(labels).astype(str)
    score += differ * 1.0
    for j in np.flatnonzero(differ):
        i = int(j)
        reasons[i].append(f"disagreement (challenger {challenger.name} v{challenger.version}: {other[i]})")


def _score_weak_spots(
    project: Project, frame: pd.DataFrame, labels: Any, score: np.ndarray, reasons: list[list[str]]
) -> None:
    """Add 0.5 to ``score`` per weak class or weak segment of the latest diagnosis a row falls in."""
    from flywheel.diagnosis import WeakSegment
    from flywheel.registry import project_store

    store = project_store(project, create=False)
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
    for seg in diagnosis.get("segments", []):
        if not seg.get("conditions"):
            continue
        inside = WeakSegment(**seg).contains(frame)
        score += inside * 0.5
        for j in np.flatnonzero(inside):
            reasons[int(j)].append(f"weak-segment ({seg['description']})")


@dataclass
class _Picker:
    """Rows chosen so far, with the fingerprints seen and each predicted class's count."""

    prints: list[str]
    label_text: np.ndarray
    quota: int
    seen: set[str] = field(default_factory=set)
    per_class: dict[str, int] = field(default_factory=dict)
    chosen: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)

    def walk(self, order: list[int], reasons: list[list[str]], limit: int) -> None:
        """Choose from ``order`` until ``limit`` rows are chosen in all; over-quota rows wait."""
        for i in order:
            if len(self.chosen) >= limit:
                return
            if not reasons[i] or self.prints[i] in self.seen:
                continue  # nothing makes it hard (not worth a label), or a near duplicate
            self.seen.add(self.prints[i])
            label = self.label_text[i]
            if self.per_class.get(label, 0) >= self.quota:
                self.deferred.append(i)
                continue
            self.per_class[label] = self.per_class.get(label, 0) + 1
            self.chosen.append(i)

    def filled(self, budget: int) -> list[int]:
        """The chosen rows; the quota keeps variety, spare budget still goes to the rows it held back."""
        return self.chosen + self.deferred[: max(0, budget - len(self.chosen))]


def _select(
    frame: pd.DataFrame,
    labels: Any,
    score: np.ndarray,
    reasons: list[list[str]],
    budget: int,
    quota_share: float | None,
    schema: Any,
    *,
    first: np.ndarray | None = None,
) -> list[int]:
    """Highest scores first, near duplicates folded, each predicted class held to its quota; rows
    marked in ``first`` (the drifted region) are offered up to half the budget before the rest."""
    numeric = [c for c, k in schema.features.items() if k == "numeric"]
    label_text = np.asarray(labels).astype(str)
    k = max(1, len(set(label_text)))
    quota = max(1, math.ceil(budget * (quota_share if quota_share is not None else 1.0 / k)))
    order = sorted(range(len(frame)), key=lambda i: (-score[i], i))
    picker = _Picker(_fingerprint(frame, numeric), label_text, quota)
    if first is not None and first.any():
        picker.walk([i for i in order if first[i]], reasons, math.ceil(budget / 2))
    picker.walk(order, reasons, budget)
    return picker.filled(budget)


def _label_errors(project: Project, champion: Any, room: int, now: float) -> list[QueueItem]:
    """Feedback labels that confident learning flags as probably wrong, for a second look."""
    if room <= 0 or champion.schema.classes is None:
        return []
    from flywheel.evaluation import predict_with_scores

    fb = {  # each prediction's latest label
        f["prediction_id"]: f
        for f in read_labels(_log_path(project))
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
