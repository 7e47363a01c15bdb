"""Reading a project's store from a command that only looks: no store yet means no rows, none is made."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "from_store",
]


def from_store(
    path: Path, query: Callable[[Any, str], list[dict[str, Any]]]
) -> tuple[Any, list[dict[str, Any]]]:
    """Load the project and read from its store; a project with no store yet has no rows (none is made)."""
    from flywheel.project import load_project
    from flywheel.registry import has_store, project_store

    project = load_project(path)
    if not has_store(project):
        return project, []
    store = project_store(project, create=False)
    try:
        return project, query(store, project.project)
    finally:
        store.close()
