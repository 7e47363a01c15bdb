"""The registry: the run store (runs, evaluations, objective versions, phase events), saved model
versions and their aliases, the gate's judgement of a candidate against the champion, and what the
served loop has stored (labels over time, retrains).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flywheel._lazy import lazy_attributes
from flywheel.registry._runs import RunRecord
from flywheel.registry._schema import (
    DB_NAME,
    SCHEMA_VERSION,
    AliasRow,
    EvaluationRow,
    ModelRow,
    ObjectiveVersionRow,
    PhaseEventRow,
    RunRow,
    ScoreRow,
)
from flywheel.registry._store import (
    STORE_ENV,
    SUPPORTED,
    Store,
    has_store,
    log_location,
    open_store,
    project_store,
    shown_url,
    store_file,
    store_location,
)

if TYPE_CHECKING:
    from flywheel.registry._aliases import load_alias, save_version
    from flywheel.registry._flywheel import MONITOR_FILE, flywheel_summary, loop_counts
    from flywheel.registry._gate import (
        EXIT_CODES,
        GateResult,
        champion_predictions,
        checked_champion,
        judge_candidate,
        retrained_verdict,
    )

# Loaded on first use: they need models, data and the metric engine, which a command that only
# reads the store (`flywheel runs`, `models`) must not pay for at start-up.
_LAZY = {
    "load_alias": "_aliases",
    "save_version": "_aliases",
    "MONITOR_FILE": "_flywheel",
    "flywheel_summary": "_flywheel",
    "loop_counts": "_flywheel",
    "EXIT_CODES": "_gate",
    "GateResult": "_gate",
    "champion_predictions": "_gate",
    "checked_champion": "_gate",
    "judge_candidate": "_gate",
    "retrained_verdict": "_gate",
}


__getattr__ = lazy_attributes("flywheel.registry", _LAZY)


__all__ = [
    "AliasRow",
    "DB_NAME",
    "EXIT_CODES",
    "EvaluationRow",
    "GateResult",
    "MONITOR_FILE",
    "ModelRow",
    "ObjectiveVersionRow",
    "PhaseEventRow",
    "RunRecord",
    "RunRow",
    "SCHEMA_VERSION",
    "STORE_ENV",
    "SUPPORTED",
    "ScoreRow",
    "Store",
    "champion_predictions",
    "checked_champion",
    "flywheel_summary",
    "has_store",
    "judge_candidate",
    "load_alias",
    "log_location",
    "loop_counts",
    "open_store",
    "project_store",
    "retrained_verdict",
    "save_version",
    "shown_url",
    "store_file",
    "store_location",
]
