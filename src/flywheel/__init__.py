"""flywheel: run machine-learning projects the way the best teams do.

Scope a project in ``flywheel.yaml``, measure baselines before anything else,
optimize one metric under explicit constraints, and keep every number as
evidence: with the data fingerprint, split and objective that produced it.

>>> import flywheel
>>> sorted(flywheel.__all__) == flywheel.__all__
True
"""

from flywheel._version import __version__
from flywheel.data import Dataset, Split, load_dataset, split_dataset
from flywheel.diagnosis import (
    Curve,
    Diagnosis,
    Forecast,
    bias_variance,
    forecast,
    measure_curve,
    weak_segments,
)
from flywheel.errors import DataError, FlywheelError, ModelError, ProjectError, StoreError
from flywheel.evaluation import Candidate, Evaluation, Objective, Ranking, Verdict, evaluate
from flywheel.pipeline import run
from flywheel.project import Project, load_project, parse_project
from flywheel.registry import Store, open_store
from flywheel.results import RunResult

__all__ = [
    "Candidate",
    "Curve",
    "DataError",
    "Dataset",
    "Diagnosis",
    "Evaluation",
    "FlywheelError",
    "Forecast",
    "ModelError",
    "Objective",
    "Project",
    "ProjectError",
    "Ranking",
    "RunResult",
    "Split",
    "Store",
    "StoreError",
    "Verdict",
    "__version__",
    "bias_variance",
    "evaluate",
    "forecast",
    "load_dataset",
    "load_project",
    "measure_curve",
    "open_store",
    "parse_project",
    "run",
    "split_dataset",
    "weak_segments",
]
