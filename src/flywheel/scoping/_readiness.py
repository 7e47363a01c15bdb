"""Readiness in the ML Test Score's shape: four sections of items, each shown by an artifact the
store holds (worth 1) or declared done by hand in ``flywheel.yaml`` (worth 0.5).

A project is as ready as its weakest section.
"""

from __future__ import annotations

from typing import Any

from flywheel.project import Project

__all__: list[str] = []

_READINESS_ITEMS: dict[str, list[tuple[str, str]]] = {
    # section: [(item, artifact that shows it)]
    "data": [
        ("schema checked", "data_checked"),
        ("data fingerprinted and split leak-free", "run_stored"),
        ("personal data scanned", "pii_scanned"),
    ],
    "model": [
        ("baselines measured", "ladder"),
        ("held-out evaluation with intervals", "run_stored"),
        ("model diagnosed", "diagnosis"),
    ],
    "infrastructure": [
        ("model versioned in the registry", "models"),
        ("gate decided a promotion", "champion"),
        ("serving latency measured", "latency"),
    ],
    "monitoring": [
        ("predictions logged", "predictions_logged"),
        ("feedback labels collected", "feedback"),
        ("champion watched against the objective", "monitored"),
    ],
}


def _readiness(project: Project, artifacts: dict[str, Any]) -> dict[str, Any]:
    """ML Test Score shape: 1 per item shown by an artifact, 0.5 declared done by hand, else 0."""
    declared = project.readiness
    sections: dict[str, Any] = {}
    for section, items in _READINESS_ITEMS.items():
        rows = []
        for item, key in items:
            if artifacts.get(key):
                rows.append({"item": item, "score": 1.0, "source": "measured"})
            elif declared.get(item.replace(" ", "_")):
                rows.append({"item": item, "score": 0.5, "source": "declared"})
            else:
                rows.append({"item": item, "score": 0.0, "source": "none"})
        sections[section] = {"score": sum(r["score"] for r in rows), "items": rows}
    weakest = min(sections, key=lambda s: sections[s]["score"])
    return {"score": sections[weakest]["score"], "weakest": weakest, "sections": sections}
