"""Evidence lines and the 0..1 scores they combine into, shared by feasibility and impact.

Prioritisation templates ask people to rate impact and feasibility from 1 to 5. Here each
score is computed from evidence lines, and each line says whether it was *declared* (copied
from ``flywheel.yaml``) or *measured* (by a run: the ladder, the objective, the forecast).
A score's range is wide where the evidence is thin, so a project nobody has measured yet sits
on the portfolio chart with long bars instead of a confident guess.

It also holds the one reading of a stored run every part of the assessment shares: the best
model's standing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import fmean
from typing import Any, Literal

__all__ = [
    "Driver",
    "Evidence",
]

Source = Literal["declared", "measured"]


@dataclass(frozen=True)
class Evidence:
    """One line behind a score: what it says, where it came from, and its part of the score."""

    text: str
    source: Source
    score: float | None = None  # 0..1 for this line, None when it only informs
    low: float | None = None
    high: float | None = None
    flag: bool = False  # something a person must look at (personal data, a target above human level)
    values: dict[str, float] = field(default_factory=dict)  # every number the text states that is derived

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Driver:
    """A 0..1 score (1 = easy) with its range and the evidence lines behind it."""

    name: str
    score: float
    low: float
    high: float
    evidence: list[Evidence] = field(default_factory=list)

    @property
    def measured(self) -> bool:
        """Whether any scored line was measured."""
        return any(e.source == "measured" and e.score is not None for e in self.evidence)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "name": self.name,
            "score": self.score,
            "low": self.low,
            "high": self.high,
            "measured": self.measured,
            "evidence": [e.to_dict() for e in self.evidence],
        }


def _combine(name: str, lines: list[Evidence]) -> Driver:
    """Mean of the scored lines; with none, the unknown middle with the whole range."""
    scored = [e for e in lines if e.score is not None]
    if not scored:
        return Driver(name, 0.5, 0.0, 1.0, lines)
    score = fmean(float(e.score) for e in scored if e.score is not None)
    low = fmean(float(e.low if e.low is not None else e.score or 0.0) for e in scored)
    high = fmean(float(e.high if e.high is not None else e.score or 0.0) for e in scored)
    # Declared lines are opinions: widen the range by how much of the score rests on them.
    declared = sum(e.source == "declared" for e in scored) / len(scored)
    low, high = max(0.0, low - 0.15 * declared), min(1.0, high + 0.15 * declared)
    return Driver(name, score, min(low, score), max(high, score), lines)


def _clip(v: float) -> float:
    return float(min(1.0, max(0.0, v)))


def _best(run: dict[str, Any]) -> dict[str, Any] | None:
    """The best model's standing in the run's ranking (None when nothing was ranked best)."""
    best = run.get("ranking", {}).get("best")
    return next((s for s in run.get("ranking", {}).get("standings", []) if s["name"] == best), None)
