"""The monitor's running totals: the prediction log counted into day-by-day aggregates, read once.

A log of a million predictions should not be parsed again every time someone asks how production
looks. Everything the drift and no-label checks need adds up — counts of inputs in the reference's
bins, predicted-class counts, score and latency histograms, the expected confusion matrix and its
covariance (for the confidence-based estimate) — so the monitor keeps them per UTC day in
``.flywheel/monitor/state.json`` with the last log row it read, and each run reads only the rows
logged since. Weeks are sums of days. A bounded sample of each day's inputs (reservoir sampling,
seeded, so the same log gives the same sample) feeds the domain classifier and the drift region.

The totals are tied to the reference's bins: when the project's data changes (another
fingerprint) the bins change and the log is read again from its first row.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from flywheel.errors import DataError
from flywheel.monitoring._reference import Reference, bin_codes
from flywheel.prediction_log import LogLocation, PostgresLog, connect

__all__ = [
    "CHUNK",
    "Day",
    "LATENCY_EDGES",
    "ModelDay",
    "RESERVOIR",
    "State",
    "latency_bins",
    "load_state",
    "reference_key",
    "save_state",
    "update_state",
]

CHUNK = 50_000  # log rows parsed at a time: memory stays flat whatever the log's length
RESERVOIR = 2_000  # logged inputs kept per day for the domain classifier and the drift region
_UNSEEN_KEPT = 50  # categorical values unseen in training, counted by name per feature and day
# Latency in twenty log-spaced bins per decade from 0.01 ms to 100 s (each bin 12 % wide).
LATENCY_EDGES = np.logspace(-2, 5, 141)
_VERSION = 1


def latency_bins(values: np.ndarray) -> np.ndarray:
    """Counts of latencies (ms) in the :data:`LATENCY_EDGES` bins."""
    codes = np.searchsorted(LATENCY_EDGES, values[np.isfinite(values)], side="left")
    return np.bincount(codes, minlength=len(LATENCY_EDGES) + 1)


@dataclass
class ModelDay:
    """One answering model's predictions on one day."""

    n: int
    classes: np.ndarray | None  # predicted-class counts (classification)
    scores: np.ndarray  # top probability (classification) or predicted value in the score bins
    latency: np.ndarray  # single-row requests' latencies in LATENCY_EDGES bins
    with_scores: int = 0  # rows whose class probabilities were logged
    expected: np.ndarray | None = None  # K x K: sum of P(true = k) over rows predicted j, at [k, j]
    covariance: np.ndarray | None = None  # K x K x K: per predicted class j, sum of diag(p) - p pᵀ

    def add(self, other: ModelDay) -> ModelDay:
        """The sum of two days' totals (a week is a sum of days)."""

        def plus(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
            return None if a is None or b is None else a + b

        return ModelDay(
            self.n + other.n,
            plus(self.classes, other.classes),
            self.scores + other.scores,
            self.latency + other.latency,
            self.with_scores + other.with_scores,
            plus(self.expected, other.expected),
            plus(self.covariance, other.covariance),
        )

    def to_dict(self) -> dict[str, Any]:
        def plain(a: np.ndarray | None) -> Any:
            return None if a is None else a.tolist()

        return {
            "n": self.n,
            "classes": plain(self.classes),
            "scores": plain(self.scores),
            "latency": plain(self.latency),
            "with_scores": self.with_scores,
            "expected": plain(self.expected),
            "covariance": plain(self.covariance),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelDay:
        def arr(v: Any, dtype: Any = np.int64) -> np.ndarray | None:
            return None if v is None else np.asarray(v, dtype=dtype)

        return cls(
            int(d["n"]),
            arr(d["classes"]),
            np.asarray(d["scores"], dtype=np.int64),
            np.asarray(d["latency"], dtype=np.int64),
            int(d["with_scores"]),
            arr(d["expected"], float),
            arr(d["covariance"], float),
        )


@dataclass
class Day:
    """One UTC day of logged inputs (every answering model together) and each model's answers."""

    n: int = 0
    features: dict[str, np.ndarray] = field(default_factory=dict)
    unseen: dict[str, dict[str, int]] = field(default_factory=dict)
    models: dict[str, ModelDay] = field(default_factory=dict)  # "name:version" -> its answers
    sample: list[dict[str, Any]] = field(default_factory=list)  # a reservoir of logged inputs
    offered: int = 0  # rows offered to the reservoir so far

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "features": {f: c.tolist() for f, c in self.features.items()},
            "unseen": self.unseen,
            "models": {k: m.to_dict() for k, m in self.models.items()},
            "sample": self.sample,
            "offered": self.offered,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Day:
        return cls(
            int(d["n"]),
            {f: np.asarray(c, dtype=np.int64) for f, c in d["features"].items()},
            {f: {k: int(v) for k, v in u.items()} for f, u in d["unseen"].items()},
            {k: ModelDay.from_dict(m) for k, m in d["models"].items()},
            list(d["sample"]),
            int(d["offered"]),
        )


@dataclass
class State:
    """The totals, the reference they were counted against, and the last log row read."""

    key: str
    rowid: int = 0
    days: dict[str, Day] = field(default_factory=dict)
    last_id: str | None = None  # the prediction id at ``rowid``: a renumbered log is noticed
    read_now: int = 0  # rows read by this run (not stored)
    # Results that depend only on a window's logged inputs (the domain classifier's), by window and
    # row count: a past day that gained no rows is not judged again.
    cache: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": _VERSION,
            "key": self.key,
            "rowid": self.rowid,
            "last_id": self.last_id,
            "days": {d: day.to_dict() for d, day in self.days.items()},
            "cache": self.cache,
        }


def reference_key(ref: Reference) -> str:
    """What the totals depend on: the data's fingerprint and every bin."""
    blob = json.dumps(
        {
            "fingerprint": ref.fingerprint,
            "bins": {f: b.to_dict() for f, b in ref.binnings.items()},
            "scores": ref.score_binning.to_dict(),
            "classes": [str(c) for c in ref.classes or []],
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_state(path: Path, key: str) -> State:
    """The stored totals when they were counted against the same reference; else empty ones."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("version") != _VERSION or raw.get("key") != key:
            return State(key)
        days = {d: Day.from_dict(v) for d, v in raw["days"].items()}
        last = raw.get("last_id")
        return State(
            key, int(raw["rowid"]), days, None if last is None else str(last), cache=dict(raw["cache"])
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return State(key)  # absent or unreadable: count again from the log's first row


def save_state(path: Path, state: State) -> None:
    """Write the totals atomically (a reader never sees half a file)."""
    from flywheel.evaluation import write_atomically

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(state.to_dict(), separators=(",", ":")).encode())


def _day_of(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).date().isoformat()


def update_state(state: State, log: LogLocation, ref: Reference) -> State:
    """Count the log rows written since ``state`` was saved into it (all of them the first time).

    ``rowid`` is the log's own numbering of its rows: SQLite's rowid, PostgreSQL's ``seq`` (which
    follows commit order, so rows read after it never include one that commits later below it)."""
    conn: Any = (
        connect(log)
        if isinstance(log, PostgresLog)
        else sqlite3.connect(f"file:{log}?mode=ro", uri=True, timeout=30)
    )
    try:
        state = _still_valid(conn, state)
        while True:
            rows = conn.execute(
                "SELECT rowid, at, model, version, input, prediction, probabilities, latency_ms, id "
                "FROM predictions WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (state.rowid, CHUNK),
            ).fetchall()
            if not rows:
                break
            _count(state, rows, ref)
            state.rowid = int(rows[-1][0])
            state.last_id = str(rows[-1][-1])
            state.read_now += len(rows)
    finally:
        conn.close()
    return state


def _parse(texts: list[str]) -> list[Any]:
    """Many JSON texts in one call of the C parser (a list of one text each costs three times more)."""
    return json.loads("[" + ",".join(texts) + "]") if texts else []


def _columns(rows: list[dict[str, Any]], features: list[str], numeric: bool) -> dict[str, Any]:
    """Each feature's values across ``rows``. When every row has the same keys in the same order (as
    the service logs them) and every feature is ``numeric``, one array conversion in C gives every
    column (never for categories: "1" must stay "1", not become 1.0); else the rows are transposed
    with ``zip``, or each value is looked up."""
    if rows:
        keys = list(rows[0])
        if all(list(r) == keys for r in rows):
            if numeric and set(features) <= set(keys):
                try:
                    matrix = np.array([list(r.values()) for r in rows], dtype=float)
                    return {f: matrix[:, keys.index(f)] for f in features}
                except (TypeError, ValueError):
                    pass  # text or categories among the values
            transposed = dict(
                zip(keys, (list(c) for c in zip(*(r.values() for r in rows), strict=True)), strict=True)
            )
            return {f: transposed.get(f, [None] * len(rows)) for f in features}
    return {f: [r.get(f) for r in rows] for f in features}


def _still_valid(conn: Any, state: State) -> State:
    """``state`` when the log still numbers its rows as when it was read; else the totals of the days
    the log no longer holds (retention deleted their rows, their counts still stand), to count the
    rest again. A log emptied and refilled, replaced, or renumbered (VACUUM) is noticed here."""
    if state.rowid == 0:
        return state
    row = conn.execute("SELECT id FROM predictions WHERE rowid = ?", (state.rowid,)).fetchone()
    top = conn.execute("SELECT MAX(rowid) FROM predictions").fetchone()[0] or 0
    if (row is not None and row[0] == state.last_id) or (row is None and top > state.rowid):
        return state  # the same rows (or older ones deleted by retention) and new ones after
    first = conn.execute("SELECT MIN(at) FROM predictions").fetchone()[0]
    keep = dict(state.days) if first is None else {d: v for d, v in state.days.items() if d < _day_of(first)}
    return State(state.key, days=keep, cache=state.cache)


def _count(state: State, rows: list[tuple[Any, ...]], ref: Reference) -> None:
    """Add a chunk of log rows to the days they were logged on."""
    day_numbers = np.floor(np.asarray([r[1] for r in rows], dtype=float) / 86_400).astype(np.int64)
    for number in np.unique(day_numbers):
        where = np.flatnonzero(day_numbers == number)
        chunk = rows if len(where) == len(rows) else [rows[i] for i in where]
        day_name = _day_of(float(number) * 86_400)
        day = state.days.setdefault(day_name, Day())
        try:
            inputs = _parse([r[4] for r in chunk])
        except ValueError as exc:
            raise DataError(
                f"the prediction log holds an input that is not JSON ({exc}); nothing was changed"
            ) from None
        day.n += len(chunk)
        numeric = all(b.kind == "numeric" for b in ref.binnings.values())
        columns = _columns(inputs, list(ref.binnings), numeric)
        for feature, binning in ref.binnings.items():
            values = columns[feature]
            counts = bin_codes(binning, values)
            day.features[feature] = day.features.get(feature, np.zeros_like(counts)) + counts
            if binning.kind == "categorical" and counts[len(binning.values)]:
                _count_unseen(day, feature, binning.values, values)
        _sample(day, day_name, inputs)
        by_model: dict[str, list[tuple[Any, ...]]] = {}
        for r in chunk:
            by_model.setdefault(f"{r[2]}:{r[3]}", []).append(r)
        for key, answered in by_model.items():
            fresh = _model_day(answered, ref)
            day.models[key] = day.models[key].add(fresh) if key in day.models else fresh


def _count_unseen(day: Day, feature: str, known: list[str], values: list[Any]) -> None:
    seen = set(known)
    tally = day.unseen.setdefault(feature, {})
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        s = str(v)
        if s not in seen and (s in tally or len(tally) < _UNSEEN_KEPT):
            tally[s] = tally.get(s, 0) + 1


def _sample(day: Day, day_name: str, inputs: list[dict[str, Any]]) -> None:
    """Reservoir sampling (Algorithm R), seeded by the day and the rows offered before."""
    start = day.offered
    day.offered += len(inputs)
    take = max(0, min(len(inputs), RESERVOIR - start))
    day.sample.extend(inputs[:take])
    if take == len(inputs):
        return
    seed = int(hashlib.sha256(f"{day_name}:{start}".encode()).hexdigest()[:12], 16)
    rng = np.random.default_rng(seed)
    positions = np.arange(start + take, start + len(inputs))  # each row's 0-based place in the day
    slots = np.floor(rng.random(len(positions)) * (positions + 1)).astype(np.int64)
    for i in np.flatnonzero(slots < RESERVOIR):
        day.sample[int(slots[i])] = inputs[take + i]


def _model_day(rows: list[tuple[Any, ...]], ref: Reference) -> ModelDay:
    """One model's answers in a chunk: class counts, scores, latency, expected confusion."""
    # Single-row requests only, as the latency constraints are (the time to predict one row): the
    # rows of one batch are logged together, with one time and one latency.
    at = np.asarray([r[1] for r in rows], dtype=float)
    lat = np.asarray([r[7] for r in rows], dtype=float)
    starts = np.flatnonzero(np.r_[True, (at[1:] != at[:-1]) | (lat[1:] != lat[:-1])])
    lengths = np.diff(np.r_[starts, len(rows)])
    latency = latency_bins(lat[starts[lengths == 1]])
    predictions = _parse([r[5] for r in rows])
    if ref.classes is None:
        values = np.asarray([_number(p) for p in predictions], dtype=float)
        scores = bin_codes(ref.score_binning, values.tolist())
        return ModelDay(len(rows), None, scores, latency)
    k = len(ref.classes)
    index = {str(c): i for i, c in enumerate(ref.classes)}
    known = {p: index.get(str(p), -1) for p in set(map(_hashable, predictions))}
    codes = np.fromiter((known[_hashable(p)] for p in predictions), dtype=np.int64, count=len(predictions))
    classes = np.bincount(codes[codes >= 0], minlength=k)
    keys = [str(c) for c in ref.classes]
    have = [i for i, r in enumerate(rows) if r[6] is not None]
    expected = np.zeros((k, k))
    covariance = np.zeros((k, k, k))
    top: list[float] = []
    if have:
        given = _parse([rows[i][6] for i in have])
        if all(list(p) == keys for p in given):  # as the service logs them: every class, in order
            proba = np.asarray([list(p.values()) for p in given], dtype=float)
        else:
            proba = np.asarray([[float(p.get(c, 0.0)) for c in keys] for p in given], dtype=float)
        pred = codes[have]
        top = proba.max(axis=1).tolist()
        for j in np.unique(pred[pred >= 0]):
            pj = proba[pred == j]
            total = pj.sum(axis=0)
            expected[:, j] += total
            covariance[j] += np.diag(total) - pj.T @ pj
    scores = bin_codes(ref.score_binning, top)
    return ModelDay(len(rows), classes, scores, latency, len(have), expected, covariance)


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
