"""The review queue read by the database (ReviewQueue, queue_counts, next_item) against reading it
whole (list_queue): the same counts, the same next item, the same item by id."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from flywheel.loop import (
    QueueItem,
    ReviewQueue,
    expire_items,
    label_item,
    list_queue,
    next_item,
    queue_counts,
)
from flywheel.loop._queue import _enqueue
from flywheel.prediction_log import PredictionLog, PredictionRecord
from flywheel.project import load_project
from flywheel.registry import log_location
from helpers import IRIS_TWO_MODELS, write_project

IRIS = IRIS_TWO_MODELS.format(name="iris-queue")


def test_the_queue_read_by_the_database_agrees_with_list_queue(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Differential: ReviewQueue's counts (GROUP BY) and picks (one row each) equal what reading the
    whole queue with list_queue gives, on a real log with ties in score, labelled and expired items
    and a conflict that opening the queue surfaces; on both back-ends (a PostgreSQL store keeps the
    log, and so the queue, in its database)."""
    monkeypatch.setenv("FLYWHEEL_STORE", store_url)
    path = write_project(tmp_path / "iris", IRIS)
    project = load_project(path)
    assert queue_counts(project) == {} and next_item(project) is None
    rng = np.random.default_rng(0)
    scores = rng.choice([1.0, 2.5], size=60)  # two values: the order within a tie is by id
    items = [
        QueueItem(
            f"i{k:03d}",
            f"p{k}",
            {"x": float(k)},
            "setosa",
            ["low-margin"],
            float(scores[k]),
            "logreg" if k % 5 else "tree",
            1,
            0.0,
        )
        for k in rng.permutation(60)
    ]
    _enqueue(project, items)
    for item in items[:12]:
        label_item(project, item.id, "virginica", "ana", None)
    assert expire_items(project, ("logreg", 1)) > 0  # the tree's open items expire
    log = PredictionLog(log_location(project))
    log.submit(PredictionRecord("q0", time.time(), "logreg", 1, {"x": 1.0}, "setosa", None, 1.0))
    log.add_feedback("q0", "setosa", "ops")
    log.add_feedback("q0", "virginica", "bob")  # two labels that disagree: a conflict to surface
    log.close()
    with ReviewQueue(project) as queue:  # opened before list_queue, so it must surface the conflict itself
        counts = queue.counts()
        everything = list_queue(project, None)
        assert any(i.conflict for i in everything)
        assert counts == dict(Counter(i.status for i in everything)) == queue_counts(project)
        opened = [i for i in everything if i.status == "open"]
        assert next_item(project) == queue.first_open() == opened[0]
        ids = [i.id for i in everything] + ["ghost"]
        skips = [[i.id for i in opened[:k]] for k in range(len(opened) + 1)]
        skips += [list(rng.choice(ids, size=rng.integers(1, len(ids)))) for _ in range(40)]
        for skip in skips:
            assert queue.first_open(skip) == next((i for i in opened if i.id not in skip), None), skip
            assert queue.open_among(skip) == {s for s in skip if s in {i.id for i in opened}}, skip
        assert all(queue.get(i.id) == i for i in everything) and queue.get("ghost") is None
