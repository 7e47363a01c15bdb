"""Artifacts: the one place that saves, loads and describes a fitted model.

A run, a retrain, the gate and the service all meet a fitted model as a file under
``.flywheel/models/NAME/vN.pkl`` with its input schema beside it (``vN.schema.json``), so the
service checks requests without reading the training data. Saving is atomic (a reader never
sees half a file); loading imports the project folder's modules, because a model may be an
instance of a class the team wrote there, and fails with one line naming the artifact.
:func:`flywheel.evaluation.predict_with_scores` is how every one of them predicts.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from flywheel.errors import ModelError
from flywheel.project import Project, importable

__all__ = [
    "LoadedModel",
    "Schema",
    "artifact_sha256",
    "load_artifact",
    "load_model",
    "plain_value",
    "read_artifact",
    "read_schema",
    "save_artifact",
    "schema_of",
    "write_atomically",
]


@dataclass(frozen=True)
class Schema:
    """The training schema: feature columns with their kinds, the task and the classes."""

    features: dict[str, str]  # column -> numeric | categorical | text
    task: str
    classes: list[Any] | None
    target: str
    # The range of each numeric feature in the project's data: a logged input outside it is one
    # the model never saw the like of (a reason to mine it, whatever the model's scores say).
    ranges: dict[str, tuple[float, float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "features": self.features,
            "task": self.task,
            "classes": None if self.classes is None else [plain_value(c) for c in self.classes],
            "target": self.target,
            "ranges": None if self.ranges is None else {k: list(v) for k, v in self.ranges.items()},
        }


def plain_value(v: Any) -> Any:
    """A numpy scalar as the Python value JSON can hold (anything else as it is)."""
    return v.item() if hasattr(v, "item") else v


def schema_of(ds: Any) -> Schema:
    """The schema of a loaded :class:`~flywheel.data.Dataset`."""
    kinds = {c: "numeric" for c in ds.columns.numeric}
    kinds |= {c: "categorical" for c in ds.columns.categorical}
    kinds |= {c: "text" for c in ds.columns.text}
    features = {c: kinds[c] for c in ds.columns.features}
    classes = None if ds.classes is None else [plain_value(c) for c in ds.classes]
    ranges = {}
    for c in ds.columns.numeric:
        values = pd.to_numeric(ds.X[c], errors="coerce")
        if values.notna().any():
            ranges[c] = (float(values.min()), float(values.max()))
    return Schema(features, ds.task, classes, ds.target, ranges)


def artifact_sha256(blob: bytes) -> str:
    """The SHA-256 (hex) the store records of an artifact's bytes, checked before it is unpickled."""
    return hashlib.sha256(blob).hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all: a temporary file beside it, then a rename."""
    tmp = path.with_name(f"{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def save_artifact(path: Path, blob: bytes, ds: Any) -> None:
    """Write a model artifact atomically (a reader never sees half of one) with its schema beside it:
    the schema :func:`load_model` checks requests against, without reading the training data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = json.dumps(schema_of(ds).to_dict(), default=str).encode("utf-8")
    write_atomically(path.with_suffix(".schema.json"), schema)
    write_atomically(path, blob)


def read_schema(project: Project, artifact: Path) -> Schema:
    sidecar = artifact.with_suffix(".schema.json")
    if sidecar.exists():
        raw = json.loads(sidecar.read_text(encoding="utf-8"))
        ranges = raw.get("ranges")  # absent from sidecars written before ranges were kept
        return Schema(
            raw["features"],
            raw["task"],
            raw["classes"],
            raw["target"],
            None if ranges is None else {k: (float(v[0]), float(v[1])) for k, v in ranges.items()},
        )
    from flywheel.data import load_dataset  # an artifact saved before schemas were: read the data

    return schema_of(load_dataset(project.data, project.root))


# Artifacts saved before the package was arranged by lifecycle phase name flywheel's own pieces
# (the preprocessing's text filler, the ladder's rules) by their old flat modules.
_MOVED_MODULES = {
    "flywheel.models": "flywheel.evaluation._candidates",
    "flywheel.heuristics": "flywheel.baselines._heuristics",
    "flywheel.ladder": "flywheel.baselines._ladder",
}


class _Unpickler(pickle.Unpickler):
    """Reads artifacts of every flywheel version: classes and functions from a module that moved are
    found where they live now."""

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(_MOVED_MODULES.get(module, module), name)


def _unpickle(blob: bytes) -> Any:
    return _Unpickler(io.BytesIO(blob)).load()


@dataclass(frozen=True)
class LoadedModel:
    """A saved model version, loaded, with the schema it answers for."""

    model: Any
    name: str
    version: int
    alias: str
    schema: Schema
    model_id: int


def read_artifact(entry: dict[str, Any], alias: str) -> bytes:
    """The bytes of the artifact a registry entry points at, checked against its recorded SHA-256.

    Raises
    ------
    ModelError
        One line naming the alias, the model, its version and the path, when the artifact is
        missing, cannot be read, or is not the one that was saved (its hash differs).
    """
    path = Path(entry["path"])
    where = f"{alias} {entry['name']} v{entry['version']} ({path})"
    if not path.is_file():
        raise ModelError(f"{where}: the artifact is missing; run the project again or promote another model")
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{where}: the artifact cannot be read: {exc.strerror or exc}") from None
    expected = entry.get("sha256")
    if expected and artifact_sha256(blob) != expected:
        raise ModelError(
            f"{where}: the artifact was altered since it was saved (SHA-256 {artifact_sha256(blob)[:12]}…, "
            f"saved {expected[:12]}…); refusing to load it"
        )
    return blob


def load_artifact(project: Project, entry: dict[str, Any], alias: str) -> Any:
    """The fitted model a registry entry (``path``, ``name``, ``version``) points at, checked.

    The artifact's bytes are checked against the SHA-256 recorded when it was saved before they
    are unpickled: unpickling runs code, so an altered file is never loaded.

    Raises
    ------
    ModelError
        One line naming the alias and the artifact, when it is missing, altered, cannot be read,
        is corrupt or is not a model.
    """
    blob = read_artifact(entry, alias)
    where = f"{entry['name']} v{entry['version']} ({entry['path']})"
    try:
        with importable(project.root):  # a model may use modules from the project's folder
            model = _unpickle(blob)
    except Exception as exc:
        raise ModelError(f"{alias} {where}: the artifact is corrupt ({type(exc).__name__})") from None
    if not hasattr(model, "predict"):
        raise ModelError(f"{alias} {where}: the artifact is not a model (no predict)")
    return model


def load_model(project: Project, entry: dict[str, Any], alias: str) -> LoadedModel:
    """The model a registry entry (``path``, ``name``, ``version``, ``id``) points at, with its schema.

    Raises
    ------
    ModelError
        As :func:`load_artifact`.
    """
    model = load_artifact(project, entry, alias)
    path = Path(entry["path"])
    return LoadedModel(
        model, entry["name"], int(entry["version"]), alias, read_schema(project, path), int(entry["id"])
    )
