"""Model versions on disk and the aliases that point at them: saving a new version, loading ``champion``.

A version is an artifact under ``.flywheel/models/NAME/vN.pkl`` (with its schema, and any judgement,
beside it) plus its row in the store; a run and a retrain both save versions this way, and the
service, mining and retraining load the one an alias points at.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from flywheel.data import Dataset
from flywheel.errors import ModelError
from flywheel.evaluation import LoadedModel, artifact_sha256, load_model, save_artifact, write_atomically
from flywheel.project import Project
from flywheel.registry._store import Store, has_store, project_store

__all__ = [
    "load_alias",
    "save_version",
]


def save_version(
    store: Store,
    project: Project,
    name: str,
    blob: bytes,
    ds: Dataset,
    *,
    split_fingerprint: str,
    objective_version: str,
    run_id: str,
    when: datetime,
    beside: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Save ``blob`` as the next version of ``name`` and register it; returns the registered entry.

    ``beside`` maps suffixes to texts written next to the artifact before it is registered
    (``{".judged.json": ...}``), so a registered version never lacks them. Every file is written
    whole (temporary file, then rename) before the row is, while the version number is reserved
    (:meth:`~flywheel.registry.Store.register_next`): a process killed on the way leaves at most
    unregistered files, which the next save of that version replaces, and two processes saving
    at once get two numbers.
    """

    def write(version: int) -> tuple[Path, str]:
        path = project.store_dir / "models" / name / f"v{version}.pkl"
        for suffix, text in (beside or {}).items():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path.with_suffix(suffix), text.encode("utf-8"))
        save_artifact(path, blob, ds)
        return path, artifact_sha256(blob)

    return store.register_next(
        project.project,
        name,
        write,
        data_fingerprint=ds.fingerprint,
        split_fingerprint=split_fingerprint,
        objective_version=objective_version,
        run_id=run_id,
        when=when,
    )


def load_alias(project: Project, alias: str = "champion") -> LoadedModel:
    """The model ``alias`` points at, loaded and checked; one-line errors when there is none.

    Raises
    ------
    ModelError
        When the project has no store, no model holds ``alias``, or its artifact cannot load.
    """
    if not has_store(project):
        raise ModelError(f"{project.project}: no store yet; run `flywheel run` and `flywheel promote` first")
    store = project_store(project, create=False)
    try:
        entry = store.get_alias(project.project, alias)
    finally:
        store.close()
    if entry is None:
        raise ModelError(
            f"{project.project}: no model is {alias!r} yet; `flywheel promote NAME` makes one the champion"
        )
    return load_model(project, entry, alias)
