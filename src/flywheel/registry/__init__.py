"""The registry: the run store (runs, evaluations, objective versions, phase events), saved model
versions and their aliases, the gate's judgement of a candidate against the champion, and what the
served loop has stored (labels over time, retrains).
"""

from flywheel.registry._aliases import load_alias, save_version
from flywheel.registry._flywheel import flywheel_summary, loop_counts
from flywheel.registry._gate import (
    EXIT_CODES,
    GateResult,
    champion_predictions,
    checked_champion,
    judge_candidate,
    retrained_verdict,
)
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
from flywheel.registry._store import Store, open_store, store_file

__all__ = [
    "AliasRow",
    "DB_NAME",
    "EXIT_CODES",
    "EvaluationRow",
    "GateResult",
    "ModelRow",
    "ObjectiveVersionRow",
    "PhaseEventRow",
    "RunRecord",
    "RunRow",
    "SCHEMA_VERSION",
    "ScoreRow",
    "Store",
    "champion_predictions",
    "checked_champion",
    "flywheel_summary",
    "judge_candidate",
    "load_alias",
    "loop_counts",
    "open_store",
    "retrained_verdict",
    "save_version",
    "store_file",
]
