"""The feasibility checklist: each item done, open, or contradicted by evidence.

The items follow a project's planning: do we need ML at all, agreed success criteria, ethics,
the literature, a labelled benchmark, a rule-based MVP, and — after the ladder ran — whether ML
is still needed. Each says whether its evidence was declared or measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from flywheel.project import Project
from flywheel.scoping._evidence import Source, _best

__all__ = [
    "CheckItem",
]


@dataclass(frozen=True)
class CheckItem:
    """One item of the feasibility checklist: done, open, or contradicted by evidence."""

    item: str
    status: Literal["done", "open", "contradicted"]
    evidence: str
    source: Source
    values: dict[str, float] = field(default_factory=dict)  # the derived numbers the evidence states

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


def _checklist(project: Project, run: dict[str, Any] | None) -> list[CheckItem]:
    """The checklist's items in order, from the project file and the run's need-ML verdict."""
    need = (run or {}).get("need_ml") or {}
    return [
        _need_ml_item(need),
        *_declared_items(project),
        _benchmark_item(project, run),
        _rules_item(project, run),
        _still_sure_item(need),
    ]


def _need_ml_item(need: dict[str, Any]) -> CheckItem:
    """Whether ML is needed at all, as the ladder answered it."""
    answer = need.get("answer")
    if answer == "yes":
        return CheckItem("need ML at all", "done", need["reason"], "measured")
    if answer == "no":
        return CheckItem("need ML at all", "contradicted", need["reason"], "measured")
    return CheckItem("need ML at all", "open", need.get("reason", "the ladder has not run"), "measured")


def _declared_items(project: Project) -> list[CheckItem]:
    """Success criteria, ethics and the literature: what the project file says."""
    target = project.objective.target
    ethics = project.ethics
    external = project.baselines.external
    return [
        CheckItem(
            "success criteria agreed",
            "done" if target is not None else "open",
            f"objective target {target:g}" if target is not None else "no objective.target",
            "declared",
        ),
        CheckItem(
            "ethics considered",
            "done" if ethics else "open",
            ethics or "no note (ethics: in flywheel.yaml)",
            "declared",
        ),
        CheckItem(
            "literature reviewed",
            "done" if external else "open",
            f"{len(external)} external baseline(s): " + ", ".join(e.name for e in external)
            if external
            else "no external baselines (baselines.external)",
            "declared",
        ),
    ]


def _benchmark_item(project: Project, run: dict[str, Any] | None) -> CheckItem:
    """A labelled benchmark: enough test rows for an interval narrow against the margin."""
    best = _best(run) if run else None
    n_test = (run or {}).get("split", {}).get("test")
    if best is None or not best.get("test_interval") or not n_test:
        return CheckItem("labelled benchmark built", "open", "no test evaluation stored yet", "measured")
    low, high = best["test_interval"]
    width = high - low
    margin = project.baselines.margin or 0.01
    enough = n_test >= 100 and width <= 10 * margin
    return CheckItem(
        "labelled benchmark built",
        "done" if enough else "open",
        f"{n_test:,} test rows give a ±{width / 2:.3g} interval on "
        f"{project.objective.optimize or 'the metric'}",
        "measured",
        {"half_width": width / 2},
    )


def _rules_item(project: Project, run: dict[str, Any] | None) -> CheckItem:
    """A rule-based MVP: the project's rules rung (measured once a run has it)."""
    rules = project.baselines.rules
    return CheckItem(
        "rule-based MVP built",
        "done" if rules else "open",
        f"rules rung: {', '.join(rules)}"
        if rules
        else "no baselines.rules (the one-feature rung is the nearest)",
        "measured" if rules and run else "declared",
    )


def _still_sure_item(need: dict[str, Any]) -> CheckItem:
    """Whether ML is still needed after the ladder ran."""
    answer = need.get("answer")
    if answer == "yes":
        return CheckItem(
            "still sure ML is needed", "done", "after the ladder ran: " + need["reason"], "measured"
        )
    if answer == "no":
        return CheckItem("still sure ML is needed", "contradicted", need["reason"], "measured")
    return CheckItem("still sure ML is needed", "open", "no verdict from the ladder yet", "measured")
