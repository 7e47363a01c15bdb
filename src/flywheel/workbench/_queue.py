"""The review queue in the page: which item to show, the model's top classes for it, and the label
a person gives — recorded as feedback exactly as the service's ``POST /review/{id}`` records it.

Undo is not a deletion: the log keeps every label. Undo shows the last labelled item again so it
can be labelled again; that second label is a new review label (origin ``review``), which settles
what came before it (:func:`flywheel.prediction_log.in_conflict`), so the latest one counts.
"""

from __future__ import annotations

import math
from typing import Any

from flywheel.errors import DataError
from flywheel.project import Project
from flywheel.workbench._views import NotFound

__all__ = [
    "check_label",
    "give_label",
    "queue_view",
    "run_classes",
]


def run_classes(project: Project) -> list[str] | None:
    """The classes the latest run trained on (as the queue stores labels: text); ``None`` for a
    regression target or a project without a run."""
    from flywheel.registry import has_store, project_store

    if not has_store(project):
        return None
    store = project_store(project, create=False)
    try:
        run = store.latest_run(project.project)
    finally:
        store.close()
    classes = ((run or {}).get("data") or {}).get("classes")
    return [str(c) for c in classes] if classes else None


def check_label(given: str, classes: list[str] | None) -> str:
    """The label as the queue stores it.

    Raises
    ------
    DataError
        Naming the classes (or a number, for a regression target) and what was given.
    """
    label = given.strip()
    if classes is None:
        try:
            value = float(label)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise DataError(f"label: must be a finite number for a regression target; got {given!r}")
        return label
    if label not in classes:
        shown = ", ".join(classes[:12]) + (", …" if len(classes) > 12 else "")
        raise DataError(f"label: must be one of the classes {shown}; got {given!r}")
    return label


def _logged(project: Project, prediction_id: str | None, k: int = 3) -> dict[str, Any]:
    """What the log holds for the item's prediction: the model that made it, what it said then, and
    its ``k`` most likely classes (empty when it logged no probabilities or nothing was logged).

    Mining asks the current champion again, so the item's own prediction can differ from the
    logged one (another model logged it, or the row was logged by hand); the page then shows both
    rather than a "says 8; top class 3" that contradicts itself.
    """
    from flywheel.prediction_log import read_predictions
    from flywheel.registry import log_location

    if prediction_id is None:
        return {"top": []}
    found = read_predictions(log_location(project), ids=[prediction_id])
    if not found:
        return {"top": []}
    row = found[0]
    proba = row["probabilities"] or {}
    top = sorted(((str(c), float(p)) for c, p in proba.items()), key=lambda cp: -cp[1])[:k]
    return {"top": top, "prediction": row["prediction"], "model": row["model"], "version": row["version"]}


def queue_view(project: Project, skip: list[str], show: str | None) -> dict[str, Any]:
    """The item to show (``show``, or the first open one not skipped), with progress counts.

    The database counts and picks (:class:`flywheel.loop.ReviewQueue`), so a long queue is not read.

    Raises
    ------
    NotFound
        When ``show`` names no item of this project's queue.
    """
    from flywheel.loop import ReviewQueue

    with ReviewQueue(project) as queue:
        counts = queue.counts()
        if show is not None:
            item = queue.get(show)
            if item is None:
                raise NotFound(f"review item {show!r} is not in the queue of project {project.project!r}")
        else:
            item = queue.first_open(skip)
        still_open = queue.open_among(skip)
    opened = counts.get("open", 0)
    return {
        "item": item,
        "logged": _logged(project, item.prediction_id if item is not None else None),
        "open": opened,
        "labelled": counts.get("labelled", 0),
        "skipped": [s for s in skip if s in still_open],
        "all_skipped": item is None and opened > 0,
    }


def give_label(project: Project, item_id: str, label: str, by: str, classes: list[str] | None) -> Any:
    """Label an open item (:func:`flywheel.loop.label_item`), or label a labelled one again (undo).

    Raises
    ------
    NotFound
        When the item is not in the queue.
    DataError
        When the item expired (a new champion) or the label is not allowed.
    """
    from flywheel.loop import ReviewQueue, label_item

    with ReviewQueue(project) as queue:
        item = queue.get(item_id)
    if item is None:
        raise NotFound(f"review item {item_id!r} is not in the queue of project {project.project!r}")
    if item.status == "open":
        return label_item(project, item_id, label, by, classes)
    if item.status != "labelled":
        raise DataError(
            f"review item {item_id!r} is {item.status}: a new champion replaced the model that nominated it, "
            "so it is no longer asked; `flywheel mine` nominates fresh items"
        )
    return label_item(project, item_id, label, by, classes, again=True)
