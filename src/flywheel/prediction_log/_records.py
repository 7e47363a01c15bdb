"""What the prediction log holds and how it refuses: the file's name, the two record kinds (a
prediction, a feedback label) as the rows the writer inserts, and the errors a submission can meet.

Kept apart from the client (:mod:`flywheel.prediction_log._log`) so that the readers and the
service share these shapes without the writer's process machinery.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LOG_NAME",
    "LogFull",
    "LogWriteError",
    "PredictionRecord",
]

LOG_NAME = "predictions.db"
Ack = Callable[[BaseException | None], None]


class LogFull(Exception):
    """The writer is behind (or gone): the caller should retry later (HTTP 503, Retry-After)."""


class LogWriteError(Exception):
    """The writer could not make these records durable."""


@dataclass(frozen=True)
class PredictionRecord:
    """One logged prediction."""

    id: str
    at: float
    model: str
    version: int
    input: dict[str, Any]
    prediction: Any
    probabilities: dict[str, float] | None
    latency_ms: float

    def row(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.at,
            self.model,
            self.version,
            json.dumps(self.input, default=str),
            json.dumps(self.prediction, default=str),
            None if self.probabilities is None else json.dumps(self.probabilities),
            self.latency_ms,
        )


@dataclass(frozen=True)
class _Feedback:
    prediction_id: str
    label: str
    source: str
    at: float
    origin: str = "traffic"

    def row(self) -> tuple[Any, ...]:
        return (self.prediction_id, self.label, self.source, self.at, self.origin)
