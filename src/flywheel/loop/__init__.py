"""The data loop: mining logged predictions into the review queue, the queue itself (list, label,
export, import) and retraining on the labels it gained.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from flywheel.loop._queue import (
    QueueItem,
    expire_items,
    export_queue,
    import_labels,
    label_item,
    list_queue,
    next_item,
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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'flywheel.loop' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"flywheel.loop.{module}"), name)
    globals()[name] = value
    return value


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
