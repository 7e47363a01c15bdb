"""The archetype's questions and advice: what each kind of ML system must answer, answered from
evidence where the project file or a run has it.

The three archetypes (software 2.0, human in the loop, autonomous) each raise their own
questions; an answer says whether it was declared, measured, or is still open.
"""

from __future__ import annotations

from typing import Any

from flywheel.project import Project

__all__ = [
    "ARCHETYPE_QUESTIONS",
]

ARCHETYPE_QUESTIONS: dict[str, list[str]] = {
    "software-2.0": [
        "Do the models truly improve performance?",
        "Does that create business value?",
        "Does it feed a data flywheel?",
    ],
    "human-in-the-loop": [
        "How good must the system be to be useful?",
        "How will enough data be collected?",
    ],
    "autonomous": [
        "What failure rate is acceptable?",
        "How can it be guaranteed not to be exceeded?",
        "How cheaply can data from the system be labelled?",
    ],
}

_ADVICE = {
    "software-2.0": "Adding a data flywheel (log predictions, collect feedback, retrain) raises impact.",
    "human-in-the-loop": "Narrowing the domain or raising the share a person reviews makes it more feasible.",
    "autonomous": (
        "Adding a human in the loop, or narrowing the domain, makes an autonomous system more feasible."
    ),
}


def _questions(
    project: Project, run: dict[str, Any] | None, artifacts: dict[str, Any]
) -> list[dict[str, str]]:
    need = (run or {}).get("need_ml") or {}
    verdict = (run or {}).get("verdict") or {}
    fc = (run or {}).get("forecast") or {}
    answers: dict[str, tuple[str, str]] = {}
    if need.get("answer") in ("yes", "no"):
        answers["Do the models truly improve performance?"] = (need["answer"], need["reason"])
    if project.impact.value_per_year:
        answers["Does that create business value?"] = (
            "declared",
            f"value {project.impact.value_per_year:,.0f} a year (declared)",
        )
    if artifacts.get("predictions_logged") or artifacts.get("feedback"):
        answers["Does it feed a data flywheel?"] = (
            "yes",
            f"{artifacts.get('predictions_logged', 0):,} predictions logged, "
            f"{artifacts.get('feedback', 0):,} labels fed back",
        )
    if project.objective.target is not None:
        answers["How good must the system be to be useful?"] = (
            "declared",
            f"{project.objective.optimize or 'objective'} {project.objective.target:g} (objective.target)",
        )
        answers["What failure rate is acceptable?"] = answers["How good must the system be to be useful?"]
    if fc.get("status") in ("reachable", "met", "unreachable"):
        answers["How will enough data be collected?"] = ("measured", fc.get("text", ""))
    if verdict.get("status") == "pass":
        answers["How can it be guaranteed not to be exceeded?"] = (
            "measured",
            f"the whole test interval clears the target: {verdict['reason']}; "
            "keep it with `flywheel gate` in CI",
        )
    if project.costs.label is not None:
        answers["How cheaply can data from the system be labelled?"] = (
            "declared",
            f"{project.costs.label:g} per label (costs.label)",
        )
    out = []
    for q in ARCHETYPE_QUESTIONS[project.archetype]:
        status, text = answers.get(q, ("open", "no evidence yet"))
        out.append({"question": q, "status": status, "answer": text})
    return out
