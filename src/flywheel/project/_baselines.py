"""The baselines section: declared human level, external results and hand-written rules.

Human and external baselines take metric values as their own keys (``accuracy: 0.98``), so
their unknown keys are checked against the metric names instead of a fixed field list, and each
value against its metric's range (a declared accuracy of 1.7 is refused at load, not met after
the fitting as a failed interval).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from flywheel.metrics import get_metric, is_metric, metric_names
from flywheel.project._strict import _MODULE_FN, _hint, _one_of, _range_words, _Strict

__all__ = [
    "Baselines",
    "ExternalBaseline",
    "HumanBaseline",
]


def _metric_values(values: dict[str, Any], fields: list[str]) -> dict[str, float]:
    names = metric_names()
    out: dict[str, float] = {}
    for key, value in values.items():
        if not is_metric(str(key)):
            raise ValueError(
                f"has an unknown field {key!r}; allowed: {', '.join(fields)} or a metric "
                f"({_one_of(names)}){_hint(str(key), names + fields)}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{key} must be a number; got {value!r}")
        out[key] = _in_range(str(key), float(value))
    return out


def _in_range(name: str, value: float) -> float:
    """``value`` if it lies in the metric's range (accuracy 1.7 is a typo, not a human level)."""
    metric = get_metric(name)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}")
    if not metric.lower <= value <= metric.upper:
        raise ValueError(f"{name} must {_range_words(metric.lower, metric.upper)}; got {value:g}")
    return value


class HumanBaseline(BaseModel):
    """Declared human-level performance: metric values, who, how many rows, and where from."""

    model_config = ConfigDict(frozen=True, extra="allow")

    tier: Literal["crowd", "generalist", "expert", "expert-panel"] = "generalist"
    # How many rows the declared level was measured on: a count, so a whole number from 1 up.
    n: int | None = Field(default=None, ge=1, strict=True)
    source: str = ""
    # A file of annotators' labels (columns: id, annotator, label) from which human level is measured.
    annotators: str | None = None
    _values: dict[str, float] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _collect_metrics(self) -> HumanBaseline:
        self._values = _metric_values(dict(self.model_extra or {}), sorted(type(self).model_fields))
        if not self._values and not self.annotators:
            raise ValueError("needs at least one metric value, e.g. accuracy: 0.98, or an annotators file")
        return self

    @property
    def values(self) -> dict[str, float]:
        """The declared metric values."""
        return dict(self._values)


class ExternalBaseline(BaseModel):
    """A declared external result (a published paper, a vendor's claim)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    name: str
    source: str = ""
    caveat: str = ""
    _values: dict[str, float] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _collect_metrics(self) -> ExternalBaseline:
        self._values = _metric_values(dict(self.model_extra or {}), sorted(type(self).model_fields))
        if not self._values:
            raise ValueError("needs at least one metric value, e.g. accuracy: 0.99")
        return self

    @property
    def values(self) -> dict[str, float]:
        """The declared metric values."""
        return dict(self._values)


class Baselines(_Strict):
    """Baselines the user declares: human level, external results and hand-written rules."""

    human: HumanBaseline | None = None
    external: list[ExternalBaseline] = Field(default_factory=list)
    rules: list[str] = Field(default_factory=list)
    # Each rung gets this long to fit and predict before it is stopped and reported as too slow;
    # unset, 120 s per 100,000 training rows and at least 120 s (see budget_for).
    time_budget_s: float | None = Field(default=None, gt=0)
    # "Do we need ML?": how much better (in the optimized metric) ML must be to be worth it.
    margin: float = Field(default=0.0, ge=0)

    def budget_for(self, n_train: int) -> float:
        """Seconds a rung gets to fit and predict on ``n_train`` training rows: the declared budget,
        or 120 s per 100,000 rows (at least 120 s), since a fit's cost grows with its rows and a
        budget that a good model cannot meet on a large set would fail the rung that matters most."""
        if self.time_budget_s is not None:
            return self.time_budget_s
        return max(120.0, 120.0 * n_train / 100_000)

    @field_validator("rules")
    @classmethod
    def _rule_paths(cls, v: list[str]) -> list[str]:
        for path in v:
            if not _MODULE_FN.match(path):
                raise ValueError(f"entries must look like module:function; got {path!r}")
        return v
