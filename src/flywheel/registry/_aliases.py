"""Aliases resolved to loaded models: ``champion``, ``challenger`` or any name a team gives a version."""

from __future__ import annotations

from flywheel.errors import ModelError
from flywheel.evaluation import LoadedModel, load_model
from flywheel.project import Project
from flywheel.registry._store import DB_NAME, open_store

__all__ = [
    "load_alias",
]


def load_alias(project: Project, alias: str = "champion") -> LoadedModel:
    """The model ``alias`` points at, loaded and checked; one-line errors when there is none.

    Raises
    ------
    ModelError
        When the project has no store, no model holds ``alias``, or its artifact cannot load.
    """
    if not (project.store_dir / DB_NAME).exists():
        raise ModelError(f"{project.project}: no store yet; run `flywheel run` and `flywheel promote` first")
    store = open_store(project.store_dir, create=False)
    try:
        entry = store.get_alias(project.project, alias)
    finally:
        store.close()
    if entry is None:
        raise ModelError(
            f"{project.project}: no model is {alias!r} yet; `flywheel promote NAME` makes one the champion"
        )
    return load_model(project, entry, alias)
