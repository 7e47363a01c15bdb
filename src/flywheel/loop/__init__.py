"""The data loop: mining logged predictions into the review queue, the queue itself (list, label,
export, import) and retraining on the labels it gained.
"""

from flywheel.loop._mine import mine
from flywheel.loop._queue import (
    QueueItem,
    expire_items,
    export_queue,
    import_labels,
    label_item,
    list_queue,
    next_item,
)
from flywheel.loop._retrain import Retrained, retrain

__all__ = [
    "QueueItem",
    "Retrained",
    "expire_items",
    "export_queue",
    "import_labels",
    "label_item",
    "list_queue",
    "mine",
    "next_item",
    "retrain",
]
