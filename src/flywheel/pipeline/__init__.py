"""The main job, ``flywheel run``: project -> data -> ladder + candidates -> objective -> diagnosis ->
scoping -> store and report; and the gate and promotion, which rerun it to judge a candidate.
"""

from flywheel.pipeline._gate import gate, judge_run, promote, promote_after_run
from flywheel.pipeline._plan import Plan, Progress, default_metrics, plan
from flywheel.pipeline._run import run
from flywheel.results import RunResult  # where the main job's result has always been importable

__all__ = [
    "Plan",
    "Progress",
    "RunResult",
    "default_metrics",
    "gate",
    "judge_run",
    "plan",
    "promote",
    "promote_after_run",
    "run",
]
