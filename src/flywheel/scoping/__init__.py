"""Phase 1, planning, from evidence: the project file to start from (``init``, the demo),
feasibility, impact, the archetype's questions, the feasibility checklist, readiness, the lifecycle
phase and its loop-backs (the monitor's proposed ones among them), the portfolio ranking and the
model card.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flywheel._lazy import lazy_attributes
from flywheel.scoping._archetypes import ARCHETYPE_QUESTIONS
from flywheel.scoping._evidence import Driver, Evidence
from flywheel.scoping._lifecycle import (
    PHASES,
    Gathered,
    Phase,
    PhaseState,
    gather,
    infer_phase,
    stored_phase,
    validate_move,
)

if TYPE_CHECKING:
    from flywheel.scoping._assess import Assessment, assess
    from flywheel.scoping._card import TO_WRITE, model_card
    from flywheel.scoping._checklist import CheckItem
    from flywheel.scoping._personal_data import PersonalData, find_personal_data
    from flywheel.scoping._portfolio import Entry, assess_path, portfolio, quadrant
    from flywheel.scoping._proposals import (
        accepted_reason,
        drift_region,
        monitor_file,
        monitor_problem,
        monitored,
        proposals,
        read_monitor,
    )
    from flywheel.scoping._scaffold import (
        DEMO_MARKER,
        init_text,
        write_demo,
        write_example_request,
        write_init,
    )

# Loaded on first use, so that commands which only read the store start fast.
_LAZY = {
    "Assessment": "_assess",
    "assess": "_assess",
    "TO_WRITE": "_card",
    "model_card": "_card",
    "CheckItem": "_checklist",
    "PersonalData": "_personal_data",
    "find_personal_data": "_personal_data",
    "Entry": "_portfolio",
    "assess_path": "_portfolio",
    "portfolio": "_portfolio",
    "quadrant": "_portfolio",
    "accepted_reason": "_proposals",
    "drift_region": "_proposals",
    "monitor_file": "_proposals",
    "monitor_problem": "_proposals",
    "monitored": "_proposals",
    "proposals": "_proposals",
    "read_monitor": "_proposals",
    "DEMO_MARKER": "_scaffold",
    "init_text": "_scaffold",
    "write_demo": "_scaffold",
    "write_example_request": "_scaffold",
    "write_init": "_scaffold",
}


__getattr__ = lazy_attributes("flywheel.scoping", _LAZY)


__all__ = [
    "ARCHETYPE_QUESTIONS",
    "Assessment",
    "CheckItem",
    "DEMO_MARKER",
    "Driver",
    "Entry",
    "Evidence",
    "Gathered",
    "PHASES",
    "PersonalData",
    "Phase",
    "PhaseState",
    "TO_WRITE",
    "accepted_reason",
    "assess",
    "assess_path",
    "drift_region",
    "find_personal_data",
    "gather",
    "infer_phase",
    "init_text",
    "model_card",
    "monitor_file",
    "monitor_problem",
    "monitored",
    "portfolio",
    "proposals",
    "quadrant",
    "read_monitor",
    "stored_phase",
    "validate_move",
    "write_demo",
    "write_example_request",
    "write_init",
]
