"""Project-file validation: every mistake is one line naming the field, the allowed values and the input."""

from __future__ import annotations

from pathlib import Path

import pytest

import flywheel
from flywheel.errors import ProjectError
from flywheel.project import load_project, parse_project
from flywheel.scoping import init_text

BASE = """\
project: p
data: {source: builtin:iris, target: species}
objective: {optimize: accuracy}
"""


def test_minimal_project_gets_defaults() -> None:
    p = parse_project(BASE)
    assert p.archetype == "software-2.0"
    assert p.data.split.test == 0.2 and p.data.split.valid == 0.2
    assert p.objective.constraints == {}
    assert p.models == []


def test_full_project_from_design_parses() -> None:
    p = parse_project(
        BASE.replace(
            "objective: {optimize: accuracy}",
            """\
objective:
  optimize: accuracy
  target: 0.99
  constraints: {latency_p95_ms: {max: 2}, size_mb: {max: 20}}
archetype: human-in-the-loop
impact: {value_per_year: 120000, lenses: [cheap-prediction, automate-manual-process]}
costs: {label: 0.04, wrong_prediction: 1.5}
difficulty: {output: low, reliability: medium, generalization: low}
baselines:
  human: {accuracy: 0.985, tier: expert, source: "internal study, 500 parcels"}
  external: [{name: "published result", accuracy: 0.992, source: "citation"}]
  rules: [my_rules:predict]
models:
  - {name: rbf-svm, estimator: sklearn.svm.SVC, params: {probability: true}}
  - {name: mine, factory: my_models:build}
  - {name: vendor, predictions: vendor_preds.csv}
""",
        )
    )
    assert [m.kind for m in p.models] == ["estimator", "factory", "predictions"]
    assert p.baselines.human is not None and p.baselines.human.values == {"accuracy": 0.985}
    assert p.baselines.external[0].values == {"accuracy": 0.992}
    assert p.objective.constraints["latency_p95_ms"].max == 2


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("optimize: accuracy", "optimize: acc"),
            "flywheel.yaml: objective.optimize must be one of accuracy, average_precision",
        ),
        (("optimize: accuracy", "optimize: acc"), "; got 'acc'"),
        (
            ("optimize: accuracy}", "optimize: accuracy, weight: {a: 1}}"),
            "flywheel.yaml: objective has an unknown field 'weight'; "
            "allowed: constraints, optimize, reason, target, weights (did you mean 'weights'?)",
        ),
        (
            ("project: p", "project: p\narchetype: robot"),
            "flywheel.yaml: archetype must be one of software-2.0, human-in-the-loop, autonomous; "
            "got 'robot'",
        ),
        (("target: species", "tgt: species"), "flywheel.yaml: data has an unknown field 'tgt'"),
        ((", target: species}", "}"), "flywheel.yaml: data.target is required"),
        (
            ("target: species", "target: species, split: {test: 1.5}"),
            "flywheel.yaml: data.split.test must be < 1",
        ),
        (
            ("target: species", "target: species, split: {test: abc}"),
            "flywheel.yaml: data.split.test must be a number; got 'abc'",
        ),
        (
            ("target: species", "target: species, split: {test: 0.5, valid: 0.5}"),
            "test + valid must leave rows for training",
        ),
        (
            ("target: species", "target: species, split: {group: g, time: t}"),
            "takes a group column or a time column, not both",
        ),
        (
            ("optimize: accuracy}", "optimize: accuracy, constraints: {latency: {max: 2}}}"),
            "flywheel.yaml: objective.constraints names an unknown metric",
        ),
        (
            ("optimize: accuracy}", "optimize: accuracy, constraints: {size_mb: {}}}"),
            "flywheel.yaml: objective.constraints.size_mb needs min or max; got neither",
        ),
        (
            ("optimize: accuracy}", "optimize: accuracy, constraints: {size_mb: {min: 3, max: 1}}}"),
            "min must not exceed max",
        ),
        (("project: p", "project: 'has spaces'"), "flywheel.yaml: project must be 1-64 letters"),
        (
            ("project: p", "project: p\nimpact: {lenses: [magic]}"),
            "flywheel.yaml: impact.lenses[0] must be one of cheap-prediction",
        ),
        (("project: p", "project: p\ncosts: {label: -1}"), "flywheel.yaml: costs.label must be >= 0; got -1"),
        (
            ("project: p", "project: p\nmodels: [{name: x}]"),
            "flywheel.yaml: models[0] needs exactly one of estimator, factory, predictions; got none",
        ),
        (
            ("project: p", "project: p\nmodels: [{name: x, estimator: a.B, factory: 'm:f'}]"),
            "got estimator, factory",
        ),
        (
            ("project: p", "project: p\nmodels: [{name: x, estimator: 'os.system(1)'}]"),
            "flywheel.yaml: models[0].estimator must be a dotted import path",
        ),
        (
            ("project: p", "project: p\nmodels: [{name: x, factory: 'no_colon'}]"),
            "flywheel.yaml: models[0].factory must look like module:function",
        ),
        (
            ("project: p", "project: p\nmodels: [{name: a, estimator: a.B}, {name: a, estimator: a.C}]"),
            "flywheel.yaml: models names must be unique; got 'a' twice",
        ),
        (
            ("project: p", "project: p\nmodels: [{name: dummy, estimator: a.B}]"),
            "must not be one of the reserved names",
        ),
        (
            ("project: p", "project: p\nmodels: [{name: v, predictions: f.csv, params: {a: 1}}]"),
            "params apply to estimator or factory models",
        ),
        (
            ("project: p", "project: p\nbaselines: {human: {accuracy: high}}"),
            "flywheel.yaml: baselines.human accuracy must be a number; got 'high'",
        ),
        (("project: p", "project: p\nbaselines: {human: {acuracy: 0.9}}"), "did you mean 'accuracy'?"),
        (
            ("project: p", "project: p\nbaselines: {human: {tier: expert}}"),
            "flywheel.yaml: baselines.human needs at least one metric value",
        ),
        (
            ("project: p", "project: p\nbaselines: {rules: ['rules.predict']}"),
            "flywheel.yaml: baselines.rules entries must look like module:function",
        ),
        (("project: p", "project: p\nsurprise: 1"), "flywheel.yaml: has an unknown field 'surprise'"),
        (("optimize: accuracy", "optimize: acc"), "; got 'acc' (did you mean 'accuracy'?)"),
        (("optimize: accuracy", "optimize: prec"), "(did you mean 'precision'?)"),
        (("optimize: accuracy", "optimize: acuracy"), "(did you mean 'accuracy'?)"),
        (
            ("target: species", "target: species, split: {seed: -1}"),
            "flywheel.yaml: data.split.seed must be >= 0; got -1",
        ),
        (
            ("target: species", "target: species, split: {seed: 4294967296}"),
            "flywheel.yaml: data.split.seed must be <= 4294967295",
        ),
        (
            ("target: species", "target: species, split: {seed: true}"),
            "flywheel.yaml: data.split.seed must be an integer; got True",
        ),
        (
            ("project: p", "project: p\nbaselines: {human: {accuracy: 1.7, n: 500}}"),
            "flywheel.yaml: baselines.human accuracy must lie in [0, 1]; got 1.7",
        ),
        (
            ("project: p", "project: p\nbaselines: {human: {accuracy: 0.9, n: 0}}"),
            "flywheel.yaml: baselines.human.n must be >= 1; got 0",
        ),
        (
            ("project: p", "project: p\nbaselines: {human: {accuracy: 0.9, n: 2.5}}"),
            "flywheel.yaml: baselines.human.n must be an integer; got 2.5",
        ),
        (
            ("project: p", "project: p\nbaselines: {human: {accuracy: 0.9, n: true}}"),
            "flywheel.yaml: baselines.human.n must be an integer; got True",
        ),
        (
            ("project: p", "project: p\nbaselines: {human: {log_loss: -0.1}}"),
            "flywheel.yaml: baselines.human log_loss must be >= 0; got -0.1",
        ),
        (
            ("project: p", "project: p\nbaselines: {human: {accuracy: .nan}}"),
            "flywheel.yaml: baselines.human accuracy must be a finite number; got nan",
        ),
        (
            ("project: p", "project: p\nbaselines: {external: [{name: paper, mcc: -2}]}"),
            "flywheel.yaml: baselines.external[0] mcc must lie in [-1, 1]; got -2",
        ),
        (
            ("optimize: accuracy}", "optimize: accuracy, target: 1.5}"),
            "flywheel.yaml: objective.target must lie in [0, 1] for accuracy; got 1.5",
        ),
        (
            ("optimize: accuracy}", "optimize: r2, target: 2}"),
            "flywheel.yaml: objective.target must be <= 1 for r2; got 2",
        ),
        (
            ("optimize: accuracy}", "optimize: accuracy, target: .nan}"),
            "flywheel.yaml: objective.target must be a finite number; got nan",
        ),
        (
            ("optimize: accuracy}", "optimize: accuracy, constraints: {size_mb: {max: .inf}}}"),
            "flywheel.yaml: objective.constraints.size_mb.max must be a finite number; got inf",
        ),
        (
            ("project: p", "project: p\ncosts: {label: true}"),
            "flywheel.yaml: costs.label must be a number; got True",
        ),
        (("project: p", "project: p\ntrust: [os]"), "flywheel.yaml: trust[0] must name an installed package"),
    ],
)
def test_each_mistake_is_one_clear_line(change: tuple[str, str], expected: str) -> None:
    text = BASE.replace(*change)
    assert text != BASE, "the test's change did not apply"
    with pytest.raises(ProjectError) as info:
        parse_project(text)
    message = str(info.value)
    assert "\n" not in message
    assert expected in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("project: a\n data: x\n: -", "flywheel.yaml: line 2, column 6: not valid YAML"),
        ("project: [unclosed", "not valid YAML"),
        ("", "flywheel.yaml: the file is empty"),
        ("- a\n- b", "flywheel.yaml: must be a mapping with project, data, objective; got list"),
        ("project: !!int ''", "flywheel.yaml: not valid YAML: a value cannot be read"),
        ("project: !!float x", "flywheel.yaml: not valid YAML: a value cannot be read"),
    ],
)
def test_malformed_yaml(text: str, expected: str) -> None:
    with pytest.raises(ProjectError, match=expected):
        parse_project(text)


def test_load_project_resolves_paths_from_its_folder(tmp_path: Path) -> None:
    (tmp_path / "flywheel.yaml").write_text(BASE)
    p = load_project(tmp_path)
    assert p.root == tmp_path.resolve()
    assert p.resolve("data.csv") == tmp_path.resolve() / "data.csv"
    assert p.store_dir == tmp_path.resolve() / ".flywheel"


def test_missing_project_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="no project file here"):
        load_project(tmp_path)


def test_objective_fingerprint_tracks_the_formula() -> None:
    a = parse_project(BASE).objective_fingerprint()
    assert a == parse_project(BASE).objective_fingerprint()
    b = parse_project(BASE.replace("accuracy}", "accuracy, target: 0.9}")).objective_fingerprint()
    assert a != b


def test_init_template_validates() -> None:
    parse_project(init_text())
    parse_project(init_text("x", source="d.csv", target="y", task="regression", optimize="rmse"))


def test_declared_numbers_are_refused_before_anything_runs(tmp_path: Path) -> None:
    """Accuracy 1.7 with ``n`` once crashed with `math domain error` after the fitting; now the
    project does not load, so nothing is fitted or stored."""
    (tmp_path / "flywheel.yaml").write_text(BASE + "baselines: {human: {accuracy: 1.7, n: 500}}\n")
    with pytest.raises(ProjectError, match=r"baselines.human accuracy must lie in \[0, 1\]; got 1.7"):
        flywheel.run(tmp_path)
    assert not (tmp_path / ".flywheel").exists()


def test_the_rung_budget_grows_with_the_training_rows_unless_declared() -> None:
    from flywheel.project import Baselines

    default = Baselines()
    assert [default.budget_for(n) for n in (100, 60_000, 100_000, 600_000)] == [120.0, 120.0, 120.0, 720.0]
    assert Baselines(time_budget_s=30).budget_for(10**6) == 30.0
