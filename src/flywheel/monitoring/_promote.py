"""Promotion on production evidence: `flywheel promote NAME --on traffic`.

A model that ran beside the champion (``serve --shadow NAME`` or ``--pilot NAME:SHARE``) answered
the same requests, so on the requests whose label came back with the traffic the two can be
compared *paired*, with the gate's rules (policy and margin from ``flywheel.yaml``) — the same
judgement as on the test split, on the rows that matter most. The champion moves only on a pass.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flywheel.errors import FlywheelError
from flywheel.project import Project

__all__ = ["promote_on_traffic"]


def promote_on_traffic(project: Project, name: str) -> tuple[Any, dict[str, Any]]:
    """Judge ``name``'s newest version against the champion on traffic-labelled requests both
    answered; move ``champion`` to it when the gate passes. Returns (the gate's result, the model).

    Raises
    ------
    FlywheelError
        One line: no log, no such model, no request answered by both with a traffic label.
    """
    from flywheel.evaluation import read_artifact
    from flywheel.monitoring._monitor import readable, setting
    from flywheel.monitoring._traffic import _labelled, _pair
    from flywheel.prediction_log import log_exists
    from flywheel.registry import GateResult, log_location, project_store

    log = log_location(project)
    if not log_exists(log):
        raise FlywheelError(
            f"flywheel promote --on traffic: {project.project} has no prediction log; "
            f"serve with `flywheel serve --shadow {name}` and send feedback first"
        )
    store = project_store(project, create=False)
    try:
        # An alias (challenger, shadow) first, as `serve --shadow` resolves it; then a model's newest version.
        model = store.get_alias(project.project, name) or store.latest_model(project.project, name)
        known = sorted({m["name"] for m in store.list_models(project.project)})
    finally:
        store.close()
    if model is None:
        raise FlywheelError(f"flywheel promote: no saved model {name!r}; saved: {', '.join(known) or 'none'}")
    readable(log)
    champion, ds, split, objective, ref = setting(project)
    if champion.model_id == model["id"]:
        raise FlywheelError(f"flywheel promote: {model['name']} v{model['version']} is already the champion")
    rows, _ = _labelled(log, ref)
    key, champ_key = f"{model['name']}:{model['version']}", f"{champion.name}:{champion.version}"
    both = [r for r in rows if key in r["answers"] and champ_key in r["answers"]]
    if len(both) < 2:
        raise FlywheelError(
            f"flywheel promote --on traffic: {len(both)} traffic-labelled requests were answered by both "
            f"{model['name']} v{model['version']} and the champion {champion.name} v{champion.version}; "
            f"serve with `flywheel serve --shadow {name}` (or --pilot {name}:0.1) and send feedback first"
        )
    pair = _pair(project, both, key, champ_key, objective.primary.name, ref, ds, split, objective)
    if pair["gate"] is None:
        raise FlywheelError(
            f"flywheel promote --on traffic: {objective.primary.name} cannot be compared on these rows"
        )
    verdict = GateResult(**{k: v for k, v in pair["gate"].items() if k != "exit_code"})
    if verdict.status == "pass":
        read_artifact(model, "flywheel promote:")  # never a missing or altered artifact as champion
        store = project_store(project)
        try:
            note = f"gate passed on traffic: {verdict.reasons[0]}"
            store.set_alias(project.project, "champion", model["id"], datetime.now(UTC), note=note)
        finally:
            store.close()
    return verdict, model
