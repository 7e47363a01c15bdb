"""What the prediction log holds and how it refuses: the file's name, the record kinds (a
prediction, a feedback label, a shadow answer, an outcome) as the rows the writer inserts, and the
errors a submission can meet.

Kept apart from the client (:mod:`flywheel.prediction_log._log`) so that the readers and the
service share these shapes without the writer's process machinery.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "LOG_NAME",
    "LogFull",
    "LogWriteError",
    "PredictionRecord",
    "ShadowRecord",
    "new_ids",
]

LOG_NAME = "predictions.db"
Ack = Callable[[BaseException | None], None]


def new_ids(count: int) -> list[str]:
    """``count`` new prediction ids: 32 hex digits, the milliseconds since the epoch first (48 bits),
    then 80 random bits.

    Why time first: the id is the log's primary key, and a random id (uuid4) lands each row on a
    random page of the index, so every commit rewrites pages all over it — 4.9–6.3 KB written per
    logged row of about 0.5 KB, measured under load. Ids that grow with time append at the index's
    right edge (1.1–1.5 KB per row). They stay unguessable (80 random bits) and unique, and they
    say no more than the row's own ``at``.
    """
    prefix = f"{time.time_ns() // 1_000_000 & (1 << 48) - 1:012x}"
    return [prefix + secrets.token_hex(10) for _ in range(count)]


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

    kind: ClassVar[str] = "p"  # the writer's name for the table it goes to

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
class ShadowRecord:
    """The answer of a model that ran on a logged request but was not returned to the caller.

    ``prediction_id`` is the id of the prediction that was returned (one shadow row per model and
    version that ran beside it), so the two answers to the same input can be compared once its
    label or its outcome is known. ``latency_ms`` is the shadow model's own time, from the moment it
    was asked to its answer.
    """

    prediction_id: str
    model: str
    version: int
    prediction: Any
    probabilities: dict[str, float] | None
    latency_ms: float

    kind: ClassVar[str] = "s"

    def row(self) -> tuple[Any, ...]:
        return (
            self.prediction_id,
            self.model,
            self.version,
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

    kind: ClassVar[str] = "f"

    def row(self) -> tuple[Any, ...]:
        return (self.prediction_id, self.label, self.source, self.at, self.origin)


@dataclass(frozen=True)
class _Outcome:
    """A downstream event (a click, a refund) tied to a logged prediction, with its value."""

    prediction_id: str
    name: str
    value: float
    at: float

    kind: ClassVar[str] = "o"

    def row(self) -> tuple[Any, ...]:
        return (self.prediction_id, self.name, self.value, self.at)


Record = PredictionRecord | ShadowRecord | _Feedback | _Outcome
