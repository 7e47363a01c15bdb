"""Ranking: the objective over the evaluations, the ladder table, whether ML is needed, the verdict.

A weighted objective first gets its composite score (normalised to the human
level where known) and a sensitivity of the ranking to its weights; the best
model is then compared with every other on the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flywheel.baselines import HumanLevel, NeedML, declared_baselines, default_margin, ladder_table, need_ml
from flywheel.evaluation import (
    Evaluation,
    Ranking,
    Verdict,
    compare_evaluations,
    distinguish,
    judge,
    rank,
    weight_sensitivity,
    with_composite,
)
from flywheel.metrics import is_metric
from flywheel.pipeline._plan import Plan

__all__ = [
    "Ranked",
    "rank_evaluations",
]


@dataclass(frozen=True, eq=False)
class Ranked:
    """The evaluations ranked and judged, with what the baselines say."""

    evaluations: list[Evaluation]  # with the composite score when the objective is weighted
    declared: list[dict[str, Any]]
    sensitivity: list[dict[str, Any]]
    ranking: Ranking
    need_ml: NeedML
    ladder: list[dict[str, Any]]
    notes: list[str]
    verdict: Verdict


def rank_evaluations(plan_: Plan, evaluations: list[Evaluation]) -> Ranked:
    """Rank on the valid split (test when there is none) and judge the best against the objective."""
    proj = plan_.project
    selection = "valid" if len(plan_.split.valid) else "test"
    declared, declared_notes = declared_baselines(proj, plan_.dataset.task)
    sensitivity: list[dict[str, Any]] = []
    if plan_.objective.weighted:
        ceilings = _ceilings(declared, plan_.human)
        evaluations = with_composite(evaluations, plan_.objective, ceilings)
        sensitivity = weight_sensitivity(evaluations, plan_.objective, ceilings, selection)
    ranking = _with_comparisons(rank(evaluations, plan_.objective, selection), evaluations, plan_)
    primary = plan_.objective.primary
    margin = proj.baselines.margin if proj.baselines.margin else default_margin(primary)
    verdict_ml = need_ml(evaluations, plan_.dataset, plan_.split, primary, selection, margin)
    human = plan_.human.to_dict() if plan_.human else None
    table = ladder_table(evaluations, plan_.objective.optimize, declared, human)
    notes = [] if selection == "valid" else ["no valid split: models are ranked on test"]
    notes += declared_notes
    verdict = judge(ranking, plan_.objective)
    return Ranked(evaluations, declared, sensitivity, ranking, verdict_ml, table, notes, verdict)


def _ceilings(declared: list[dict[str, Any]], human: HumanLevel | None) -> dict[str, float]:
    """Human level per metric, where known: the ceiling a weighted objective normalises to."""
    out = {m: v for d in declared if d["kind"] == "human" for m, v in d["values"].items()}
    if human is not None:
        out[human.metric] = human.value
    return out


def _with_comparisons(ranking: Ranking, evaluations: list[Evaluation], plan_: Plan) -> Ranking:
    """Compare the best model with every other ranked model on the same rows."""
    if ranking.best is None or not is_metric(plan_.objective.optimize.name):
        return ranking  # a weighted objective has no paired test of its own
    by_name = {e.name: e for e in evaluations}
    best = by_name[ranking.best]
    comparisons = {}
    for standing in ranking.standings:
        if standing.name == ranking.best:
            continue
        comp = compare_evaluations(
            best,
            by_name[standing.name],
            plan_.dataset,
            plan_.split,
            ranking.selection_split,
            plan_.objective.optimize.name,
        )
        if comp is not None:
            comparisons[standing.name] = comp
    return distinguish(ranking, comparisons)
