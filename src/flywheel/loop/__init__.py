"""The data loop: mining logged predictions into the review queue, the queue itself (list, label,
export, import) and retraining on the labels it gained.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flywheel._lazy import lazy_attributes
from flywheel.loop._queue import (
    QueueItem,
    ReviewQueue,
    expire_items,
    export_queue,
    import_labels,
    label_item,
    list_queue,
    next_item,
    queue_counts,
)

if TYPE_CHECKING:
    from flywheel.loop._mine import mine
    from flywheel.loop._retrain import Retrained, retrain

# Loaded on first use, so that commands which only read the store start fast.
_LAZY = {
    "mine": "_mine",
    "Retrained": "_retrain",
    "retrain": "_retrain",
}


__getattr__ = lazy_attributes("flywheel.loop", _LAZY)


__all__ = [
    "QueueItem",
    "Retrained",
    "ReviewQueue",
    "expire_items",
    "export_queue",
    "import_labels",
    "label_item",
    "list_queue",
    "mine",
    "next_item",
    "queue_counts",
    "retrain",
]
