"""The project file: ``flywheel.yaml``'s schema (pydantic), loading with one-line errors, and the
project folder's own modules (rules, factories, model classes) made importable, and the trust
model that decides which code the file may have flywheel call.

Everything else reads a :class:`Project`; nothing here fits, stores or reads data.
"""

from flywheel.project._baselines import Baselines, ExternalBaseline, HumanBaseline
from flywheel.project._imports import (
    PROJECT_MODULES,
    import_estimator_class,
    import_trusted_callable,
    importable,
)
from flywheel.project._load import find_project_file, load_project, parse_project
from flywheel.project._objective import Bound, ObjectiveSpec
from flywheel.project._schema import (
    ARCHETYPES,
    LENSES,
    PROJECT_FILE,
    READINESS_ITEMS,
    RESERVED_MODEL_NAMES,
    Costs,
    DataSpec,
    DiagnosisSpec,
    Difficulty,
    GateSpec,
    Impact,
    ModelSpec,
    Project,
    SplitSpec,
)

__all__ = [
    "ARCHETYPES",
    "Baselines",
    "Bound",
    "Costs",
    "DataSpec",
    "DiagnosisSpec",
    "Difficulty",
    "ExternalBaseline",
    "GateSpec",
    "HumanBaseline",
    "Impact",
    "LENSES",
    "ModelSpec",
    "ObjectiveSpec",
    "PROJECT_FILE",
    "PROJECT_MODULES",
    "Project",
    "READINESS_ITEMS",
    "RESERVED_MODEL_NAMES",
    "SplitSpec",
    "find_project_file",
    "import_estimator_class",
    "import_trusted_callable",
    "importable",
    "load_project",
    "parse_project",
]
