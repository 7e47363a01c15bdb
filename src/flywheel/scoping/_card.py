"""A model card in Markdown, with Hugging Face ``model-index`` metadata, filled from evidence.

Everything a run measured goes in as it was measured: metrics with their intervals, the
baselines, the weak classes and segments, the data and split fingerprints. The sections only
a person can write (intended use, out-of-scope use, ethical considerations) are left with a
visible ``TO BE WRITTEN`` marker rather than filled with boilerplate.
"""

from __future__ import annotations

from typing import Any

import yaml

from flywheel.project import Project

__all__ = [
    "TO_WRITE",
    "model_card",
]

TO_WRITE = "**TO BE WRITTEN by a person:**"


def _model_index(project: Project, run: dict[str, Any], model: str) -> list[dict[str, Any]]:
    """``model-index`` results: the best model's test metrics (the evaluation flywheel trusts)."""
    ev = next(e for e in run["evaluations"] if e["name"] == model)
    test = ev["metrics"].get("test", {})
    intervals = ev.get("intervals", {}).get("test", {})
    metrics = []
    for name, value in test.items():
        if value is None:
            continue
        entry: dict[str, Any] = {"type": name, "value": round(float(value), 6), "name": f"test {name}"}
        if name in intervals:
            low, high = intervals[name]
            entry["args"] = {"ci95_low": round(float(low), 6), "ci95_high": round(float(high), 6)}
        metrics.append(entry)
    task = run["data"]["task"]
    return [
        {
            "name": f"{project.project}/{model}",
            "results": [
                {
                    "task": {
                        "type": "tabular-regression" if task == "regression" else "tabular-classification",
                        "name": f"{task} of {run['data']['target']}",
                    },
                    "dataset": {
                        "type": run["data"]["source"],
                        "name": run["data"]["source"],
                        "split": "test",
                        "revision": run["data"]["fingerprint"],
                    },
                    "metrics": metrics,
                }
            ],
        }
    ]


def _fmt(v: Any) -> str:
    return "—" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def model_card(project: Project, run: dict[str, Any], model: str | None = None) -> str:
    """The card's Markdown text (YAML front matter first) for ``model`` (default: the run's best)."""
    name = _card_model(run, model)
    metric = run["objective"]["optimize"]
    lines = [
        *_front_matter(project, run, name),
        *_opening(project, name),
        *_evaluation(run, name, metric),
        *_baselines(run, metric),
        *_weak_spots(run, name),
        *_closing(project, run),
    ]
    return "\n".join(lines)


def _card_model(run: dict[str, Any], model: str | None) -> str:
    """The model the card is for: ``model``, or the run's best; an error names the run's models."""
    name = model or run["ranking"]["best"]
    if name is None or not any(e["name"] == name for e in run["evaluations"]):
        from flywheel.errors import ProjectError

        known = ", ".join(e["name"] for e in run["evaluations"])
        raise ProjectError(f"no model {name!r} in run {run['run_id']}; models: {known}")
    return name


def _front_matter(project: Project, run: dict[str, Any], name: str) -> list[str]:
    """The YAML front matter: Hugging Face metadata and the fingerprints that tie it to its run."""
    meta = {
        "model_name": name,
        "tags": ["flywheel", run["data"]["task"]],
        "library_name": "scikit-learn",
        "model-index": _model_index(project, run, name),
        "flywheel": {
            "project": project.project,
            "run_id": run["run_id"],
            "data_fingerprint": run["data"]["fingerprint"],
            "split_fingerprint": run["split"]["fingerprint"],
            "objective_version": run["objective"]["version"],
        },
    }
    return ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", ""]


def _opening(project: Project, name: str) -> list[str]:
    """The title, the problem statement, and the use sections only a person can write."""
    return [
        f"# Model card: {name} ({project.project})",
        "",
        f"{project.problem or 'No problem statement in flywheel.yaml.'}",
        "",
        "## Intended use",
        "",
        f"{TO_WRITE} who uses the predictions, for what decision, and with what human oversight "
        f"(archetype declared: {project.archetype}).",
        "",
        "## Out-of-scope use",
        "",
        f"{TO_WRITE} inputs and decisions this model must not be used for.",
        "",
    ]


def _evaluation(run: dict[str, Any], name: str, metric: str) -> list[str]:
    """The objective, the verdict on test, and every test metric with its interval."""
    ev = next(e for e in run["evaluations"] if e["name"] == name)
    verdict = run["verdict"]
    lines = [
        "## Evaluation (measured)",
        "",
        f"Objective: optimize **{metric}**, target {_fmt(run['objective']['target'])}. "
        f"Verdict on test: **{verdict['status']}** — {verdict['reason']}.",
        "",
        "| metric | test | 95% interval | valid |",
        "| --- | --- | --- | --- |",
    ]
    for m, v in ev["metrics"].get("test", {}).items():
        ci = ev.get("intervals", {}).get("test", {}).get(m)
        lines.append(
            f"| {m} | {_fmt(v)} | {_fmt(ci[0]) + '–' + _fmt(ci[1]) if ci else '—'} | "
            f"{_fmt(ev['metrics'].get('valid', {}).get(m))} |"
        )
    return lines


def _baselines(run: dict[str, Any], metric: str) -> list[str]:
    """The ladder's baselines (declared or measured) and the answer to "do we need ML?"."""
    lines = ["", "## Baselines", "", f"| baseline | {metric} (test) | source |", "| --- | --- | --- |"]
    for row in run.get("ladder", []):
        if row.get("role") == "candidate":
            continue
        source = "declared" if row.get("role") == "declared" else "measured"
        lines.append(f"| {row['name']} | {_fmt(row.get('value'))} | {source} |")
    need = run.get("need_ml") or {}
    if need:
        lines += ["", f"Do we need ML? **{need.get('answer')}** — {need.get('reason')}"]
    return lines


def _weak_spots(run: dict[str, Any], name: str) -> list[str]:
    """The diagnosis's weak classes and segments, or a line saying there are none.

    Only a diagnosis of this very model speaks for it: a run without one (``flywheel gate`` makes
    none) or of another model says so, rather than "no weak spot".
    """
    diagnosis = run.get("diagnosis") or {}
    lines = ["", "## Weak spots (measured)", ""]
    if not diagnosis:
        return [
            *lines,
            f"Not diagnosed: run {run.get('run_id')} made no diagnosis (`flywheel run` makes one).",
        ]
    if diagnosis.get("model") != name:
        return [
            *lines,
            f"Not diagnosed for {name}: run {run.get('run_id')} diagnosed {diagnosis.get('model')}, "
            "the best model.",
        ]
    weak = [c for c in diagnosis.get("classes", []) if c.get("weak")]
    for c in weak:
        lines.append(
            f"- class {c['label']}: recall {c['recall']:.3f} ({c['recall_low']:.3f}–{c['recall_high']:.3f}) "
            f"on {c['support']} rows"
        )
    for s in diagnosis.get("segments", []):
        lines.append(
            f"- segment {s['description']}: error {s['error']:.3f} vs {s['rest']:.3f} elsewhere "
            f"({s['rows']} rows)"
        )
    if not weak and not diagnosis.get("segments"):
        lines.append("No class or segment is significantly weaker than the rest (at the diagnosis's FDR).")
    return lines


def _closing(project: Project, run: dict[str, Any]) -> list[str]:
    """The training data and its split (measured), then the sections only a person can write."""
    return [
        "",
        "## Training data",
        "",
        f"Source `{run['data']['source']}` (fingerprint `{run['data']['fingerprint']}`), "
        f"{run['data']['rows']:,} labelled rows; split {run['split']['strategy']} "
        f"(fingerprint `{run['split']['fingerprint']}`): train {run['split']['train']:,}, "
        f"valid {run['split']['valid']:,}, test {run['split']['test']:,}.",
        "",
        "## Ethical considerations",
        "",
        f"{TO_WRITE} who could be harmed by errors, and what was done about it."
        + (f" Declared note: {project.ethics}" if project.ethics else ""),
        "",
        "## Caveats and recommendations",
        "",
        f"{TO_WRITE} known limitations beyond the measured weak spots above.",
        "",
    ]
