"""Diagnosis and forecast of a run: what limits the best model, and how many labels the target needs.

The learning curve is measured on the best model flywheel can refit; the
diagnosis reads bias and variance against the best simple baseline and human
level, the curve and any recorded history, the weakest classes and segments,
and ranks the actions they imply.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from flywheel.baselines import default_margin
from flywheel.diagnosis import (
    BiasVariance,
    Confusion,
    Curve,
    Diagnosis,
    Forecast,
    Level,
    Reliability,
    WeakClass,
    WeakSegment,
    bias_variance,
    confusion,
    forecast,
    measure_curve,
    next_actions,
    read_curve,
    reliability,
    weak_classes,
    weak_segments,
)
from flywheel.errors import FlywheelError
from flywheel.evaluation import Candidate, Evaluation, Ranking
from flywheel.execution import Executor
from flywheel.metrics import MetricRef, get_metric
from flywheel.pipeline._plan import Plan, Progress
from flywheel.pipeline._rank import Ranked

__all__ = [
    "diagnose_best",
    "forecast_labels",
]


def _level(ev: Evaluation, metric: str, split: str) -> Level | None:
    value = ev.value(metric, split)
    if value is None:
        return None
    low, high = ev.interval(metric, split) or (None, None)
    return Level(float(value), low, high)


def _human_level(plan_: Plan, declared: list[dict[str, Any]], metric: str) -> Level | None:
    """Human level on the optimized metric: measured from annotators, else declared."""
    if plan_.human is not None and plan_.human.metric == metric:
        h = plan_.human
        return Level(h.value, h.low, h.high, "measured")
    for d in declared:
        if d["kind"] == "human" and metric in d["values"]:
            low, high = d.get("intervals", {}).get(metric, (None, None))
            return Level(float(d["values"][metric]), low, high, "declared")
    return None


def _curve_model(plan_: Plan, ranking: Ranking, evaluations: list[Evaluation]) -> Candidate | None:
    """The model family the forecast follows: the best ranked model flywheel can refit."""
    fittable = {c.name: c for c in plan_.candidates if c.make is not None and c.stage == "model"}
    ok = {e.name for e in evaluations if e.ok}
    for s in ranking.standings:
        if s.name in fittable and s.name in ok:
            return fittable[s.name]
    return None


def _tolerance(margin: float, value: float | None) -> float:
    """The smallest difference worth acting on: the margin, or 1 % of the value for unbounded metrics."""
    if margin > 0:
        return margin
    return 0.01 * abs(value) if value else 0.0


def _forecast(
    plan_: Plan,
    ref: MetricRef,
    own: Evaluation | None,
    model: Candidate | None,
    executor: Executor,
    target: float | None,
    floor: float | None,
) -> tuple[Curve | None, Forecast]:
    """Measure the learning curve of ``model`` (evaluated as ``own``) and forecast the rows ``target``
    needs; ``floor`` is the dummy's score, which a curve must beat to be extrapolated."""
    spec = plan_.project.diagnosis
    split_name = "valid" if len(plan_.split.valid) else "test"
    unavailable = partial(Forecast, "unavailable", ref.name, target, cost_per_label=plan_.project.costs.label)
    if model is None:
        return None, unavailable(
            reason="no model flywheel can refit (rules and prediction files have no curve)"
        )
    valid_se = 0.0
    # The noise of the validation score of the model whose curve is measured, not the best's.
    span = own.interval(ref.name, split_name) if own is not None else None
    if span is not None:
        valid_se = (span[1] - span[0]) / (2 * 1.959963984540054)
    full = None
    if own is not None and own.ok and get_metric(ref.name).needs != "scores":
        # The run's own fit of this model on all of train is the curve's last point; with scores
        # the run may have calibrated the model's, which the curve's refits do not.
        valid = own.value(ref.name, split_name)
        full = None if valid is None else (own.value(ref.name, "train"), valid)
    try:
        curve = measure_curve(
            model,
            plan_.dataset,
            plan_.split,
            ref,
            sizes=spec.sizes,
            seeds=spec.seeds,
            executor=executor,
            budget_s=3 * plan_.project.baselines.budget_for(len(plan_.split.train)),  # like a retrain's
            valid_se=valid_se,
            full=full,
        )
    except FlywheelError as exc:
        return None, unavailable(model=model.name, reason=str(exc))
    result = forecast(
        curve, target, n_train=len(plan_.split.train), cost_per_label=plan_.project.costs.label, floor=floor
    )
    return curve, result


def forecast_labels(
    plan_: Plan, ranked: Ranked, executor: Executor, target: float | None, progress: Progress | None
) -> tuple[Curve | None, Forecast]:
    """The learning curve of the best model flywheel can refit, and the labels ``target`` needs.

    Without ``target``, the objective's own target (a weighted objective has none to forecast).
    """
    goal = target if target is not None else (None if plan_.objective.weighted else plan_.objective.target)
    evaluations, ranking = ranked.evaluations, ranked.ranking
    if progress:
        progress("learning curve", len(evaluations), len(evaluations))
    model = _curve_model(plan_, ranking, evaluations)
    own = next((e for e in evaluations if model is not None and e.name == model.name), None)
    ref = plan_.objective.primary
    split_name = ranking.selection_split
    dummy = next((e for e in evaluations if e.ok and e.stage == "constant"), None)
    floor = dummy.value(ref.name, split_name) if dummy is not None else None
    return _forecast(plan_, ref, own, model, executor, goal, floor)


def _best_simple(evaluations: list[Evaluation], ref: MetricRef, split_name: str) -> Level | None:
    """The best rung that is not a learned model: the baseline a model must beat."""
    simple = [
        e for e in evaluations if e.ok and e.stage != "model" and e.value(ref.name, split_name) is not None
    ]
    sign = 1.0 if ref.greater_is_better else -1.0
    top_simple = max(simple, key=lambda e: sign * float(e.value(ref.name, split_name) or 0.0), default=None)
    return _level(top_simple, ref.name, split_name) if top_simple is not None else None


def _bias_variance(
    best: Evaluation | None,
    ref: MetricRef,
    split_name: str,
    human: Level | None,
    baseline: Level | None,
    tol: float,
    notes: list[str],
) -> BiasVariance | None:
    """Bias and variance of the best model; a note in ``notes`` when there is none to read."""
    if best is None:
        notes.append("no best model: nothing to diagnose")
        return None
    train, valid = _level(best, ref.name, "train"), _level(best, ref.name, split_name)
    if train is None or valid is None:
        notes.append(
            f"{best.name} has no training score (a rule or a prediction file): bias and variance "
            "need a model flywheel fits"
        )
        return None
    return bias_variance(
        ref,
        train=train,
        valid=valid,
        train_dev=_level(best, ref.name, "train_dev"),
        human=human,
        best_baseline=baseline,
        tolerance=tol,
        model=best.name,
    )


def _weak_spots(
    plan_: Plan, best: Evaluation | None, ref: MetricRef, split_name: str
) -> tuple[list[WeakClass], list[WeakSegment], dict[str, Any]]:
    """The weakest classes and segments of the best model on the selection split, and what was searched."""
    ds, split = plan_.dataset, plan_.split
    classes: list[WeakClass] = []
    segments: list[WeakSegment] = []
    searched: dict[str, Any] = {}
    if best is None or split_name not in best.predictions:
        return classes, segments, searched
    rows = split.valid if split_name == "valid" else split.test
    pred, proba = best.predictions[split_name], best.scores.get(split_name)
    y = ds.y[rows]
    if ds.classes is not None:
        classes = weak_classes(ref, y, pred, proba, ds.classes, fdr=plan_.project.diagnosis.fdr)
    kinds = {c: "numeric" for c in ds.columns.numeric} | {c: "categorical" for c in ds.columns.categorical}
    segments, searched = weak_segments(
        ref,
        ds.frame.iloc[rows].reset_index(drop=True),
        kinds,
        y,
        pred,
        proba,
        ds.classes,
        min_support=plan_.project.diagnosis.min_support,
        fdr=plan_.project.diagnosis.fdr,
    )
    return classes, segments, searched


def _plots(
    plan_: Plan, best: Evaluation | None, split_name: str
) -> tuple[Confusion | None, Reliability | None]:
    """The best model's confusion matrix and reliability table on the selection split (classification)."""
    ds, split = plan_.dataset, plan_.split
    if best is None or ds.classes is None or split_name not in best.predictions:
        return None, None
    y = ds.y[split.valid if split_name == "valid" else split.test]
    pred, proba = best.predictions[split_name], best.scores.get(split_name)
    table = reliability(y, proba, ds.classes) if proba is not None else None
    return confusion(y, pred, ds.classes), table


def diagnose_best(plan_: Plan, ranked: Ranked, curve: Curve | None, forecast_: Forecast | None) -> Diagnosis:
    """Bias/variance, the curve and history read against the baselines, weak spots, ranked actions."""
    ref = plan_.objective.primary
    evaluations, ranking = ranked.evaluations, ranked.ranking
    split_name = ranking.selection_split
    by_name = {e.name: e for e in evaluations}
    best = by_name.get(ranking.best) if ranking.best else None
    notes: list[str] = []
    human = _human_level(plan_, ranked.declared, ref.name)
    baseline = _best_simple(evaluations, ref, split_name)
    valid_value = best.value(ref.name, split_name) if best is not None else None
    tol = _tolerance(plan_.project.baselines.margin or default_margin(ref), valid_value)
    bv = _bias_variance(best, ref, split_name, human, baseline, tol, notes)
    base_value = baseline.value if baseline is not None else None
    human_value = human.value if human is not None else None
    variance = (
        bv.component("variance") if bv is not None and curve is not None and bv.model == curve.model else None
    )
    findings = (
        read_curve(
            curve,
            baseline=base_value,
            human=human_value,
            tolerance=tol,
            variance=(variance.low, variance.high) if variance is not None else None,
        )
        if curve
        else []
    )
    history_findings = (
        read_curve(plan_.history, baseline=base_value, human=human_value, tolerance=tol)
        if plan_.history
        else []
    )
    classes, segments, searched = _weak_spots(plan_, best, ref, split_name)
    target_met = ranked.verdict.status == "pass" if plan_.objective.target is not None else None
    actions = next_actions(
        bv=bv,
        findings=[*findings, *history_findings],
        forecast=forecast_,
        classes=classes,
        segments=segments,
        need_ml=ranked.need_ml.answer,
        target_met=target_met,
        best_simple=ranked.need_ml.best_simple,
    )
    return Diagnosis(
        ref.name,
        best.name if best is not None else None,
        split_name,
        bv,
        curve,
        findings,
        plan_.history,
        history_findings,
        classes,
        segments,
        searched,
        actions,
        notes,
        *_plots(plan_, best, split_name),
    )
