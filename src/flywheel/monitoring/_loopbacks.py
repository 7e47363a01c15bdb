"""The loop-backs the evidence supports (proposed, never applied: a person accepts one with
`flywheel phase back --accept ID`), and the drifted region `flywheel mine` looks in."""

from __future__ import annotations

from typing import Any

from flywheel.monitoring._common import (
    _merge,
)
from flywheel.monitoring._drift import drift_region
from flywheel.monitoring._reference import Reference
from flywheel.monitoring._state import Day

__all__: list[str] = []


def _proposals(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The loop-backs the evidence supports, newest window first within each kind."""
    newest = result["windows"][-1]["window"] if result["windows"] else None
    found = [
        _to_data_for_drift(result),
        _to_data_for_quality(result),
        _to_training(result, newest),
        _to_planning(result, newest),
    ]
    return [p for p in found if p is not None]


def _proposal(id_: str, to: str, reason: str, evidence: list[str], window: str | None) -> dict[str, Any]:
    return {"id": id_, "to": to, "reason": reason, "evidence": evidence, "window": window}


def _to_data_for_drift(result: dict[str, Any]) -> dict[str, Any] | None:
    drifted = next((w for w in reversed(result["windows"]) if w["input_drift"]["status"] == "act"), None)
    if drifted is None:
        return None
    d = drifted["input_drift"]
    named = ", ".join(d["drifted"]) or "several features together"
    reason = f"input drift in {named} ({drifted['window']}); "
    reason += "mine the drifted region (`flywheel mine`: reason drift)"
    return _proposal("data-drift", "data", reason, d["evidence"], drifted["window"])


def _to_data_for_quality(result: dict[str, Any]) -> dict[str, Any] | None:
    worse = next((w for w in reversed(result["windows"]) if w["live_quality"]["status"] == "act"), None)
    if worse is None:
        return None
    live = worse["live_quality"]
    rules = (
        ("worse than on test by more than the margin", live.get("drop_low", -1.0) > result["margin"]),
        ("short of the objective's target", any("short of the objective" in e for e in live["evidence"])),
        ("a constraint broken", any(c["status"] == "broken" for c in live.get("constraints", []))),
    )
    fired = ", ".join(what for what, yes in rules if yes)
    reason = f"live quality on traffic ({worse['window']}): {fired}; collect and label traffic like it"
    return _proposal("data-quality", "data", reason, live["evidence"], worse["window"])


def _to_training(result: dict[str, Any], newest: str | None) -> dict[str, Any] | None:
    for pair in result["paired"]:
        gap = pair.get("versus_lab")
        if gap is not None and gap["low"] > result["margin"]:
            reason = (
                f"{pair['model']} v{pair['version']} does worse on traffic than in the lab: "
                f"{result['metric']} drop {gap['drop']:+.4f} [{gap['low']:+.4f}, {gap['high']:+.4f}]"
            )
            shown = (
                f"live {pair['live']['value']:.4f} on {pair['rows']:,} rows vs lab {pair['lab']['value']:.4f}"
            )
            return _proposal("training-pilot", "training", reason, [shown], newest)
    return None


def _to_planning(result: dict[str, Any], newest: str | None) -> dict[str, Any] | None:
    unmoved = [o for o in result["outcomes"] if o["status"] == "unmoved"]
    if not unmoved:
        return None
    names = ", ".join(o["name"] for o in unmoved)
    reason = f"outcomes unmoved by the model's correctness ({names}): revisit the metric"
    return _proposal("planning-outcome", "planning", reason, [o["sentence"] for o in unmoved], newest)


def _region(
    windows: list[dict[str, Any]], grouped: dict[str, list[Day]], ref: Reference
) -> list[dict[str, Any]]:
    """Where the drifted features' logged values crowd, in the newest window with drift to act on."""
    for w in reversed(windows):
        drift = w["input_drift"]
        if drift["status"] != "act" or not drift["drifted"]:
            continue
        merged = _merge(grouped[w["window"]])
        region = []
        for feature in drift["drifted"]:
            entry = drift_region(
                ref.binnings[feature],
                ref.counts[feature],
                merged.features[feature],
                merged.unseen.get(feature, {}),
                [r.get(feature) for r in merged.sample],
            )
            if entry is not None:
                region.append(entry)
        return region
    return []
