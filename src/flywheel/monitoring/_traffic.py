"""Labelled traffic: the predictions whose label came back with the traffic, every model's answer to
them (the served one and the shadow), the paired comparison of the champion with the others under
the gate's rules, and whether correctness moves the downstream outcomes."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np

from flywheel.errors import FlywheelError
from flywheel.monitoring._common import (
    MonitorPolicy,
)
from flywheel.monitoring._quality import (
    live_quality,
    outcome_effect,
    versus,
)
from flywheel.monitoring._reference import Reference, lab_estimate
from flywheel.project import Project

__all__: list[str] = []


def _labelled(log: Any, ref: Reference) -> tuple[list[dict[str, Any]], int]:
    """Predictions labelled by traffic feedback (their latest traffic label: a later review label
    comes from the queue's chosen sample): their day, true value, and every model's answer; and how
    many labels name a class the champion does not know (left out, and said)."""
    from flywheel.prediction_log import read_labels, read_predictions, read_shadow

    truth: dict[str, str] = {}
    for lab in read_labels(log):
        traffic = [h for h in lab["history"] if h["origin"] == "traffic"]
        if traffic:
            truth[lab["prediction_id"]] = traffic[-1]["label"]
    if not truth:
        return [], 0
    by_id: dict[str, dict[str, Any]] = {}
    keys = None if ref.classes is None else [str(c) for c in ref.classes]
    unknown = 0
    for p in read_predictions(log, ids=list(truth)):
        y = _truth(truth[p["id"]], ref)
        if y is None:
            unknown += 1
            continue
        by_id[p["id"]] = {
            "id": p["id"],
            "day": datetime.fromtimestamp(p["at"], UTC).date().isoformat(),
            "y": y,
            "answers": {f"{p['model']}:{p['version']}": _answer(p, keys)},
        }
    for s in read_shadow(log, ids=list(by_id)):
        by_id[s["prediction_id"]]["answers"].setdefault(f"{s['model']}:{s['version']}", _answer(s, keys))
    return list(by_id.values()), unknown


def _truth(label: str, ref: Reference) -> Any:
    if ref.classes is None:
        try:
            value = float(label)
        except ValueError:
            return None
        return value if math.isfinite(value) else None
    for c in ref.classes:
        if str(c) == label:
            return c
    return None  # a class the champion does not know (an --allow-new-classes label)


def _answer(p: dict[str, Any], keys: list[str] | None) -> tuple[Any, list[float] | None]:
    proba = p.get("probabilities")
    scores = None if keys is None or not proba else [float(proba.get(k, 0.0)) for k in keys]
    return p["prediction"], scores


def _quality_of(rows: list[dict[str, Any]], key: str, metric: str, ref: Reference) -> dict[str, Any]:
    mine = [r for r in rows if key in r["answers"]]
    y = [r["y"] for r in mine]
    pred = [_as_class(r["answers"][key][0], ref) for r in mine]
    scores = [r["answers"][key][1] for r in mine]
    proba = np.asarray(scores, dtype=float) if mine and all(s is not None for s in scores) else None
    return live_quality(y, pred, proba, metric, ref.classes) | {"proba": proba, "y": y, "pred": pred}


def _as_class(value: Any, ref: Reference) -> Any:
    if ref.classes is None:
        return float(value)
    for c in ref.classes:
        if str(c) == str(value):
            return c
    return value


def _paired(
    project: Project,
    rows: list[dict[str, Any]],
    champ_key: str,
    metric: str,
    ref: Reference,
    ds: Any,
    split: Any,
    objective: Any = None,
) -> list[dict[str, Any]]:
    """Every other model that answered the champion's labelled requests, judged with the gate's rules."""
    others = sorted({k for r in rows for k in r["answers"] if k != champ_key and champ_key in r["answers"]})
    return [_pair(project, rows, key, champ_key, metric, ref, ds, split, objective) for key in others]


def _pair(
    project: Project,
    rows: list[dict[str, Any]],
    key: str,
    champ_key: str,
    metric: str,
    ref: Reference,
    ds: Any,
    split: Any,
    objective: Any = None,
) -> dict[str, Any]:
    """``key``'s answers against the champion's on the rows both answered: the gate's verdict (the
    objective's quality constraints checked on those rows too) and its live value against its lab one."""
    from flywheel.evaluation import Standing
    from flywheel.metrics import get_metric
    from flywheel.registry import judge_candidate

    both = [r for r in rows if key in r["answers"] and champ_key in r["answers"]]
    name, version = key.rsplit(":", 1)
    mine = _quality_of(both, key, metric, ref)
    theirs = _quality_of(both, champ_key, metric, ref)
    out: dict[str, Any] = {"model": name, "version": int(version), "rows": len(both), "live": _strip(mine)}
    lab = _lab_of(project, name, int(version), metric, ds, split)
    out["lab"] = lab
    if lab is not None and lab["value"] is not None and mine["value"] is not None:
        gap = versus(
            mine["value"],
            mine["low"],
            mine["high"],
            lab["value"],
            lab["interval"][0] if lab["interval"] else None,
            lab["interval"][1] if lab["interval"] else None,
            ref.greater_is_better,
        )
        out["versus_lab"] = gap
    needs_scores = get_metric(metric).needs == "scores"
    a = mine["proba"] if needs_scores else np.asarray(mine["pred"], dtype=object if ref.classes else float)
    b = (
        theirs["proba"]
        if needs_scores
        else np.asarray(theirs["pred"], dtype=object if ref.classes else float)
    )
    if len(both) < 2 or a is None or b is None:
        out["gate"] = None
        return out
    constraints = [] if objective is None else _live_constraints(both, key, ref, objective)
    statuses = {c["status"] for c in constraints}
    feasible = False if "broken" in statuses else None if "undecided" in statuses else True
    standing = Standing(name, "model", mine["value"], None, feasible)
    verdict = judge_candidate(
        f"{name} v{version}",
        f"champion {champ_key.replace(':', ' v')}",
        np.asarray(mine["y"], dtype=object if ref.classes else float),
        a,
        b,
        metric=metric,
        policy=project.gate,
        standing=standing,
        classes=None if ref.classes is None else np.asarray(ref.classes, dtype=object),
        run_id="traffic",
        rows="traffic-labelled",
        notes=[f"paired on {len(both):,} traffic-labelled requests answered by both"]
        + [c["sentence"] for c in constraints],
    )
    out["gate"] = verdict.to_dict()
    return out


def _live_constraints(
    rows: list[dict[str, Any]], key: str, ref: Reference, objective: Any
) -> list[dict[str, Any]]:
    """The objective's quality constraints on the labelled traffic: met, broken or undecided (the
    limit inside the interval), as the lab judges them."""
    from flywheel.metrics import is_metric

    out = []
    for name, bound in objective.constraints.items():
        if not is_metric(name) or name == ref.metric:
            continue
        q = _quality_of(rows, key, name, ref)
        value, low, high = q["value"], q["low"], q["high"]
        if value is None or low is None or high is None:
            continue
        status = (
            "met"
            if bound.holds(low) and bound.holds(high)
            else "broken"
            if not (bound.holds(low) or bound.holds(high) or bound.holds(value))
            else "undecided"
        )
        shown = " and ".join(
            f"{op} {v:g}" for op, v in ((">=", bound.min), ("<=", bound.max)) if v is not None
        )
        out.append(
            {
                "constraint": name,
                "value": value,
                "low": low,
                "high": high,
                "status": status,
                "sentence": f"constraint {name} {shown}: live {value:.4f} [{low:.4f}, {high:.4f}]: {status}",
            }
        )
    return out


def _strip(q: dict[str, Any]) -> dict[str, Any]:
    return {k: q[k] for k in ("value", "low", "high", "rows")}


def _lab_of(
    project: Project, name: str, version: int, metric: str, ds: Any, split: Any
) -> dict[str, Any] | None:
    """``name`` v``version``'s metric on the test split (its lab estimate), None when it cannot load."""
    from flywheel.evaluation import load_model
    from flywheel.registry import project_store

    store = project_store(project, create=False)
    try:
        entry = next(
            (
                m
                for m in store.list_models(project.project)
                if m["name"] == name and int(m["version"]) == version
            ),
            None,
        )
    finally:
        store.close()
    if entry is None:
        return None
    try:
        model = load_model(project, entry, "shadow")
        _, _, value, interval = lab_estimate(model, ds, split, metric)
    except FlywheelError:
        return None
    return {"value": value, "interval": interval}


def _outcomes(
    log: Any, rows: list[dict[str, Any]], champ_key: str, ref: Reference, policy: MonitorPolicy
) -> list[dict[str, Any]]:
    """Per outcome name: does the champion being right move it?"""
    from flywheel.prediction_log import read_outcomes

    mine = {r["id"]: r for r in rows if champ_key in r["answers"]}
    if not mine:
        return []
    latest: dict[tuple[str, str], float] = {}
    for o in read_outcomes(log, ids=list(mine)):
        latest[(o["prediction_id"], o["name"])] = float(o["value"])  # the latest report wins
    names = sorted({n for _, n in latest})
    out = []
    for name in names:
        pids = [pid for pid, n in latest if n == name]
        correct = [_correct(mine[pid], champ_key, ref) for pid in pids]
        if ref.classes is None:  # regression: right = the better half of the errors
            errors = np.asarray(correct, dtype=float)
            correct = list(errors <= np.median(errors))
        effect = outcome_effect(
            [bool(c) for c in correct], [latest[(pid, name)] for pid in pids], policy.min_outcome_rows
        )
        out.append({"name": name, **effect, "sentence": _outcome_sentence(name, effect)})
    return out


def _correct(row: dict[str, Any], key: str, ref: Reference) -> Any:
    pred = _as_class(row["answers"][key][0], ref)
    if ref.classes is None:
        return abs(float(pred) - float(row["y"]))
    return str(pred) == str(row["y"])


def _outcome_sentence(name: str, e: dict[str, Any]) -> str:
    if e["status"] == "too few rows":
        return (
            f"{name}: {e['right_rows']:,} right and {e['wrong_rows']:,} wrong predictions with the outcome; "
            f"at least {e['needed']:,} of each needed"
        )
    return (
        f"{name}: {e['right_mean']:.3f} after right predictions vs {e['wrong_mean']:.3f} after wrong ones, "
        f"difference {e['difference']:+.3f} [{e['low']:+.3f}, {e['high']:+.3f}]: "
        + {
            "moves": "correctness moves it",
            "unmoved": f"unmoved (inside ±{e['equivalence_bound']:.3f})",
            "undecided": "not decided",
        }[e["status"]]
    )
