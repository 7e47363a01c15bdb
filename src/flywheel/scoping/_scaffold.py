"""New projects: the commented ``flywheel.yaml`` of ``flywheel init`` and the demo project.

Both write files a person will edit, so both refuse to overwrite a project file
they did not write (``--force`` says otherwise), and every template is checked
by the test suite to validate as it stands.
"""

from __future__ import annotations

import os
from pathlib import Path

from flywheel.data import infer_task, read_table
from flywheel.errors import DataError, ProjectError
from flywheel.project import PROJECT_FILE, Project

__all__ = [
    "DEMO_MARKER",
    "init_text",
    "write_demo",
    "write_example_request",
    "write_init",
]

DEMO_MARKER = "# flywheel demo project"

_INIT = """\
# flywheel project file. Every field is documented in the README; `flywheel run` validates it.
project: {name}
problem: {problem}
# software-2.0 | human-in-the-loop | autonomous
archetype: software-2.0

# Declared, not measured: what the project is worth and what its mistakes cost.
impact: {{value_per_year: 0, lenses: []}}   # lenses: cheap-prediction, product-friction, automate-manual-process, others-already-do-it
costs: {{label: 0.0, wrong_prediction: 0.0}}
difficulty: {{output: medium, reliability: medium, generalization: medium}}

data:
  source: {source}          # builtin:NAME, or a .csv / .parquet / .jsonl file next to this one
  target: {target}
  # task: {task}            # inferred ({task}); set it to override
  # id: id                  # a unique row id: lets predictions made elsewhere be joined
  split: {{test: 0.2, valid: 0.2, seed: 0}}   # add group: COL (no group in two splits) or time: COL (test = latest)

objective:
  optimize: {optimize}      # the single number models are ranked by
  # target: 0.9             # the success criterion, judged on test
  # constraints: {{latency_p95_ms: {{max: 10}}, size_mb: {{max: 50}}}}

# baselines:
#   human: {{accuracy: 0.95, tier: expert, n: 200, source: "internal study"}}
#   external: [{{name: "published result", accuracy: 0.97, source: "citation"}}]
#   rules: [my_rules:predict]        # module:function, rows (a DataFrame) -> labels

models: []
#  - {{name: forest, estimator: sklearn.ensemble.RandomForestClassifier, params: {{n_estimators: 200}}}}
#  - {{name: mine, factory: my_models:build}}
#  - {{name: vendor, predictions: vendor_preds.csv}}   # columns: id (or row), prediction[, proba_CLASS…]
"""

_DEMO = f"""\
{DEMO_MARKER} (written by `flywheel demo`; edit freely, or rerun the demo to reset it)
project: digit-sorter
problem: >-
  Read the handwritten digit on each parcel so that a person only sorts the parcels
  the model is unsure about.
archetype: human-in-the-loop
impact: {{value_per_year: 120000, volume_per_year: 2000000, lenses: [cheap-prediction, automate-manual-process]}}
costs: {{label: 0.04, wrong_prediction: 1.5}}
difficulty: {{output: low, reliability: medium, generalization: low}}
data:
  source: builtin:digits
  target: digit
  split: {{test: 0.2, valid: 0.2, seed: 7}}
objective:
  optimize: accuracy
  target: 0.99
  constraints: {{latency_p95_ms: {{max: 25}}, size_mb: {{max: 20}}}}
baselines:
  human: {{accuracy: 0.985, tier: expert, n: 500, source: "internal study, 500 parcels"}}
  external: [{{name: "published result", accuracy: 0.992, source: "illustrative value for the demo",
               caveat: "different split of the same data"}}]
# A challenger replaces the champion (or, for the first one, the best baseline) unless it is
# worse by more than 0.01 accuracy, with 95 % confidence on the same test rows.
gate: {{policy: non-inferiority, margin: 0.01}}
models:
  - {{name: rbf-svm, estimator: sklearn.svm.SVC, params: {{C: 10, gamma: scale}}}}
  - {{name: knn, factory: "my_models:build_knn", params: {{k: 3}}}}
"""

_DEMO_MODELS = '''\
"""Candidate models for the demo, built by a factory: any callable returning an estimator."""

from sklearn.neighbors import KNeighborsClassifier


def build_knn(k: int = 5) -> KNeighborsClassifier:
    """k nearest neighbours, weighted by distance."""
    return KNeighborsClassifier(n_neighbors=k, weights="distance")
'''


def _choose_metric(task: str, minority_share: float) -> str:
    if task == "regression":
        return "rmse"
    return "balanced_accuracy" if minority_share < 0.2 else "accuracy"


def init_text(
    name: str = "my-project",
    *,
    source: str = "data.csv",
    target: str = "label",
    task: str = "binary",
    optimize: str = "accuracy",
    problem: str = "What should the model predict, for whom, and what happens with the prediction?",
) -> str:
    """The commented project file ``flywheel init`` writes."""
    return _INIT.format(
        name=name, source=source, target=target, task=task, optimize=optimize, problem=problem
    )


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-.")
    return (keep or "my-project")[:64]


def write_init(
    folder: Path, *, csv: Path | None = None, target: str | None = None, force: bool = False
) -> Path:
    """Write a commented ``flywheel.yaml`` into ``folder``; with ``csv``, fill in its data."""
    if (csv is None) != (target is None):
        raise ProjectError("flywheel init: --from-csv and --target go together; got only one of them")
    path = folder / PROJECT_FILE
    if path.exists() and not force:
        raise ProjectError(f"{path}: already exists; pass --force to overwrite it")
    kwargs: dict[str, str] = {"name": _slug(folder.resolve().name)}
    if csv is not None and target is not None:
        frame = read_table(csv, field="--from-csv", where="flywheel init")
        if target not in frame.columns:
            raise DataError(
                f"flywheel init: --target {target!r} is not a column of {csv.name}; columns: "
                f"{', '.join(map(str, frame.columns[:8]))}"
            )
        y = frame[target].dropna()
        task = infer_task(y)
        share = float(y.value_counts(normalize=True).min()) if task != "regression" else 1.0
        kwargs.update(
            source=os.path.relpath(csv.resolve(), folder.resolve()),
            target=target,
            task=task,
            optimize=_choose_metric(task, share),
        )
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(init_text(**kwargs), encoding="utf-8")
    return path


def write_example_request(project: Project, name: str = "request.json") -> Path:
    """One test row of the project's data as a ``/predict`` body, written next to the project file.

    What the demo's printed ``curl`` sends: a real row in the schema the service checks.
    """
    import json

    from flywheel.data import load_dataset, split_dataset

    ds = load_dataset(project.data, project.root)
    split = split_dataset(ds, project.data.split)
    row = ds.X.iloc[int(split.test[0])].to_dict()
    clean = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    path = project.root / name
    path.write_text(json.dumps(clean) + "\n", encoding="utf-8")
    return path


def write_demo(folder: Path) -> Path:
    """Write the demo project (digits, parcel sorting) into ``folder``; return its file."""
    path = folder / PROJECT_FILE
    if path.exists() and not path.read_text(encoding="utf-8").startswith(DEMO_MARKER):
        raise ProjectError(f"{path}: exists and is not a flywheel demo project; choose another --dir")
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(_DEMO, encoding="utf-8")
    (folder / "my_models.py").write_text(_DEMO_MODELS, encoding="utf-8")
    return path
