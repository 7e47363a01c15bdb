"""The learning curve: measuring it, reading a training history file, and what it says.

A learning curve is the optimized metric measured at geometric training-set
sizes, several seeds each, for one model family (the best candidate's;
:mod:`flywheel.diagnosis._measure` measures it). A training
history (a CSV of step, train, valid) is the same kind of curve against the
training step. :func:`read_curve` reads either against the best baseline and human
level: underfitting, overfitting, more data pays, levelled off, stop early.
The forecast of labels needed fits curve families to the measured curve
(:mod:`flywheel.diagnosis._forecast`).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from flywheel.errors import DataError
from flywheel.metrics import MetricRef, get_metric

__all__ = [
    "Curve",
    "CurvePoint",
    "Finding",
    "read_curve",
    "read_history",
]


# --- learning curves ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CurvePoint:
    """The metric at one training size and seed: on the rows trained on and on validation."""

    size: int
    seed: int
    train: float | None
    valid: float


@dataclass(frozen=True)
class Curve:
    """A learning curve: metric against training size (measured) or against step (a history file)."""

    metric: str
    greater_is_better: bool
    perfect: float
    axis: Literal["size", "step"]
    points: tuple[CurvePoint, ...]
    model: str
    split: str = "valid"
    valid_se: float = 0.0  # standard error of one point from the validation rows' own sampling
    notes: tuple[str, ...] = ()

    def error(self, values: Any) -> np.ndarray:
        """Metric values as distance to the perfect score (falls as the model improves)."""
        v = np.asarray(values, dtype=float)
        return self.perfect - v if self.greater_is_better else v - self.perfect

    def value(self, errors: Any) -> np.ndarray:
        """Errors back to metric values."""
        e = np.asarray(errors, dtype=float)
        return self.perfect - e if self.greater_is_better else self.perfect + e

    def summary(self) -> list[dict[str, Any]]:
        """Mean and spread of train and valid per size (or step)."""
        out = []
        for s in sorted({p.size for p in self.points}):
            at = [p for p in self.points if p.size == s]
            valid = np.array([p.valid for p in at])
            trains = [p.train for p in at if p.train is not None]
            out.append(
                {
                    "size": s,
                    "valid": float(valid.mean()),
                    "valid_sd": float(valid.std(ddof=1)) if len(valid) > 1 else 0.0,
                    "train": float(np.mean(trains)) if trains else None,
                    "n": len(at),
                }
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "metric": self.metric,
            "greater_is_better": self.greater_is_better,
            "axis": self.axis,
            "model": self.model,
            "split": self.split,
            "points": self.summary(),
            "notes": list(self.notes),
        }


def read_history(path: Path, ref: MetricRef, *, given: str, where: str, model: str = "history") -> Curve:
    """A training history (CSV with columns step, train, valid) as a curve against step.

    Raises
    ------
    DataError
        On a missing or unreadable file, missing columns, non-numeric values or steps that do
        not strictly increase.
    """
    name = "diagnosis.history"
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in ("step", "train", "valid") if c not in header]
            if missing:
                raise DataError(
                    f"{where}: {name} {given!r} lacks column {missing[0]!r}; expected columns "
                    f"step, train, valid (got {', '.join(header) or 'none'})"
                )
            rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    except FileNotFoundError:
        raise DataError(f"{where}: {name} {given!r} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{where}: {name} {given!r} cannot be read: {exc}") from None
    values: list[tuple[float, float, float]] = []
    for i, row in enumerate(rows, start=2):
        try:
            values.append((float(row["step"]), float(row["train"]), float(row["valid"])))
        except ValueError:
            raise DataError(
                f"{where}: {name} {given!r} line {i}: step, train and valid must be numbers; "
                f"got {row['step']!r}, {row['train']!r}, {row['valid']!r}"
            ) from None
        if not all(math.isfinite(v) for v in values[-1]):
            raise DataError(f"{where}: {name} {given!r} line {i}: values must be finite")
    if len(values) < 2:
        raise DataError(f"{where}: {name} {given!r} needs at least 2 rows; got {len(values)}")
    steps = [v[0] for v in values]
    for i in range(1, len(steps)):
        if steps[i] <= steps[i - 1]:
            raise DataError(
                f"{where}: {name} {given!r} line {i + 2}: steps must strictly increase; "
                f"got {steps[i]:g} after {steps[i - 1]:g}"
            )
    for label, col in (("train", 1), ("valid", 2)):
        bad = [v[col] for v in values if not ref.lower <= v[col] <= ref.upper]
        if bad:
            raise DataError(
                f"{where}: {name} {given!r}: {label} value {bad[0]:g} is outside {ref.name}'s range "
                f"[{ref.lower:g}, {ref.upper:g}]; the history must hold the objective's metric"
            )
    points = tuple(CurvePoint(int(s), 0, tr, va) for s, tr, va in values)
    metric = get_metric(ref.name)
    return Curve(ref.name, ref.greater_is_better, metric.best, "step", points, model, "valid")


# --- the curve against the baselines ------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One reading of a learning curve or a training history."""

    kind: Literal["underfitting", "overfitting", "more data pays", "levelled off", "stop early", "healthy"]
    text: str
    gain: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


def _better(ref: MetricRef | Curve, a: float, b: float) -> float:
    """How much better ``a`` is than ``b`` (positive = better), whatever the metric's direction."""
    return a - b if ref.greater_is_better else b - a


def read_curve(
    curve: Curve,
    *,
    baseline: float | None = None,
    human: float | None = None,
    tolerance: float = 0.01,
    variance: tuple[float | None, float | None] | None = None,
) -> list[Finding]:
    """Read a learning curve (or training history) against the best baseline and human level.

    Far below the baselines -> underfitting, work on the model; near or past them with training
    well above validation -> overfitting, regularise; validation still rising with size -> more
    data pays; a history whose validation score peaked and fell -> stop earlier. ``variance`` is
    the interval of the same model's variance (validation minus training error) from the
    bias/variance split: when it includes zero the gap is noise, and no overfitting is read.
    """
    rows = curve.summary()
    tol = max(tolerance, 1e-12)
    trend = _stop_early if curve.axis == "step" else _data_trend
    found = [
        _underfitting(curve, rows[-1], baseline, tol),
        None if _within_noise(variance) else _overfitting(curve, rows[-1], baseline, tol),
        trend(curve, rows, tol),
    ]
    out = [f for f in found if f is not None]
    if not out:
        out.append(_healthy(curve, rows[-1], human, tol))
    return out


def _within_noise(interval: tuple[float | None, float | None] | None) -> bool:
    """Whether an interval is known and includes zero."""
    return interval is not None and interval[0] is not None and interval[0] <= 0


def _underfitting(curve: Curve, last: dict[str, Any], baseline: float | None, tol: float) -> Finding | None:
    """Validation below the best baseline: the model, not the data, is what to work on."""
    valid_last = last["valid"]
    if baseline is not None and _better(curve, baseline, valid_last) > tol:
        return Finding(
            "underfitting",
            f"validation {curve.metric} {valid_last:.4g} is below the best baseline's {baseline:.4g}: "
            "work on the model (features, capacity) before collecting data",
            _better(curve, baseline, valid_last),
        )
    return None


def _overfitting(curve: Curve, last: dict[str, Any], baseline: float | None, tol: float) -> Finding | None:
    """Training well better than validation, once validation is near or past the baseline."""
    valid_last = last["valid"]
    gap = _better(curve, last["train"], valid_last) if last["train"] is not None else None
    past_baseline = baseline is None or _better(curve, valid_last, baseline) >= -tol
    if gap is not None and gap > 2 * tol and past_baseline:
        return Finding(
            "overfitting",
            f"training {curve.metric} {last['train']:.4g} is well better than validation "
            f"{valid_last:.4g} (gap {gap:.4g}): watch overfitting, regularise",
            gap,
        )
    return None


def _stop_early(curve: Curve, rows: list[dict[str, Any]], tol: float) -> Finding | None:
    """A training history whose validation score peaked and then fell."""
    values = np.array([r["valid"] for r in rows])
    signed = values if curve.greater_is_better else -values
    best_i = int(np.argmax(signed))
    drop = float(signed[best_i] - signed[-1])
    if not (best_i < len(rows) - 1 and drop > tol):
        return None
    train_gain = (
        _better(curve, rows[-1]["train"], rows[best_i]["train"]) if rows[-1]["train"] is not None else 0.0
    )
    return Finding(
        "stop early",
        f"validation {curve.metric} peaked at step {rows[best_i]['size']} "
        f"({values[best_i]:.4g}) and fell by {drop:.4g} while training went on improving "
        f"({train_gain:+.4g}): stop early",
        drop,
    )


def _data_trend(curve: Curve, rows: list[dict[str, Any]], tol: float) -> Finding | None:
    """The last doubling of a curve against size: still improving (more data pays) or levelled off."""
    if len(rows) < 2:
        return None
    a, b = rows[-2], rows[-1]
    doublings = math.log2(b["size"] / a["size"]) if b["size"] > a["size"] else 0.0
    if doublings <= 0:
        return None
    per_doubling = _better(curve, b["valid"], a["valid"]) / doublings
    noise = math.sqrt((a["valid_sd"] ** 2) / max(a["n"], 1) + (b["valid_sd"] ** 2) / max(b["n"], 1))
    if per_doubling > tol / 2 and per_doubling * doublings > 2 * noise:
        return Finding(
            "more data pays",
            f"validation {curve.metric} still improves with data: {per_doubling:+.4g} "
            f"per doubling of the training rows at {b['size']:,} rows",
            per_doubling,
        )
    if abs(per_doubling) <= tol / 2:
        return Finding(
            "levelled off",
            f"validation {curve.metric} has levelled off ({per_doubling:+.4g} per doubling): "
            "more data of the same kind will not help much",
            per_doubling,
        )
    return None


def _healthy(curve: Curve, last: dict[str, Any], human: float | None, tol: float) -> Finding:
    """Nothing else found: at human level if it is known and reached, otherwise nothing stands out."""
    valid_last = last["valid"]
    if human is not None and _better(curve, valid_last, human) >= -tol:
        return Finding(
            "healthy", f"validation {curve.metric} {valid_last:.4g} is at human level ({human:.4g})"
        )
    return Finding("healthy", "nothing stands out on the curve")
