"""One window's checks: input drift, prediction drift, live and estimated quality, latency; each
with its status and the sentences of evidence whose numbers are the stored ones."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import numpy as np

from flywheel.monitoring._common import (
    _SEVERITY,
    MonitorPolicy,
    _f3,
    _f4,
    _few,
    _g3,
    _q,
    _worst,
)
from flywheel.monitoring._drift import benjamini_hochberg, domain_classifier, two_sample
from flywheel.monitoring._quality import (
    estimated_quality,
    expected_on,
    latency_percentile,
    versus,
)
from flywheel.monitoring._reference import Reference
from flywheel.monitoring._state import Day, ModelDay
from flywheel.monitoring._traffic import _live_constraints, _quality_of

__all__: list[str] = []


def _judge_window(
    name: str,
    day: Day,
    labelled: list[dict[str, Any]],
    ref: Reference,
    champ_key: str,
    objective: Any,
    margin: float,
    policy: MonitorPolicy,
    cache: dict[str, Any],
    kind: str,
) -> dict[str, Any]:
    """Every check of one window; ``cache`` holds the domain classifiers' results by window and rows."""
    checks = {
        "input_drift": _input_drift(day, ref, policy, cache, f"{kind}:{name}"),
        "prediction_drift": _prediction_drift(day.models.get(champ_key), ref, policy),
        "live_quality": _live(labelled, champ_key, ref, objective, margin, policy),
        "estimated_quality": _estimated(day.models.get(champ_key), labelled, champ_key, ref, margin, policy),
        "latency": _latency(day, objective, policy),
    }
    verdict = _worst([c["status"] for c in checks.values() if c["status"] != "not measured"])
    if verdict == "undecided":
        verdict = "too few rows"  # said instead of a verdict; each check names the rows it needs
    return {"window": name, "predictions": day.n, "labelled": len(labelled), "verdict": verdict, **checks}


def _input_drift(
    day: Day, ref: Reference, policy: MonitorPolicy, cache: dict[str, Any], key: str
) -> dict[str, Any]:
    if day.n < policy.min_rows:
        return _few(day.n, policy.min_rows, "predictions")
    results = [
        two_sample(ref.binnings[f], ref.counts[f], day.features[f]) for f in ref.binnings if f in day.features
    ]
    qs = benjamini_hochberg([r.p_value for r in results])
    features = []
    for r, q in zip(results, qs, strict=True):
        d = r.to_dict() | {"q_value": q}
        significant = q < policy.fdr
        d["status"] = _drift_status(significant, r.psi, policy)
        features.append(d)
    features.sort(key=lambda d: (-d["psi"], d["feature"]))
    domain = None
    if len(day.sample) >= policy.min_rows and len(ref.sample) >= policy.min_rows:
        key = f"{key}:{day.n}:{len(day.sample)}"
        domain = dict(cache.get(key) or domain_classifier(ref.sample, day.sample, ref.binnings))
        cache[key] = {k: v for k, v in domain.items() if k != "status"}
        low = domain["low"]
        domain["status"] = (
            "act"
            if low is not None and low > policy.auc_act
            else "watch"
            if (low is not None and low > 0.5) or domain["auc"] > policy.auc_act
            else "ok"
        )
    statuses = [f["status"] for f in features] + ([domain["status"]] if domain else [])
    status = max(statuses, key=_SEVERITY.__getitem__) if statuses else "ok"
    evidence = [
        f"{f['feature']}: {f['test']} {f['statistic']:.3g}, PSI {f['psi']:.2f}, q {_q(f['q_value'])}"
        for f in features
        if f["status"] != "ok"
    ][:10]
    if domain:
        evidence.append(
            f"domain classifier AUC {domain['auc']:.3f} [{_f3(domain['low'])}, {_f3(domain['high'])}] "
            f"({domain['reference_rows']:,} training rows vs {domain['logged_rows']:,} logged)"
        )
    drifted = [f["feature"] for f in features if f["status"] == "act"]
    return {
        "status": status,
        "rows": day.n,
        "drifted": drifted,
        "features": features,
        "domain": domain,
        "evidence": evidence,
    }


def _drift_status(significant: bool, effect: float, policy: MonitorPolicy) -> str:
    if significant and effect >= policy.psi_act:
        return "act"
    if effect >= policy.psi_act or (significant and effect >= policy.psi_watch):
        return "watch"
    return "ok"


def _prediction_drift(m: ModelDay | None, ref: Reference, policy: MonitorPolicy) -> dict[str, Any]:
    from flywheel.monitoring._reference import Binning

    n = 0 if m is None else m.n
    if m is None or n < policy.min_rows:
        return _few(n, policy.min_rows, "champion predictions")
    parts = []
    if ref.classes is not None and m.classes is not None and ref.test_classes is not None:
        mix = Binning("predicted class", "categorical", values=[str(c) for c in ref.classes])
        pad = np.zeros(2, dtype=np.int64)
        parts.append(two_sample(mix, np.r_[ref.test_classes, pad], np.r_[m.classes, pad]))
    if ref.score_binning.edges and m.scores.sum() and ref.test_scores.sum():
        parts.append(two_sample(ref.score_binning, ref.test_scores, m.scores))
    qs = benjamini_hochberg([p.p_value for p in parts])
    checks = []
    for p, q in zip(parts, qs, strict=True):
        checks.append(p.to_dict() | {"q_value": q, "status": _drift_status(q < policy.fdr, p.psi, policy)})
    status = max((c["status"] for c in checks), key=_SEVERITY.__getitem__, default="ok")
    evidence = [
        f"{c['feature']} vs test: {c['test']} {c['statistic']:.3g}, PSI {c['psi']:.2f}, q {_q(c['q_value'])}"
        for c in checks
    ]
    return {"status": status, "rows": n, "checks": checks, "evidence": evidence}


def _live(
    rows: list[dict[str, Any]], key: str, ref: Reference, objective: Any, margin: float, policy: MonitorPolicy
) -> dict[str, Any]:
    mine = [r for r in rows if key in r["answers"]]
    if len(mine) < policy.min_labels:
        return _few(len(mine), policy.min_labels, "traffic-labelled champion predictions")
    q = _quality_of(mine, key, ref.metric, ref)
    out = {k: q[k] for k in ("value", "low", "high", "rows", "note")}
    judged = out | _against_lab(out, ref, objective.target, margin, "live")
    constraints = _live_constraints(mine, key, ref, objective)
    if constraints:
        judged["constraints"] = constraints
        judged["evidence"] = judged["evidence"] + [c["sentence"] for c in constraints]
        if any(c["status"] == "broken" for c in constraints):
            judged["status"] = "act"
        elif any(c["status"] == "undecided" for c in constraints) and judged["status"] == "ok":
            judged["status"] = "watch"
    return judged


def _against_lab(
    out: dict[str, Any], ref: Reference, target: float | None, margin: float, what: str
) -> dict[str, Any]:
    """Status and evidence of a live (or estimated) value against the test estimate and the target."""
    if out["value"] is None:
        return {
            "status": "not measured",
            "evidence": [f"{ref.metric} undefined on these rows: {out.get('note')}"],
        }
    value, low, high = out["value"], out["low"], out["high"]
    shown = f"{what} {ref.metric} {value:.4f} [{_f4(low)}, {_f4(high)}] on {out['rows']:,} rows"
    evidence = []
    status = "ok"
    if ref.test_value is not None:
        t_lo, t_hi = ref.test_interval or (None, None)
        gap = versus(value, low, high, ref.test_value, t_lo, t_hi, ref.greater_is_better)
        out_gap = {"drop": gap["drop"], "drop_low": gap["low"], "drop_high": gap["high"]}
        out.update(out_gap)
        line = (
            f"{shown} vs test {ref.test_value:.4f}: drop {gap['drop']:+.4f} "
            f"[{gap['low']:+.4f}, {gap['high']:+.4f}], margin {margin:g}"
        )
        if gap["low"] > margin:
            status = "act"
            evidence.append(f"{line}: worse than test by more than the margin")
        elif gap["drop"] > margin or gap["low"] > 0:
            status = "watch"
            if gap["low"] <= 0:
                said = "not yet significant"
            elif gap["drop"] > margin:
                said = "worse than test, not significantly beyond the margin"
            else:
                said = "worse than test, within the margin"
            evidence.append(f"{line}: {said}")
        else:
            evidence.append(f"{line}: as in the lab")
    else:
        evidence.append(shown)
    if target is not None and low is not None and high is not None:
        best, worst = (high, low) if ref.greater_is_better else (low, high)
        sign = 1 if ref.greater_is_better else -1
        below = sign * (best - target) < 0  # even the interval's best end misses the target
        straddles = not below and sign * (worst - target) < 0
        if below:
            status = "act"
            evidence.append(f"short of the objective's target {target:g} with 95 % confidence")
        elif straddles:
            evidence.append(f"target {target:g}: undecided (inside the interval)")
    return {"status": status, "evidence": evidence}


def _estimated(
    m: ModelDay | None,
    rows: list[dict[str, Any]],
    key: str,
    ref: Reference,
    margin: float,
    policy: MonitorPolicy,
) -> dict[str, Any]:
    if ref.classes is None:
        return {"status": "not measured", "evidence": ["no estimate without labels for a regression target"]}
    if m is not None and m.with_scores == 0 and m.n >= policy.min_rows:
        return {"status": "not measured", "evidence": ["the champion logged no class probabilities"]}
    if m is None or m.with_scores < policy.min_rows:
        return _few(
            0 if m is None else m.with_scores, policy.min_rows, "champion predictions with probabilities"
        )
    if estimated_quality(m, ref.metric, ref.classes) is None:
        # Not a label metric (roc_auc, log_loss): expected accuracy stands in, against test accuracy.
        ref = replace(
            ref, metric="accuracy", test_value=ref.test_accuracy, test_interval=ref.test_accuracy_interval
        )
        margin = 0.01
    assert ref.classes is not None
    est = estimated_quality(m, ref.metric, ref.classes)
    if est is None:
        return {"status": "not measured", "evidence": [f"no estimate without labels for {ref.metric}"]}
    base = dict(est, note=None, metric=ref.metric)
    judged = _against_lab(base, ref, None, margin, "estimated")  # adds the drop and its interval to base
    out = base | judged
    check = _check_estimate(rows, key, ref)
    if check is not None:
        out["labelled_check"] = check
        out["evidence"].append(check["sentence"])
        if not check["agrees"] and out["status"] == "act":
            # The labels measure what the probabilities only estimate: where they contradict the
            # estimate, it cannot decide on its own.
            out["status"] = "watch"
            out["evidence"].append("not acted on: the labelled rows contradict the estimate")
    return out


def _check_estimate(rows: list[dict[str, Any]], key: str, ref: Reference) -> dict[str, Any] | None:
    """The estimate on the labelled rows themselves against the metric measured on them."""
    assert ref.classes is not None
    q = _quality_of(rows, key, ref.metric, ref)
    if q["proba"] is None or q["value"] is None or len(q["y"]) < 10:
        return None
    index = {str(c): i for i, c in enumerate(ref.classes)}
    codes = np.asarray([index.get(str(p), -1) for p in q["pred"]])
    est = estimated_quality(expected_on(q["proba"], codes, len(ref.classes)), ref.metric, ref.classes)
    if est is None:
        return None
    agrees = q["low"] is not None and q["high"] is not None and q["low"] <= est["value"] <= q["high"]
    sentence = (
        f"on the {q['rows']:,} labelled rows: estimated {est['value']:.4f}, measured {q['value']:.4f} "
        f"[{_f4(q['low'])}, {_f4(q['high'])}]: "
        + ("agrees" if agrees else "disagrees (probabilities miscalibrated here)")
    )
    return {
        "estimated": est["value"],
        "measured": q["value"],
        "low": q["low"],
        "high": q["high"],
        "agrees": agrees,
        "sentence": sentence,
    }


def _latency(day: Day, objective: Any, policy: MonitorPolicy) -> dict[str, Any]:
    bounds = {
        m: b
        for m, b in objective.constraints.items()
        if re.fullmatch(r"latency_p(\d+)_ms", m) and b.max is not None
    }
    if not bounds:
        return {"status": "not measured", "evidence": ["no latency constraint in the objective"]}
    total = None
    for m in day.models.values():
        total = m.latency if total is None else total + m.latency
    checks, status = [], "ok"
    for name, bound in bounds.items():
        q = int(re.fullmatch(r"latency_p(\d+)_ms", name).group(1))  # type: ignore[union-attr]
        requests = 0 if total is None else int(total.sum())
        if total is None or requests < policy.min_requests:
            return _few(requests, policy.min_requests, "logged single-row requests")
        p = latency_percentile(total, q)
        assert p is not None
        low, high = p["low"], p["high"]
        if low is not None and low > bound.max:
            s = "act"
        elif high is None or high > bound.max:
            s = "watch"
        else:
            s = "ok"
        status = max(status, s, key=_SEVERITY.__getitem__)
        checks.append(
            p
            | {
                "constraint": name,
                "max": bound.max,
                "status": s,
                "sentence": f"live {name.replace('_ms', '')} ≤ {p['value']:.3g} ms [{_g3(low)}, {_g3(high)}] "
                f"(single-row requests, wall time) vs max {bound.max:g}: {s}",
            }
        )
    return {"status": status, "checks": checks, "evidence": [c["sentence"] for c in checks]}
